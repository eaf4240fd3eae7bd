"""Many copies of the network at once: the batched emulator and Lava's batched fused process.

Every copy must be bit-exact with a network of its own: the same values, actions,
returns and traces as a single-copy run, in float and fixed point, and the same counts
as the copies run one by one on the same decisions.
"""
from __future__ import annotations

import numpy as np
import pytest

from spikeloop.cli import main
from spikeloop.runtime.backends import make_backend
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.fixed_point import quantize_plan
from spikeloop.runtime.policy_import import import_policy
from spikeloop.runtime.runner import run_closed_loop
from spikeloop.core.errors import ConfigError

from conftest import DATA

EPISODES, STEPS = 3, 40  # 3 episodes on 2 copies: one copy plays two, the other idles masked


@pytest.fixture(scope="module")
def compiled():
    plan = import_policy(DATA / "policy.nir").plan
    return plan, quantize_plan(plan)


def _sum_counts(counts):
    total = counts[0].to_dict()
    for c in counts[1:]:
        for k, v in c.to_dict().items():
            if isinstance(v, int):
                total[k] += v
            elif k != "graded":
                total[k] = {n: total[k][n] + v[n] for n in v}
    return total


@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_batched_emulator_is_each_copy_alone(compiled, precision):
    """Values of every copy equal a lone network's on the same decision sequence, and the
    batch's counts are the sum of the lone networks' counts (pipeline tails included)."""
    plan, fixed = compiled
    obs = np.random.default_rng(0).normal(size=(6, 5, 4)) * [0.5, 1.0, 0.1, 1.0]  # decisions x copies
    batch = Emulator(plan, precision, fixed, batch=5)
    values = np.stack([batch.decide(o) for o in obs])
    lone_counts = []
    for i in range(5):
        lone = Emulator(plan, precision, fixed)
        assert np.array_equal(np.stack([lone.decide(o) for o in obs[:, i]]), values[:, i]), i
        lone_counts.append(lone.counts())
    assert batch.counts().to_dict() == _sum_counts(lone_counts)


def test_masked_copies_are_not_counted(compiled):
    plan, fixed = compiled
    obs = np.random.default_rng(1).normal(size=(3, 4))
    batch = Emulator(plan, "fixed", fixed, batch=3)
    batch.active = np.array([True, False, True])
    values = batch.decide(obs)
    lone = [Emulator(plan, "fixed", fixed) for _ in range(2)]
    assert np.array_equal(values[[0, 2]], np.stack([lone[0].decide(obs[0]), lone[1].decide(obs[2])]))
    assert batch.counts().to_dict() == _sum_counts([e.counts() for e in lone])


@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_closed_loop_batched_equals_single_on_every_backend(compiled, precision):
    """Emulator alone, emulator x2, Lava fused x2 (with the batched emulator as its twin,
    checked at every decision) and Lava per-node alone play the same episodes: returns and
    recorded traces (observations, values, actions) identical; the batched Lava counts are
    the batched emulator's."""
    plan, fixed = compiled
    common = dict(env_id="CartPole-v1", episodes=EPISODES, seed=1000, progress=False, record=True, max_steps=STEPS)
    q = fixed if precision == "fixed" else None
    single = run_closed_loop(make_backend("emulator", plan, precision, q), **common)
    emu2 = run_closed_loop(make_backend("emulator", plan, precision, q, batch=2), **common)
    lava2 = run_closed_loop(make_backend("lava-fused", plan, precision, q, batch=2),
                            twin=make_backend("emulator", plan, precision, q, batch=2), **common)
    runs = [emu2, lava2]
    if precision == "fixed":
        runs.append(run_closed_loop(make_backend("lava-per-node", plan, precision, q), **common))
    for r in runs:
        assert r.returns == single.returns and r.decisions == single.decisions == EPISODES * STEPS
        for k in single.trace:
            assert np.array_equal(r.trace[k], single.trace[k]), (r.backend, k)
    assert lava2.counts.to_dict() == emu2.counts.to_dict()
    assert emu2.extra["envs"] == lava2.extra["envs"] == 2


def test_batch_must_be_positive_and_closed_loop(compiled):
    plan, fixed = compiled
    with pytest.raises(ConfigError, match="batch must be a positive integer, got 0"):
        Emulator(plan, "fixed", fixed, batch=0)
    with pytest.raises(ConfigError, match="closed-loop decision windows only"):
        Emulator(plan, "fixed", fixed, windowed=False, batch=2)


def test_run_envs_gives_the_single_run_returns(tmp_path, capsys):
    import json

    out = {}
    for n in (1, 3):
        assert main(["run", str(DATA / "policy.nir"), "--out", str(tmp_path / f"r{n}"), "--episodes", "3",
                     "--backend", "emulator", "--precision", "fixed", "--envs", str(n), "--quiet",
                     "--profile", "loihi"]) == 0
        out[n] = json.loads((tmp_path / f"r{n}" / "report.json").read_text())
    assert out[1]["evaluation"]["emulator_fixed"]["returns"] == out[3]["evaluation"]["emulator_fixed"]["returns"]
    assert out[3]["evaluation"]["emulator_fixed"]["envs"] == 3
    assert "3 copies at once" in out[3]["counts_source"]
    assert main(["run", str(DATA / "policy.nir"), "--out", str(tmp_path / "bad"), "--envs", "2", "--mapping",
                 "per-node", "--quiet"]) == 2
    assert "--envs 2: batched copies run on the emulator and on Lava's fused mapping, not on lava per-node" \
        in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
