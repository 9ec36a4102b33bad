#!/usr/bin/env python3
"""Optimizer steps side by side: gradlab (Rust) against PyTorch on the same machine, in one run.

Times one optimizer step on a single flat parameter of 1M and 16.8M float32 elements:
torch Adam(fused=True), torch Adam(foreach=True), pytorch_optimizer.DiffGrad, gradlab's fused
Adam and diffGrad kernels, gradlab's burn Adam and diffGrad optimizers (in-place fused path and
tensor path), and a STREAM-style triad a = b + s*c in both languages as the bandwidth probe.
Prints parameters per second and the ratio of each to torch's fused Adam at the same size.

Setup (not in CI; PyPI's torch wheel is large):
    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch pytorch-optimizer
    .venv-bench/bin/python bench/optim_vs_torch.py [--reps 20] [--threads 2]

Both sides use the same number of threads (all cores by default). Shared machines are noisy:
read the ratios, and rerun before trusting a difference under ~10%.
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time

import torch

try:
    import pytorch_optimizer
except ImportError:  # the DiffGrad row is skipped, with a note
    pytorch_optimizer = None

SIZES = [1 << 20, 16_800_000]


def median_step(step, reps):
    for _ in range(3):
        step()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def torch_rows(n, reps):
    g = ((torch.arange(n, dtype=torch.float32) % 1000) - 500.0) * 1e-3
    rows = {}

    def optimizer_row(name, make):
        p = torch.nn.Parameter(torch.zeros(n))
        p.grad = g.clone()
        opt = make([p])
        rows[name] = median_step(opt.step, reps)

    with torch.no_grad():
        optimizer_row("torch Adam(fused=True)", lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True))
        optimizer_row("torch Adam(foreach=True)", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True))
        # Like a burn optimizer, which consumes each step's gradient: a fresh gradient per step
        # (made outside the timing) and the previous one freed inside it.
        p = torch.nn.Parameter(torch.zeros(n))
        p.grad = g.clone()
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        samples = []
        for r in range(reps + 3):
            fresh = g.clone()
            t = time.perf_counter()
            p.grad = fresh
            opt.step()
            if r >= 3:
                samples.append(time.perf_counter() - t)
        del fresh
        rows["torch Adam(fused=True), freeing the previous gradient"] = statistics.median(samples)
        if pytorch_optimizer is not None:
            optimizer_row("pytorch_optimizer.DiffGrad", lambda ps: pytorch_optimizer.DiffGrad(ps, lr=1e-3))
        a, b, c = torch.zeros(n), torch.ones(n), torch.full((n,), 2.0)
        rows["triad a = b + s*c (torch)"] = median_step(lambda: torch.add(b, c, alpha=0.5, out=a), reps)
    return rows


def gradlab_rows(reps, root):
    cmd = ["cargo", "run", "--release", "-q", "-p", "gradlab-optim", "--example", "step_throughput",
           "--", str(reps)] + [str(n) for n in SIZES]
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        r = json.loads(line)
        rows[(r["impl"], r["n"])] = r["seconds"]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="also write the measurements here")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    torch.set_num_threads(args.threads)
    po_version = importlib.metadata.version("pytorch-optimizer") if pytorch_optimizer else "missing"
    print(f"torch {torch.__version__}, pytorch_optimizer {po_version}, {args.threads} threads, "
          f"median of {args.reps} steps", file=sys.stderr)
    if args.threads != os.cpu_count():
        print("note: gradlab uses every core; run with --threads equal to the core count for a like-for-like comparison",
              file=sys.stderr)

    measured = gradlab_rows(args.reps, root)
    for n in SIZES:
        for name, s in torch_rows(n, args.reps).items():
            measured[(name, n)] = s

    results = []
    for n in SIZES:
        base = measured[("torch Adam(fused=True)", n)]
        print(f"\n{n:,} parameters")
        print(f"| implementation | M params/s | × torch fused Adam |")
        print(f"|---|---:|---:|")
        for (name, size), s in sorted(measured.items(), key=lambda kv: kv[1]):
            if size != n:
                continue
            print(f"| {name} | {n / s / 1e6:,.0f} | {base / s:.2f} |")
            results.append({"impl": name, "n": n, "seconds": s, "ratio_to_torch_fused_adam": base / s})
        dg = measured.get(("pytorch_optimizer.DiffGrad", n))
        for kind in ["fused Adam kernel", "burn Adam (in-place fused path)"]:
            print(f"- gradlab {kind} / torch fused Adam = {base / measured[(f'gradlab {kind}', n)]:.2f} (target >= 1.0 at 16.8M)")
        for kind in ["fused diffGrad kernel", "burn diffGrad (in-place fused path)"]:
            ours = measured[(f"gradlab {kind}", n)]
            line = f"- gradlab {kind} / torch fused Adam = {base / ours:.2f} (target >= 0.9)"
            if dg:
                line += f"; / pytorch_optimizer.DiffGrad = {dg / ours:.1f}x (target >= 5)"
            print(line)
        freeing = measured[("torch Adam(fused=True), freeing the previous gradient", n)]
        burn = measured[("gradlab burn Adam (in-place fused path)", n)]
        print(f"- both freeing one gradient per step: gradlab burn Adam / torch fused Adam = {freeing / burn:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
