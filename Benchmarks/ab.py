#!/usr/bin/env python3
"""Interleaved A/B of neuron-bench builds (or of one build at different settings).

    python3 Benchmarks/ab.py --rounds 10 --cases conv_fwd_mid,lenet_train_step \\
        old=/tmp/old/neuron-bench new=.build/release/neuron-bench new-avx2=.build/release/neuron-bench:NEURON_CPU=avx2

Each round runs every variant once, in turn (so load that comes and goes hits all of them alike), and the
report gives, per case, each variant's median over the rounds of neuron-bench's median_ms and its ratio
to the first variant (above 1: slower than the first). Extra arguments after `--` go to neuron-bench.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def parse_variant(spec):
    name, _, rest = spec.partition("=")
    path, *envs = rest.split(":")
    env = dict(e.split("=", 1) for e in envs)
    return name, path, env


def run(path, env, cases, threads, extra):
    cmd = [path, "--threads", str(threads)] + (["--cases", cases] if cases else []) + extra
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    return {r["case"]: r["median_ms"] for r in map(json.loads, filter(None, out.splitlines()))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="name=path[:VAR=value...]")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cases", default="")
    ap.add_argument("--threads", type=int, default=2)
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    variants = [parse_variant(v) for v in args.variants]
    times = {name: {} for name, _, _ in variants}
    for r in range(args.rounds):
        for name, path, env in variants:
            for case, ms in run(path, env, args.cases, args.threads, extra).items():
                times[name].setdefault(case, []).append(ms)
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    first = variants[0][0]
    names = [v[0] for v in variants]
    print("| case | " + " | ".join(f"{n} median ms" for n in names) + " | " +
          " | ".join(f"{n}/{first}" for n in names[1:]) + " |")
    print("|---" * (2 * len(names)) + "|")
    for case in times[first]:
        med = {n: statistics.median(times[n][case]) for n in names}
        print(f"| {case} | " + " | ".join(f"{med[n]:.3f}" for n in names) + " | " +
              " | ".join(f"{med[n] / med[first]:.3f}" for n in names[1:]) + " |")


if __name__ == "__main__":
    main()
