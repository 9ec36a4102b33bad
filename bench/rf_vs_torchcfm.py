#!/usr/bin/env python3
"""Rectified-flow training and one-step sampling side by side: gradlab (Rust, burn) against
torchcfm (PyTorch) on the same machine, in one run.

The same task on both sides: N(0, I) -> 8 Gaussians (gradlab's `8gaussians`: centres at radius
4/1.414 ~ 2.83, std 0.5/1.414), a time-conditioned MLP with input [x, t, sin(pi k t), cos(pi k t)]
for k = 1..8 and three hidden layers of 128 SiLU units, flow matching with independent pairs
(torchcfm's ConditionalFlowMatcher with sigma = 0: x_t = t x1 + (1 - t) x0, target x1 - x0),
fresh pairs of 256 every step, Adam at 3e-3 decayed linearly to 0. Then one Euler step from
10,000 noise points. Prints training and sampling throughput on each side, their ratios, and the
sliced Wasserstein distance (SWD-2, 200 directions) of each side's samples to fresh data.

Setup (not in CI; PyPI's torch wheel is large):
    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch torchcfm
    .venv-bench/bin/python bench/rf_vs_torchcfm.py [--steps 2000] [--threads 2]

gradlab runs through its CLI (`gradlab sample --method rf --json`), which reports the training
time and samples per second itself; process start is excluded, and drawing each step's pairs is
included, on both sides. gradlab draws t ~ U(0.001, 1), torchcfm t ~ U(0, 1). Both sides use the same number of threads (all cores by default). Shared machines are
noisy: read the ratios, and rerun before trusting a difference under ~10%.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
from torch import nn

try:
    import torchcfm
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
except ImportError:
    sys.exit("torchcfm is not installed: pip install torchcfm")

BATCH = 256
LR = 3e-3
FREQS = 8
SAMPLES = 10_000


def eight_gaussians(n, gen):
    s = 1.0 / math.sqrt(2.0)
    centres = torch.tensor(
        [[1, 0], [-1, 0], [0, 1], [0, -1], [s, s], [s, -s], [-s, s], [-s, -s]],
        dtype=torch.float32,
    ) * (4.0 / 1.414)
    idx = torch.randint(0, 8, (n,), generator=gen)
    return centres[idx] + (0.5 / 1.414) * torch.randn(n, 2, generator=gen)


class TimeMlp(nn.Module):
    """gradlab_nets::time_mlp::TimeMlp: [x, t, sin(pi k t), cos(pi k t)] -> 3 x 128 SiLU -> d."""

    def __init__(self, dim=2, hidden=128, layers=3):
        super().__init__()
        dims = [dim + 1 + 2 * FREQS] + [hidden] * layers
        mods = []
        for a, b in zip(dims, dims[1:]):
            mods += [nn.Linear(a, b), nn.SiLU()]
        mods.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*mods)
        self.register_buffer("freqs", math.pi * torch.arange(1, FREQS + 1, dtype=torch.float32))

    def forward(self, x, t):
        arg = t[:, None] * self.freqs[None, :]
        return self.net(torch.cat([x, t[:, None], arg.sin(), arg.cos()], dim=1))


def swd(x, y, projections=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = min(len(x), len(y))
    total = 0.0
    for _ in range(projections):
        d = torch.randn(2, generator=gen, dtype=torch.float64)
        d /= d.norm()
        px = torch.sort(x[:n].double() @ d).values
        py = torch.sort(y[:n].double() @ d).values
        total += ((px - py) ** 2).mean().item()
    return math.sqrt(total / projections)


def torchcfm_side(steps, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TimeMlp()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    fm = ConditionalFlowMatcher(sigma=0.0)
    t0 = time.perf_counter()
    for _ in range(steps):
        x0, x1 = torch.randn(BATCH, 2, generator=gen), eight_gaussians(BATCH, gen)
        t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
        loss = ((model(xt, t) - ut) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    train_s = time.perf_counter() - t0
    z0 = torch.randn(SAMPLES, 2, generator=gen)
    with torch.no_grad():
        model(z0[:10], torch.zeros(10))  # warm-up
        t1 = time.perf_counter()
        x = z0 + model(z0, torch.zeros(SAMPLES))
        sample_s = time.perf_counter() - t1
    truth = eight_gaussians(SAMPLES, torch.Generator().manual_seed(seed ^ 0x7E57))
    return {
        "train_seconds": train_s,
        "samples_per_second": SAMPLES / sample_s,
        "swd": swd(x, truth),
        "swd_data_vs_data": swd(eight_gaussians(SAMPLES, torch.Generator().manual_seed(seed ^ 0xF100)), truth),
    }


def gradlab_side(steps, seed, root):
    cmd = ["cargo", "run", "--release", "-q", "--", "sample", "--method", "rf", "--data", "8gaussians",
           "--train-steps", str(steps), "--steps", "1", "--samples", str(SAMPLES), "--seed", str(seed),
           "--json", "--out", os.path.join(root, "target", "rf_vs_torchcfm.png")]
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2000, help="training steps on each side")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"torch {torch.__version__}, torchcfm {torchcfm.__version__}, {args.threads} threads, "
          f"{args.steps} training steps of batch {BATCH}, one Euler step from {SAMPLES} points")
    if args.threads != os.cpu_count():
        print("note: gradlab uses every core; run with --threads equal to the core count for a like-for-like comparison")
    g = gradlab_side(args.steps, args.seed, root)
    t = torchcfm_side(args.steps, args.seed)
    rows = [
        ("training steps/s", args.steps / g["train_seconds"], args.steps / t["train_seconds"]),
        ("1-step samples/s", g["samples_per_second"], t["samples_per_second"]),
    ]
    print(f"{'':20} {'gradlab':>12} {'torchcfm':>12} {'gradlab/torchcfm':>18}")
    for name, a, b in rows:
        print(f"{name:20} {a:12.1f} {b:12.1f} {a / b:18.2f}")
    print(f"{'1-step SWD to data':20} {g['swd']:12.3f} {t['swd']:12.3f}   "
          f"(two data samples: {g['swd_data_vs_data']:.3f} / {t['swd_data_vs_data']:.3f})")


if __name__ == "__main__":
    main()
