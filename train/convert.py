"""ANN-to-SNN conversion of a trained ReLU Q-network (``spikeloop convert``).

Data-based threshold balancing (Diehl et al. 2015; the robust percentile of Rueckauer
et al. 2017): run the dense network on recorded observations, take ``lambda_l``, the
``percentile`` of each hidden layer's positive activations, and rescale so that a
firing rate of 1 spike per step stands for ``lambda_l``::

    W_1' = W_1 diag(std) / lambda_1            b_1' = (b_1 + W_1 mean) / lambda_1
    W_l' = W_l lambda_{l-1} / lambda_l         b_l' = b_l / lambda_l
    W_L' = W_L lambda_{L-1}                    b_L' = b_L        (the Q readout)

The first layer folds the frozen input normalisation in (the spiking network sees the
encoded observation). Hidden layers become IF neurons (no leak) with threshold 1 and
soft reset (``v -= 1``: the residue carries over, which keeps the rate faithful); each
bias is an Affine bias, a constant current per step. The readout integrates nothing
between steps (``dv = 1``) and is decoded as its mean over the window, so it is
``W_L' * (mean spike rate) + b_L``: the dense output layer on the rates.

Sources: a dense spikeloop checkpoint (``train --network dense``) or a Stable-Baselines3
DQN ``.zip``, read without executing anything from it (:func:`read_sb3_dqn`).
"""
from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeloop.core.coding import Decoding, InputEncoding
from spikeloop.core.errors import ConfigError
from spikeloop.train.policy import Policy, Provenance

SB3_MAX_BYTES = 512 * 1024 * 1024
"""the largest policy.pth read from a Stable-Baselines3 archive"""


@dataclass
class DenseQ:
    """A ReLU MLP's layers ``[(W, b), ...]`` (float64 numpy) and where they came from."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    source: str

    def __post_init__(self):
        for k, (w, b) in enumerate(self.layers):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ConfigError(f"{self.source}: layer {k} has weight {w.shape} and bias {b.shape}")
            if k and w.shape[1] != self.layers[k - 1][0].shape[0]:
                raise ConfigError(f"{self.source}: layer {k} takes {w.shape[1]} inputs, layer {k - 1} gives "
                                  f"{self.layers[k - 1][0].shape[0]}")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ConfigError(f"{self.source}: layer {k} holds NaN or inf")
        if len(self.layers) < 2:
            raise ConfigError(f"{self.source}: needs at least one hidden ReLU layer, got {len(self.layers)} layer(s)")

    @property
    def n_in(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def n_out(self) -> int:
        return self.layers[-1][0].shape[0]

    def activations(self, obs: np.ndarray) -> list[np.ndarray]:
        """Each hidden layer's ReLU output and, last, the Q-values, for raw observations ``(n, n_in)``."""
        x, out = np.asarray(obs, np.float64), []
        for k, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if k < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
            out.append(x)
        return out

    def q(self, obs: np.ndarray) -> np.ndarray:
        return self.activations(obs)[-1]


def read_sb3_dqn(path: Path) -> DenseQ:
    """The Q-network of a Stable-Baselines3 DQN ``.zip`` (``MlpPolicy``), without pickle.

    Only two members are read: ``data`` as JSON (the policy class and ``policy_kwargs``,
    their readable parts) and ``policy.pth`` with ``torch.load(weights_only=True)``, which
    refuses anything but tensors. The pickled parts of ``data`` are never unpickled.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if not {"data", "policy.pth"} <= names:
                raise ConfigError(f"{path}: not a Stable-Baselines3 model (it has no 'data' and 'policy.pth')")
            if z.getinfo("policy.pth").file_size > SB3_MAX_BYTES:
                raise ConfigError(f"{path}: policy.pth is larger than {SB3_MAX_BYTES // 2**20} MiB")
            data = json.loads(z.read("data"))
            raw = z.read("policy.pth")
    except (OSError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path}: cannot read the Stable-Baselines3 archive ({e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: its 'data' member is not JSON ({e})") from None
    module = str((data.get("policy_class") or {}).get("__module__", ""))
    if module != "stable_baselines3.dqn.policies":
        raise ConfigError(f"{path}: not a DQN model (policy class from {module or 'nowhere'!r}); "
                          "spikeloop convert takes a Stable-Baselines3 DQN with MlpPolicy")
    kwargs = data.get("policy_kwargs") or {}
    act = kwargs.get("activation_fn") if isinstance(kwargs, dict) else None
    if act is not None:  # its name is in the pickle's bytes; reading them runs nothing
        blob = base64.b64decode(act.get(":serialized:", "")) if isinstance(act, dict) else b""
        if b"ReLU" not in blob:
            raise ConfigError(f"{path}: its activation_fn is not ReLU; conversion needs a ReLU network")
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a malformed or unsafe file
        raise ConfigError(f"{path}: policy.pth is not a plain tensor file ({type(e).__name__}: {e})") from None
    if any(k.startswith("q_net.features_extractor.") for k in state):
        raise ConfigError(f"{path}: its Q-network has a learned feature extractor (a CnnPolicy); "
                          "spikeloop convert takes MlpPolicy networks")
    idx = sorted({int(k.split(".")[2]) for k in state if k.startswith("q_net.q_net.") and k.endswith(".weight")})
    if not idx:
        raise ConfigError(f"{path}: policy.pth holds no q_net.q_net.<i>.weight tensors")
    layers = [(state[f"q_net.q_net.{i}.weight"].double().numpy(), state[f"q_net.q_net.{i}.bias"].double().numpy())
              for i in idx]
    return DenseQ(layers, str(path))


def dense_from_policy(policy: Policy, source: str) -> tuple[DenseQ, InputEncoding]:
    """The layers of a dense spikeloop policy in raw observation units, and its encoding."""
    from spikeloop.train.networks import dense_layers

    enc = policy.encoding
    layers = [(w.double().numpy().copy(), b.double().numpy().copy()) for w, b in dense_layers(policy.network)]
    # the dense policy saw encoded inputs x = (obs - mean) / std: state it on raw observations
    w0, b0 = layers[0]
    mean, std = np.asarray(enc.mean), np.asarray(enc.std)
    layers[0] = (w0 / std, b0 - (w0 / std) @ mean)
    return DenseQ(layers, source), enc


def balance(dense: DenseQ, calibration: np.ndarray, percentile: float = 99.9) -> list[float]:
    """``lambda_l`` of each hidden layer: the ``percentile`` of its positive activations."""
    if not 0 < percentile <= 100:
        raise ConfigError(f"percentile must lie in (0, 100], got {percentile!r}")
    lams = []
    for k, a in enumerate(dense.activations(calibration)[:-1]):
        pos = a[a > 0]
        if pos.size == 0:
            raise ConfigError(f"{dense.source}: hidden layer {k} never activates on the {len(calibration)} "
                              "calibration observations; conversion needs it to")
        lams.append(float(np.percentile(pos, percentile)))
    return lams


def convert(dense: DenseQ, encoding: InputEncoding, calibration: np.ndarray, T: int, percentile: float = 99.9,
            provenance: Provenance | None = None) -> Policy:
    """The IF/soft-reset spiking policy of ``dense`` with thresholds balanced on ``calibration``."""
    from spikeloop.train.networks import converted_snn

    lams = balance(dense, calibration, percentile)
    mean, std = np.asarray(encoding.mean), np.asarray(encoding.std)
    net = converted_snn([dense.n_in] + [w.shape[0] for w, _ in dense.layers])
    last = len(dense.layers) - 1
    for k, (w, b) in enumerate(dense.layers):
        if k == 0:  # the network sees x = (obs - mean) / std
            w, b = w * std, b + w @ mean
        scale_in = 1.0 if k == 0 else lams[k - 1]
        scale_out = 1.0 if k == last else lams[k]
        with torch.no_grad():
            net.nodes[f"fc{k}"].weight.copy_(torch.as_tensor(w * scale_in / scale_out))
            net.nodes[f"fc{k}"].bias.copy_(torch.as_tensor(b / scale_out))
    return Policy(net, T, encoding, Decoding(step="mean"), provenance)


CONVERT_TS = (8, 16, 32, 64)


def load_dense(source: Path) -> tuple[DenseQ, str | None]:
    """``(dense network, its environment id or None)`` from a dense checkpoint or an SB3 ``.zip``."""
    source = Path(source)
    if not source.is_file():
        raise ConfigError(f"{source}: no such file (a dense policy.safetensors or a Stable-Baselines3 DQN .zip)")
    if source.suffix == ".zip":
        return read_sb3_dqn(source), None
    from spikeloop.train.checkpoint import load_policy

    policy, _ = load_policy(source)
    if policy.network.spec.get("builder") != "dense":
        raise ConfigError(f"{source}: holds a {policy.network.spec.get('builder')!r} network; conversion takes a "
                          "dense ReLU network (spikeloop train --network dense, or a Stable-Baselines3 DQN .zip)")
    dense, _ = dense_from_policy(policy, str(source))
    return dense, policy.provenance.env_id if policy.provenance else None


def calibration_observations(dense: DenseQ, env_id: str, steps: int, seed: int, eps: float = 0.1) -> np.ndarray:
    """Observations of the dense policy acting eps-greedily (what the converted one will see)."""
    from spikeloop.core.envs import make_env

    env = make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(obs)
        a = int(rng.integers(dense.n_out)) if rng.random() < eps else int(np.argmax(dense.q(obs[None])[0]))
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.asarray(out, np.float64)


def dense_returns(dense: DenseQ, env_id: str, episodes: int, seed: int) -> list[float]:
    """Greedy returns of the dense network itself (episode ``i`` reset with ``seed + i``)."""
    from spikeloop.core.envs import make_env

    out = []
    for i in range(episodes):
        env = make_env(env_id)
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(int(np.argmax(dense.q(obs[None])[0])))
            total, done = total + float(r), term or trunc
        env.close()
        out.append(total)
    return out


@dataclass
class ConvertOptions:
    """What ``spikeloop convert`` does (validated before any work)."""

    env_id: str
    Ts: tuple[int, ...] = CONVERT_TS
    deploy_T: int | None = None
    episodes: int = 10
    eval_seed: int = 1000
    calib_steps: int = 3000
    seed: int = 0
    percentile: float = 99.9
    clip: float = 8.0
    bits: int = 10

    def validate(self, dense: DenseQ, source: str) -> "ConvertOptions":
        from spikeloop.core.envs import check_env_fits
        from spikeloop.core.metadata import MAX_T

        check_env_fits(self.env_id, dense.n_in, dense.n_out, source)
        for T in (*self.Ts, *( [self.deploy_T] if self.deploy_T is not None else [])):
            if isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= MAX_T:
                raise ConfigError(f"--T values must be integers in [1, {MAX_T}], got {T!r}")
        if self.deploy_T is not None and self.deploy_T not in self.Ts:
            raise ConfigError(f"--deploy-T {self.deploy_T} must be one of the windows evaluated {list(self.Ts)}")
        for name, lo in (("episodes", 1), ("calib_steps", 1)):
            if getattr(self, name) < lo:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {lo}, got {getattr(self, name)}")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"--percentile must lie in (0, 100], got {self.percentile}")
        InputEncoding((0.0,), (1.0,), clip=self.clip, bits=self.bits)  # one error for a bad clip or bits
        return self
