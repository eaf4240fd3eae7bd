"""Learning from demonstrations of mixed quality: behaviour cloning, a return-conditioned spiking policy and
the spiking decision transformer, over several seeds, the deployable ones in Lava fixed point.

    .venv/bin/python benchmarks/offline_mixed.py               # seeds 0-4

The data: ``spikeloop collect tests/data/policy.safetensors --episodes 30 --epsilon 0,0.3,0.6`` (the
committed spiking DQN, a random action at probability 0, 0.3 or 0.6 in turn; the recorded action is the
one taken). Per seed, on the same file:

- ``bc``: ``spikeloop train --agent bc`` (defaults): clones every action, good or bad;
- ``bc-return``: ``--preset bc-return-cartpole``: the episode's return as one more input, deployed with
  the command 500 folded into the first layer's bias;
- ``sdt``: ``--preset sdt-cartpole`` without its online phase (offline only), and
- ``sdt+online``: the preset as it is (50 REINFORCE episodes after the offline training).

The two bc policies run 100 greedy episodes in torch float and 20 in Lava fixed point (fused mapping),
reset seeds 1000...; the transformers 20 greedy episodes in torch (they do not deploy: NIR has no
attention). Writes the section "Offline learning from mixed demonstrations" of BENCHMARKS.md; results in
``benchmarks/offline_mixed.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, update_section  # noqa: E402

SECTION = "Offline learning from mixed demonstrations (benchmarks/offline_mixed.py)"
EXPERT = ROOT / "tests" / "data" / "policy.safetensors"
EPSILON = [0.0, 0.3, 0.6]
METHODS = ("bc", "bc-return", "sdt", "sdt+online")


def _config(method: str, demos: Path, seed: int):
    from spikeloop.options import preset_path
    from spikeloop.pipeline import read_config
    from spikeloop.train.agents import config_from_dict, get_agent

    if method == "bc":
        agent, table = "bc", {}
    else:
        agent, table = read_config(preset_path("bc-return-cartpole" if method == "bc-return" else "sdt-cartpole"))
    if method == "sdt":
        table = table | {"finetune_episodes": 0}
    return agent, config_from_dict(get_agent(agent).config, table | {"demos": str(demos), "seed": seed})


def run(seeds: list[int], episodes: int, lava_episodes: int, sdt_episodes: int) -> tuple[list[dict], list[float]]:
    from spikeloop.core.nir_io import read_graph, write_graph
    from spikeloop.export.to_nir import export_policy
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.runner import run_closed_loop
    from spikeloop.train.agents import get_agent
    from spikeloop.train.agents.sdt import play
    from spikeloop.train.evaluate import evaluate_torch
    from spikeloop.train.offline import collect, expert_actor, save_demos

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        demos_path = Path(tmp) / "mixed.npz"
        demos = collect(expert_actor(EXPERT), "CartPole-v1", 30, 0, str(EXPERT), progress=False, epsilon=EPSILON)
        save_demos(demos_path, demos)
        for seed in seeds:
            for method in METHODS:
                agent, cfg = _config(method, demos_path, seed)
                t0 = time.time()
                res = get_agent(agent).train(cfg, progress=False)
                row = {"seed": seed, "method": method, "train_s": time.time() - t0, "best_eval": res.best_eval}
                if agent == "bc":
                    nir_path = Path(tmp) / f"{method}{seed}.nir"
                    write_graph(nir_path, export_policy(res.policy, 1e-3))
                    plan = plan_from_nir(read_graph(nir_path))
                    row["torch"] = evaluate_torch(res.policy, "CartPole-v1", episodes, seed=1000)
                    row["lava"] = run_closed_loop(make_backend("lava-fused", plan, "fixed"), "CartPole-v1",
                                                  lava_episodes, 1000, progress=False).returns
                else:
                    row["torch"] = play(res.policy, "CartPole-v1", sdt_episodes, 1000)[0]
                rows.append(row)
                print(json.dumps({k: (float(np.mean(v)) if isinstance(v, list) else v) for k, v in row.items()}),
                      flush=True)
    return rows, demos.returns


def section(rows: list[dict], data: list[float], command: str, where: str, lava_episodes: int,
            sdt_episodes: int) -> str:
    def ms(x):
        return f"{np.mean(x):.1f} ± {np.std(x):.1f}"

    seeds = sorted({r["seed"] for r in rows})
    body = []
    for r in rows:
        lava = ms(r["lava"]) if "lava" in r else "does not deploy (attention)"
        body.append(f"| {r['seed']} | {r['method']} | {r['train_s']:.0f} | {ms(r['torch'])} | {lava} |")
    summary = []
    for m in METHODS:
        torch_means = np.array([np.mean(r["torch"]) for r in rows if r["method"] == m])
        lava_means = np.array([np.mean(r["lava"]) for r in rows if r["method"] == m and "lava" in r])
        lava = f"{lava_means.mean():.1f} (spread {lava_means.std():.1f}, min {lava_means.min():.1f}; " \
               f"{int((lava_means >= 475).sum())} of {len(lava_means)} at ≥ 475)" if len(lava_means) else "—"
        summary.append(f"| {m} | {torch_means.mean():.1f} (spread {torch_means.std():.1f}, min "
                       f"{torch_means.min():.1f}) | {lava} |")
    return f"""Seeds {', '.join(map(str, seeds))}: `{command}` on {where}.

The data: 30 episodes of the committed spiking DQN (`tests/data/policy.safetensors`) recorded by `spikeloop collect --episodes 30 --epsilon 0,0.3,0.6` (a random action at probability 0, 0.3 or 0.6 in turn; the action recorded is the one taken): {len(data)} episodes, returns {np.mean(data):.1f} on average (min {min(data):.0f}, max {max(data):.0f}; {sum(d >= 500 for d in data)} of them at 500). `bc` is `spikeloop train --agent bc` (defaults), `bc-return` the preset `bc-return-cartpole` (deployed asking for 500), `sdt` the preset `sdt-cartpole` offline only (`--finetune-episodes 0`), `sdt+online` the preset with its 50 REINFORCE episodes. Torch: 100 greedy episodes for the bc policies, {sdt_episodes} for the transformers; Lava fixed point: {lava_episodes} episodes (fused mapping); reset seeds 1000...

| method | mean over seeds, torch float | mean over seeds, Lava fixed |
|:---|---:|---:|
{chr(10).join(summary)}

| seed | method | train s | torch float | Lava fixed |
|---:|:---|---:|---:|---:|
{chr(10).join(body)}
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--lava-episodes", type=int, default=20)
    p.add_argument("--sdt-episodes", type=int, default=20)
    p.add_argument("--from-json", action="store_true", help="rewrite the section from the saved results")
    args = p.parse_args(argv)
    results = ROOT / "benchmarks" / "offline_mixed.json"
    if args.from_json:
        s = json.loads(results.read_text())
        update_section(SECTION, section(s["rows"], s["data_returns"], s["command"], s["machine"], s["lava_episodes"],
                                        s["sdt_episodes"]))
        return 0
    extra = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/offline_mixed.py" + (f" {shlex.join(extra)}" if extra else "")
    rows, data = run(args.seeds, args.episodes, args.lava_episodes, args.sdt_episodes)
    results.write_text(json.dumps({"command": command, "machine": machine(), "data_returns": data, "rows": rows,
                                   "lava_episodes": args.lava_episodes, "sdt_episodes": args.sdt_episodes}))
    update_section(SECTION, section(rows, data, command, machine(), args.lava_episodes, args.sdt_episodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
