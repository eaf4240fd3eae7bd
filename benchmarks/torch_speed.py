"""Torch speed of the spiking Q-network: the cost that training pays per gradient step and per action.

Measures, for the DQN's 4-64-64-2 MLP SpikingGraph (T = 8, fake quantization on):

- a forward and backward pass of one decision window on a batch of 64 (one DQN gradient step
  runs three forwards and one backward of this kind);
- a no-grad forward of one observation (one epsilon-greedy action);
- training throughput: environment steps per second of a seeded CartPole run.

Run: ``.venv/bin/python benchmarks/torch_speed.py`` (writes its section of BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from _common import machine, update_section


def _time(fn, repeats: int, rounds: int = 5) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        out.append((time.perf_counter() - t0) / repeats)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5000, help="environment steps of the training run")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)

    from spikeloop.train.agents.dqn import DQNConfig, train_dqn
    from spikeloop.train.networks import spiking_mlp

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = spiking_mlp([4, 64, 64, 2], fake_quant=True)
    x64, x1 = torch.randn(64, 4), torch.randn(1, 4)

    def grad_step():
        net.zero_grad()
        net.window(x64, 8)[-1].sum().backward()

    def act():
        with torch.no_grad():
            net.window(x1, 8)

    _time(grad_step, 20, 1)  # warm-up
    fb = _time(grad_step, 100)
    fw = _time(act, 300)
    cfg = DQNConfig(total_steps=args.steps, eval_every=args.steps + 1, target_return=1e9)
    t0 = time.perf_counter()
    train_dqn(cfg, progress=False)
    sps = args.steps / (time.perf_counter() - t0)

    rows = [("forward + backward, batch 64, T = 8", f"{1e3 * min(fb):.2f} ms (median {1e3 * statistics.median(fb):.2f})"),
            ("forward, 1 observation, no grad", f"{1e3 * min(fw):.3f} ms (median {1e3 * statistics.median(fw):.3f})"),
            (f"DQN training, CartPole-v1, seed 0, {args.steps} steps", f"{sps:.0f} env steps/s")]
    body = "\n".join([
        f"Command: `.venv/bin/python benchmarks/torch_speed.py --steps {args.steps}`", "",
        f"Machine: {machine()}; torch {torch.__version__}, 1 thread.", "",
        "| what | time |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows], "",
        "Best of 5 rounds (median in brackets). The network is `spiking_mlp([4, 64, 64, 2], "
        "fake_quant=True)`, the MLP builder of the one torch network (`SpikingGraph`)."])
    print(body)
    if not args.no_write:
        update_section("Torch speed of the Q-network (benchmarks/torch_speed.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
