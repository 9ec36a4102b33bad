#!/usr/bin/env python3
"""Hessian spectra side by side: gradlab against PyHessian on the same machine, in one run.

The model is an MLP 64-256-256-128-10 (ReLU, ≈117k parameters) with the mean cross-entropy over the
first 1,000 images of the shipped digits set. Two tasks: the top 10 eigenvalues, and a 20-step
stochastic-Lanczos density with one probe. The algorithms differ where the libraries do:
gradlab runs 40 Lanczos steps on central-difference HVPs (two gradients each); PyHessian runs
power iteration with deflation (exact double-backward HVPs, its defaults maxIter 100, tol 1e-3)
for the top 10 and its own Lanczos for the density. Both use the same number of threads.
Both use gradlab's seeded initial weights (written by the Rust example, loaded into torch), so the
eigenvalues are comparable: PyHessian's top 10 are the largest in magnitude (power iteration),
gradlab's the largest algebraically (Lanczos); positive ones should agree.

Setup (not in CI):
    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch pyhessian
    .venv-bench/bin/python bench/hessian_vs_pyhessian.py [--threads 2]
"""

import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time

import sys

import numpy as np
import torch
from pyhessian import hessian

# Count PyHessian's Hessian-vector products (the module is shadowed by the class of its name).
pyh = sys.modules["pyhessian.hessian"]

HVPS = [0]
_hvp = pyh.hessian_vector_product


def _counted(*a, **k):
    HVPS[0] += 1
    return _hvp(*a, **k)


pyh.hessian_vector_product = _counted

# PyHessian 0.1 (the PyPI release) calls torch.eig, removed in torch 1.9+, on the symmetric
# Lanczos tridiagonal in `density`; this shim gives it eigh's result in the old layout
# (eigenvalues as [n, 2] real/imaginary pairs).
def _eig(a, eigenvectors=False):
    w, v = torch.linalg.eigh(a)
    return torch.stack([w, torch.zeros_like(w)], 1), v


torch.eig = _eig

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
    weights = os.path.join(tempfile.mkdtemp(), "weights.bin")
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "gradlab-curvature", "--example", "hessian_timing",
         "--", weights],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    ours = json.loads(out.strip().splitlines()[-1])

    torch.manual_seed(0)
    x, y = digits(1000)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    )
    flat = torch.from_numpy(np.fromfile(weights, dtype="<f4").copy())
    at = 0
    with torch.no_grad():
        for layer in [m for m in model if isinstance(m, torch.nn.Linear)]:
            fan_in, fan_out = layer.in_features, layer.out_features
            layer.weight.copy_(flat[at:at + fan_in * fan_out].reshape(fan_in, fan_out).t())
            at += fan_in * fan_out
            layer.bias.copy_(flat[at:at + fan_out])
            at += fan_out
    assert at == flat.numel(), (at, flat.numel())
    params = sum(p.numel() for p in model.parameters())
    h = hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    t0 = time.perf_counter()
    top, _ = h.eigenvalues(top_n=10)
    t_top, hvps_top = time.perf_counter() - t0, HVPS[0]
    t1 = time.perf_counter()
    h.density(iter=20, n_v=1)
    t_density, hvps_density = time.perf_counter() - t1, HVPS[0] - hvps_top

    print(f"params: gradlab {ours['params']}, PyHessian {params}; threads {args.threads}")
    print(f"{'task':<22}{'gradlab s (HVPs)':>20}{'PyHessian s (HVPs)':>22}{'time ratio Py/gl':>18}"
          f"{'per-HVP ratio':>15}")
    for task, a, na, b, nb in [
        ("top 10 eigenvalues", ours["top10_seconds"], ours["hvps_top10"], t_top, hvps_top),
        ("20-step density", ours["density_seconds"], ours["hvps_density"], t_density, hvps_density),
    ]:
        print(f"{task:<22}{f'{a:.2f} ({na})':>20}{f'{b:.2f} ({nb})':>22}{b / a:>18.2f}"
              f"{(b / nb) / (a / na):>15.2f}")
    print("gradlab top 10:", np.round(ours["top10"], 4).tolist())
    print("PyHessian top 10:", np.round(sorted(top, reverse=True), 4).tolist())


if __name__ == "__main__":
    main()
