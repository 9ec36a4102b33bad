#!/usr/bin/env python3
"""Hessian spectra side by side: gradlab against PyHessian on the same machine, in one run.

The model is an MLP 64-256-256-128-10 (ReLU, ≈117k parameters) with the mean cross-entropy over the
first 1,000 images of the shipped digits set. Two tasks: the top 10 eigenvalues, and a 20-step
stochastic-Lanczos density with one probe. The algorithms differ where the libraries do:
gradlab runs 40 Lanczos steps on central-difference HVPs (two gradients each); PyHessian runs
power iteration with deflation (exact double-backward HVPs, its defaults maxIter 100, tol 1e-3)
for the top 10 and its own Lanczos for the density. Both use the same number of threads.
The weights differ (each side's own seeded init), so the eigenvalues are shown, not compared.

Setup (not in CI):
    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch pyhessian
    .venv-bench/bin/python bench/hessian_vs_pyhessian.py [--threads 2]
"""

import argparse
import gzip
import json
import os
import subprocess
import time

import numpy as np
import torch
from pyhessian import hessian

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits(n):
    with gzip.open(os.path.join(ROOT, "data", "digits.csv.gz"), "rt") as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    rows = [r for r in rows if r[0].replace(".", "").isdigit()][:n]
    x = torch.tensor([[float(v) / 16.0 for v in r[:64]] for r in rows], dtype=torch.float32)
    y = torch.tensor([int(float(r[64])) for r in rows])
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "gradlab-lab", "--example", "hessian_timing"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    ours = json.loads(out.strip().splitlines()[-1])

    torch.manual_seed(0)
    x, y = digits(1000)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    )
    params = sum(p.numel() for p in model.parameters())
    h = hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    t0 = time.perf_counter()
    top, _ = h.eigenvalues(top_n=10)
    t_top = time.perf_counter() - t0
    t1 = time.perf_counter()
    h.density(iter=20, n_v=1)
    t_density = time.perf_counter() - t1

    print(f"params: gradlab {ours['params']}, PyHessian {params}; threads {args.threads}")
    print(f"{'task':<28}{'gradlab (s)':>14}{'PyHessian (s)':>16}{'PyHessian / gradlab':>22}")
    for task, a, b in [
        ("top 10 eigenvalues", ours["top10_seconds"], t_top),
        ("20-step density", ours["density_seconds"], t_density),
    ]:
        print(f"{task:<28}{a:>14.2f}{b:>16.2f}{b / a:>22.2f}")
    print("gradlab top 10:", np.round(ours["top10"], 4).tolist())
    print("PyHessian top 10:", np.round(sorted(top, reverse=True), 4).tolist())


if __name__ == "__main__":
    main()
