"""Bring your own policy: Q-networks trained in snnTorch and Norse, exported with their own
exporters, annotated with `spikeloop annotate`, and run closed loop in Lava.

The check is the one a user of another framework needs: on every observation Lava saw
(recorded with `run --record`), the peer's own model, fed the same frozen encoding,
picks the same action. In float that holds at every decision; in fixed point within a
stated tolerance (quantized weights and thresholds move some near-tied values).
"""
from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from peer_models import norse_q, norse_q_net, snntorch_q, snntorch_q_net, train_q_briefly
from spikeloop.cli import main
from spikeloop.core.envs import random_observations
from spikeloop.core.coding import InputEncoding
from spikeloop.core.nir_io import read_metadata

T = 8
FIT = ["--encoding", "fit", "--fit-steps", "500", "--fit-seed", "3"]


def _encoding() -> InputEncoding:
    """What `--encoding fit --fit-steps 500 --fit-seed 3` freezes (the same random episodes)."""
    return InputEncoding.fit(random_observations("CartPole-v1", 500, 3))


def _encode(enc: InputEncoding, dtype=torch.float32):
    return lambda obs: torch.as_tensor(enc.encode(np.asarray(obs)), dtype=dtype)


def _peer_actions(q_fn, net, enc: InputEncoding, observations: np.ndarray) -> np.ndarray:
    net = copy.deepcopy(net).double()
    with torch.no_grad():
        return q_fn(net, _encode(enc, torch.float64)(observations), T).argmax(-1).numpy()


def _annotate_and_run(path, tmp_path, *flags) -> dict:
    ann = tmp_path / "annotated.nir"
    assert main(["annotate", str(path), "--out", str(ann), "--env", "CartPole-v1", "--T", str(T), *FIT,
                 "--decoding", "voltage-last", *flags]) == 0
    run = tmp_path / "run"
    # the annotated file runs as it is: no flags
    assert main(["run", str(ann), "--out", str(run), "--episodes", "3", "--record", "--quiet"]) == 0
    return dict(np.load(run / "decisions.npz")), read_metadata(ann)


@pytest.fixture(scope="module")
def snntorch_policy(tmp_path_factory):
    from snntorch.export_nir import export_to_nir

    enc = _encoding()
    net = snntorch_q_net()
    before = [p.detach().clone() for p in net.parameters()]
    train_q_briefly(snntorch_q, net, _encode(enc))
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    path = tmp_path_factory.mktemp("snn") / "snntorch_q.nir"
    nir.write(path, export_to_nir(copy.deepcopy(net), torch.zeros(1, 4), ignore_dims=[0]))
    return net, enc, path


@pytest.fixture(scope="module")
def norse_policy(tmp_path_factory):
    import norse.torch as nt

    enc = _encoding()
    net = norse_q_net()
    train_q_briefly(norse_q, net, _encode(enc))
    path = tmp_path_factory.mktemp("norse") / "norse_q.nir"
    graph = nt.to_nir(copy.deepcopy(net), torch.zeros(1, 4), dt=1e-3)
    nir.write(path, graph, compression=None)  # Norse's 0-d parameters do not gzip
    return net, enc, path


def _check(decisions: dict, q_fn, net, enc, fixed_floor: float) -> dict:
    out = {}
    for key in ("lava_float", "lava_fixed"):
        obs, actions = decisions[f"{key}.observations"], decisions[f"{key}.actions"]
        assert len(obs) == len(actions) > 20
        assert set(actions.tolist()) == {0, 1}, "a policy that never changes its action proves nothing"
        out[key] = float(np.mean(_peer_actions(q_fn, net, enc, obs) == actions))
    assert out["lava_float"] == 1.0, out
    assert out["lava_fixed"] >= fixed_floor, out
    print("agreement with the peer's own model:", out)
    return out


def test_snntorch_q_network_closed_loop_in_lava(snntorch_policy, tmp_path, capsys):
    """Float: the snnTorch model's action on every observation Lava saw. Fixed point: at
    least 90 % of them (8-bit weights of a briefly trained net; measured 97.5 %)."""
    net, enc, path = snntorch_policy
    decisions, meta = _annotate_and_run(path, tmp_path, "--peer-reset", "zero")
    err = capsys.readouterr().err
    assert "output node '3' is a spiking LIF (threshold 1e+09) read by its voltage" in err
    assert "the threshold is never reached and the reading is exact" in err
    assert meta.T == T and meta.extra["env_id"] == "CartPole-v1" and meta.extra["imported"]["exact"]
    assert meta.encoding == _encoding()
    _check(decisions, snntorch_q, net, enc, 0.90)


def test_norse_q_network_with_current_biases_closed_loop_in_lava(norse_policy, tmp_path):
    """A Norse policy of LIFCells whose Linears carry biases (constant input currents, run
    as bias sources). Float: every decision; fixed point: at least 90 % (measured 97.0 %)."""
    net, enc, path = norse_policy
    decisions, meta = _annotate_and_run(path, tmp_path)
    assert meta.extra["imported"]["peer"] == "norse"
    _check(decisions, norse_q, net, enc, 0.90)
