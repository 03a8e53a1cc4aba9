#!/usr/bin/env python3
"""Type-checks the Swift examples of the DocC articles against the built Neuron module.

Usage: scripts/check-doc-examples.py BUILD_DIR [CATALOG]

Every ```swift block of each article in CATALOG (default Sources/Neuron/Neuron.docc) that imports
nothing but Foundation and Neuron is part of one program per article, the blocks in order (later blocks
use what earlier ones declared, as a reader would), and is type-checked with `swiftc -typecheck`
against BUILD_DIR's `Modules/Neuron.swiftmodule` (a debug or release build of the package, e.g. the one
`make docs` made). Blocks that are manifests (`// swift-tools-version`) are skipped. Exit status 1 when
an article's examples do not compile, with the compiler's messages pointing into the article.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

BLOCK = re.compile(r"^```swift[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def article_program(path):
    text = open(path).read()
    parts = []
    for match in BLOCK.finditer(text):
        code = match.group(1)
        if code.lstrip().startswith("// swift-tools-version"):
            continue
        first_line = text.count("\n", 0, match.start(1)) + 1
        kept = []
        for number, line in enumerate(code.splitlines(), start=first_line):
            if line.strip() in ("import Neuron", "import Foundation"):
                line = ""
            kept.append(f'#sourceLocation(file: "{path}", line: {number})\n{line}' if not kept else line)
        parts.append("\n".join(kept))
    if not parts:
        return None
    return "import Foundation\nimport Neuron\n\n" + "\n#sourceLocation()\n".join(parts) + "\n#sourceLocation()\n"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    catalog = sys.argv[2] if len(sys.argv) > 2 else "Sources/Neuron/Neuron.docc"
    modules = os.path.join(build, "Modules")
    if not os.path.exists(os.path.join(modules, "Neuron.swiftmodule")):
        sys.exit(f"check-doc-examples: no Neuron.swiftmodule in {modules} (build the package first)")
    maps = [f"-Xcc -fmodule-map-file={m}" for m in
            (os.path.join(build, t, "module.modulemap") for t in ("CKernels.build", "CPNG.build")) if os.path.exists(m)]
    failed = 0
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for article in sorted(glob.glob(os.path.join(catalog, "*.md"))):
            program = article_program(article)
            if program is None:
                continue
            source = os.path.join(tmp, "main.swift")
            with open(source, "w") as f:
                f.write(program)
            command = ["swiftc", "-typecheck", "-I", modules, source] + " ".join(maps).split()
            result = subprocess.run(command, capture_output=True, text=True)
            checked += 1
            if result.returncode != 0:
                failed += 1
                print(f"check-doc-examples: {article}: the examples do not compile")
                print(result.stderr)
            else:
                print(f"check-doc-examples: {article}: compiles")
    print(f"check-doc-examples: {checked - failed} of {checked} articles' examples compile")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
