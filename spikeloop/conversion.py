"""The `spikeloop convert` run: convert a dense Q-network, then evaluate it on every backend.

The conversion itself is :mod:`spikeloop.train.convert`; this top-layer module adds what needs
the exporter and the runtime: the closed-loop returns in torch float and in the emulator's
Loihi fixed point at each window ``T``, and the report.
"""
from __future__ import annotations

import numpy as np

from spikeloop.core.coding import InputEncoding
from spikeloop.train.convert import (ConvertOptions, DenseQ, balance, calibration_observations, convert,
                                     dense_returns)
from spikeloop.train.policy import Policy, Provenance


def convert_run(dense: DenseQ, opts: ConvertOptions, progress: bool = True) -> tuple[Policy, dict]:
    """Convert, then evaluate the ANN and the converted network at every ``T`` (torch float and the
    emulator in Loihi fixed point); return the deployed policy and the report."""
    from tqdm import tqdm

    from spikeloop.export.to_nir import export_policy
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.evaluate import evaluate_torch

    calib = calibration_observations(dense, opts.env_id, opts.calib_steps, opts.seed)
    encoding = InputEncoding.fit(calib, clip=opts.clip, bits=opts.bits)
    ann = dense_returns(dense, opts.env_id, opts.episodes, opts.eval_seed)
    probe = calib[:: max(1, len(calib) // 1000)]
    q_ann = dense.q(probe)
    rows, policies = [], {}
    bar = tqdm(opts.Ts, desc="convert", unit="T", disable=not progress)
    for T in bar:
        policy = convert(dense, encoding, calib, T, opts.percentile,
                         Provenance("convert", opts.env_id, opts.seed, {"source": dense.source, "percentile":
                                                                         opts.percentile}))
        torch_ret = evaluate_torch(policy, opts.env_id, opts.episodes, opts.eval_seed)
        plan = plan_from_nir(export_policy(policy, 1e-3))
        fixed = run_closed_loop(make_backend("emulator", plan, "fixed", batch=opts.episodes), opts.env_id,
                                opts.episodes, opts.eval_seed, progress=False)
        agree = float(np.mean(np.argmax(policy.values(probe), 1) == np.argmax(q_ann, 1)))
        rows.append({"T": T, "snn_torch_mean": float(np.mean(torch_ret)), "snn_torch_std": float(np.std(torch_ret)),
                     "snn_fixed_mean": float(np.mean(fixed.returns)), "snn_fixed_std": float(np.std(fixed.returns)),
                     "action_agreement_with_ann": agree})
        policies[T] = policy
        bar.set_postfix(T=T, torch=f"{np.mean(torch_ret):.0f}", fixed=f"{np.mean(fixed.returns):.0f}")
    ann_mean = float(np.mean(ann))
    deploy = opts.deploy_T
    if deploy is None:  # the shortest window within 2 % of the ANN in fixed point, else the best one
        close = [r["T"] for r in rows if r["snn_fixed_mean"] >= ann_mean - 0.02 * abs(ann_mean)]
        deploy = min(close) if close else max(rows, key=lambda r: r["snn_fixed_mean"])["T"]
    lams = balance(dense, calib, opts.percentile)
    report = {"source": dense.source, "env_id": opts.env_id, "episodes": opts.episodes, "eval_seed": opts.eval_seed,
              "calibration_steps": opts.calib_steps, "percentile": opts.percentile, "lambdas": lams,
              "ann_mean": ann_mean, "ann_std": float(np.std(ann)), "rows": rows, "deployed_T": deploy}
    return policies[deploy], report


def convert_markdown(report: dict, command: str) -> str:
    """The conversion report as a markdown table."""
    lines = [f"# ANN-to-SNN conversion of `{report['source']}` on {report['env_id']}", "",
             f"`{command}`", "",
             f"Thresholds balanced on {report['calibration_steps']} observations of the dense policy "
             f"(percentile {report['percentile']:g}; lambda per hidden layer "
             f"{', '.join(f'{x:.3g}' for x in report['lambdas'])}). IF neurons, soft reset, threshold 1; "
             f"returns over {report['episodes']} episodes (reset seeds {report['eval_seed']}...).", "",
             "| network | T | return (torch float) | return (emulator, Loihi fixed point) | actions equal to the ANN |",
             "|---|---:|---:|---:|---:|",
             f"| dense ReLU ANN | - | {report['ann_mean']:.1f} ± {report['ann_std']:.1f} | - | - |"]
    for r in report["rows"]:
        lines.append(f"| converted SNN | {r['T']} | {r['snn_torch_mean']:.1f} ± {r['snn_torch_std']:.1f} | "
                     f"{r['snn_fixed_mean']:.1f} ± {r['snn_fixed_std']:.1f} | "
                     f"{100 * r['action_agreement_with_ann']:.1f} % |")
    lines += ["", f"Deployed (policy.safetensors, policy.nir): T = {report['deployed_T']}."]
    return "\n".join(lines) + "\n"
