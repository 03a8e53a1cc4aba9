#!/usr/bin/env python3
"""Share of Neuron's public declarations that carry a doc comment, from the symbol graph.

Usage: scripts/doc-coverage.py SYMBOL_GRAPH_DIR [--list] [--min PERCENT]

SYMBOL_GRAPH_DIR holds the `Neuron*.symbols.json` files that `swift package generate-documentation`
(make docs) or `swift package dump-symbol-graph` wrote. Counted: every public or open symbol declared in
Neuron's sources (types, initialisers, methods, properties, cases, type aliases, operators), including
members added to other modules' types (`Neuron@Swift.symbols.json`). Not counted: declarations the
compiler synthesises (protocol default implementations seen through a conformance, memberwise
`init`s), which have no source line a comment could sit on. A symbol is documented when its own
declaration has a `///` comment; a comment inherited from a protocol it implements elsewhere does not
count.

--list prints the undocumented symbols grouped by file; --by-file prints one count per file;
--min fails (exit 1) below the given percentage.
"""
import argparse
import collections
import glob
import json
import os
import sys


def load(directory):
    symbols = {}
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.symbols.json"), recursive=True)):
        name = os.path.basename(path)
        if not (name == "Neuron.symbols.json" or name.startswith("Neuron@")):
            continue
        with open(path) as f:
            graph = json.load(f)
        for s in graph["symbols"]:
            if s.get("accessLevel") not in ("public", "open"):
                continue
            if "::SYNTHESIZED::" in s["identifier"]["precise"]:
                continue
            loc = s.get("location")
            if loc is None:  # compiler-made, nowhere in our sources
                continue
            uri = loc["uri"]
            if "/Sources/Neuron/" not in uri:
                continue
            doc = s.get("docComment")
            # The comment must sit on this declaration: one inherited from the protocol requirement it
            # implements (symbolgraph-extract copies those) lives in another file or further up.
            documented = False
            if doc and doc.get("lines") and any(l["text"].strip() for l in doc["lines"]):
                end = doc["lines"][-1].get("range", {}).get("end", {}).get("line")
                gap = loc["position"]["line"] - end if end is not None else None
                documented = doc.get("uri", uri) == uri and gap is not None and 0 < gap <= 4
            key = s["identifier"]["precise"]
            line = loc["position"]["line"] + 1
            title = ".".join(s["pathComponents"])
            kind = s["kind"]["displayName"]
            prev = symbols.get(key)
            symbols[key] = (uri.split("/Sources/Neuron/", 1)[1], line, kind, title,
                            documented or (prev is not None and prev[4]))
    return symbols


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--list", action="store_true", help="print every undocumented symbol")
    parser.add_argument("--by-file", action="store_true", help="print documented/total per file")
    parser.add_argument("--min", type=float, default=None, help="fail below this percentage")
    args = parser.parse_args()
    symbols = load(args.directory)
    if not symbols:
        sys.exit(f"doc-coverage: no public Neuron symbols under {args.directory} (build the docs first)")
    total = len(symbols)
    documented = sum(1 for s in symbols.values() if s[4])
    per_file = collections.defaultdict(lambda: [0, 0, []])
    for path, line, kind, title, doc in symbols.values():
        entry = per_file[path]
        entry[1] += 1
        if doc:
            entry[0] += 1
        else:
            entry[2].append((line, kind, title))
    if args.by_file:
        for path in sorted(per_file, key=lambda p: (per_file[p][1] - per_file[p][0], p), reverse=True):
            d, t, _ = per_file[path]
            if d < t:
                print(f"{t - d:4d} undocumented of {t:4d}  {path}")
    if args.list:
        for path in sorted(per_file):
            missing = sorted(per_file[path][2])
            for line, kind, title in missing:
                print(f"Sources/Neuron/{path}:{line}: {kind} {title}")
    share = 100.0 * documented / total
    print(f"doc-coverage: {documented} of {total} public declarations documented ({share:.1f}%), "
          f"{total - documented} without a doc comment")
    if args.min is not None and share < args.min:
        sys.exit(1)


if __name__ == "__main__":
    main()
