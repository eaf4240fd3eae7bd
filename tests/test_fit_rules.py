"""Every hardware rule, one at a time.

For each rule of each chip family (``spikeloop.hwprofiles.rules``) a minimal network breaks
that rule and no other on a profile (a built-in one where it publishes the limit, else a
small custom profile derived from one), and a network just inside the limit passes it. The
table of cases is checked against the rules the modules define, so a new rule without a
case fails here. Each case is also run on a profile that does not publish the limit: the
rule is then reported as not checked.
"""
from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import spikeloop.hwprofiles.rules as rules_pkg
from spikeloop.hwprofiles import load_profile
from spikeloop.hwprofiles.fit import NOT_CHECKED, OK, VIOLATED, FitReport, Layer, Network, check_fit
from spikeloop.hwprofiles.profile import MAPPING_LIMITS, SECTIONS, Profile
from spikeloop.hwprofiles.rules import FAMILIES, RULES


# ---------------------------------------------------------------- networks
def dense(name, n, sources: dict, model="LIF", bias=False, pool=1) -> Layer:
    """A dense layer; ``sources`` maps source name -> (source size, non-zeros per row)."""
    weights = {}
    for src, (n_src, nnz) in sources.items():
        w = np.zeros((n, n_src), np.int8)
        w[:, :nnz] = 1
        weights[src] = w
    return Layer(name, "dense", n, model, tuple(sources), weights, has_bias=bias, pool=pool)


def conv(name, in_shape, f, kernel=(1, 1), stride=(1, 1), padding=(0, 0), src="input", model="IF") -> Layer:
    """A convolution of ``f`` kernels over ``in_shape`` (c, h, w); the output side by the usual formula."""
    c, h, w = in_shape
    fx = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    fy = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return Layer(name, "conv2d", f * fx * fy, model, (src,), in_shape=in_shape, out_shape=(f, fx, fy),
                 kernel=kernel, stride=stride, padding=padding, kernel_nonzero=f * c * kernel[0] * kernel[1])


def net(input_size, *layers, output=None) -> Network:
    """A network of ``layers`` whose output is the last one (or ``output``)."""
    return Network(input_size, list(layers), output or layers[-1].name, "toy")


def chain(n_layers, neurons=1, input_size=1) -> Network:
    """``n_layers`` layers of ``neurons`` each, one after the other."""
    layers, prev, size = [], "input", input_size
    for i in range(n_layers):
        layers.append(dense(f"n{i}", neurons, {prev: (size, size)}))
        prev, size = f"n{i}", neurons
    return net(input_size, *layers)


# ---------------------------------------------------------------- profiles
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _write_toml(data: dict, path: Path) -> None:
    lines = []
    for section, entries in data.items():
        if section == "profile":
            lines += ["[profile]"] + [f"{k} = {_toml_value(v)}" for k, v in entries.items()] + [""]
            continue
        for name, fields in entries.items():
            lines += [f"[{section}.{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in fields.items()] + [""]
    path.write_text("\n".join(lines))


def _names(needs) -> list[str]:
    return [n for need in needs for n in ((need,) if isinstance(need, str) else need)]


def custom(tmp_path: Path, base: str | Profile, only: bool = False, **limits) -> Profile:
    """A copy of profile ``base`` with ``limits`` replaced ("unknown" for unpublished).

    ``only``: every other limit the mapping checks becomes unknown, so that only the
    given limits can be checked.
    """
    base = load_profile(base) if isinstance(base, str) else base
    data = tomllib.loads(Path(base.path).read_text())
    data["profile"]["name"] = f"{base.name}-custom"
    lim = data.setdefault("limits", {})
    if only:
        for name in _names(MAPPING_LIMITS[base.mapping]):
            if name in lim:
                lim[name] = {"value": "unknown", "unit": lim[name]["unit"], "source": "", "confidence": "unknown"}
    for name, value in limits.items():
        unit = SECTIONS["limits"][name][0]
        lim[name] = ({"value": "unknown", "unit": unit, "source": "", "confidence": "unknown"}
                     if value == "unknown" else
                     {"value": list(value) if isinstance(value, tuple) else value, "unit": unit,
                      "source": "test_fit_rules", "confidence": "derived"})
    path = tmp_path / f"{data['profile']['name']}-{len(list(tmp_path.iterdir()))}.toml"
    _write_toml(data, path)
    return load_profile(path)


# ---------------------------------------------------------------- cases
@dataclass
class Case:
    """A network that breaks one rule (value > limit at ``layer``) and one just inside it."""

    profile: Profile
    bad: Network
    good: Network
    layer: str
    value: object
    limit: object
    good_profile: Profile | None = None
    """where the limit is the profile's, not the network's (weight width, allowed kinds)"""
    reported: str | None = None
    """the rule's name in the report, where the profile names the limit otherwise"""
    placer: Callable | None = None
    """a placement used in place of the family's own"""


def _one_core_per_layer(net: Network, profile: Profile):
    """A placement that ignores neurons per core: every layer whole on one core."""
    return [{"core": i, "layer": lay.name, "neurons": lay.neurons, "rows": [0, lay.neurons],
             "synapses": lay.synapses, "synapse_bytes": lay.synapses, "fan_in": 0, "fan_out": 0}
            for i, lay in enumerate(net.layers)], ""


def _fan_out_net(dst_cores: int) -> Network:
    """1,024 source neurons on one core, each reaching every one of ``dst_cores`` full destination cores."""
    n = 1024 * dst_cores
    w = np.zeros((n, 1024), np.int8)
    w[np.arange(n), np.arange(n) % 1024] = 1
    return net(1, dense("src", 1024, {"input": (1, 1)}), Layer("dst", "dense", n, "LIF", ("src",), {"src": w}))


def _parallel_kernels(k: int) -> Network:
    """``k`` layers fed by the same 1,024 inputs, each needing 1024 * 64 = 65,536 kernel entries."""
    return net(1024, *[dense(f"k{i}", 64, {"input": (1024, 1)}) for i in range(k)])


def _hub(destinations: int) -> Network:
    layers = [dense("hub", 8, {"input": (4, 4)})] + [dense(f"b{i}", 8, {"hub": (8, 8)})
                                                     for i in range(destinations)]
    return net(4, *layers)


def _xylo_pair(n_in=2, hidden=2, out=2, out_nnz=None, out_model="LIF") -> Network:
    return net(n_in, dense("h", hidden, {"input": (n_in, n_in)}),
               dense("out", out, {"h": (hidden, hidden if out_nnz is None else out_nnz)}, model=out_model))


CASES: dict[tuple[str, str], Callable[[Path], Case]] = {
    # ------------------------------------------------ cores (Loihi: 1024 neurons, 128 KB, 4096 axons, 128 cores)
    ("cores", "neurons_per_core"): lambda tmp: Case(
        load_profile("loihi"), net(1, dense("big", 1025, {"input": (1, 1)})),
        net(1, dense("big", 1024, {"input": (1, 1)})), "big", 1025, 1024, placer=_one_core_per_layer),
    ("cores", "synapse_memory_per_core"): lambda tmp: Case(  # Loihi 2: 192 KB shared, fan-in unknown
        load_profile("loihi2"), net(196_609, dense("heavy", 1, {"input": (196_609, 196_609)})),
        net(196_608, dense("heavy", 1, {"input": (196_608, 196_608)})), "heavy", 196_609, 196_608,
        reported="memory_per_core"),
    ("cores", "fan_in_per_core"): lambda tmp: Case(
        load_profile("loihi"), net(4097, dense("wide", 1, {"input": (4097, 4097)})),
        net(4096, dense("wide", 1, {"input": (4096, 4096)})), "wide", 4097, 4096),
    ("cores", "fan_out_per_core"): lambda tmp: Case(
        load_profile("loihi"), _fan_out_net(5), _fan_out_net(4), "src", 5 * 1024, 4096),
    ("cores", "cores"): lambda tmp: Case(
        load_profile("loihi"), chain(129), chain(128), "<network>", 129, 128),
    ("cores", "neurons_per_chip"): lambda tmp: Case(  # Loihi 2: 1 M neurons, 123 cores of 8192
        load_profile("loihi2"), net(1, dense("n", 1_000_001, {"input": (1, 1)})),
        net(1, dense("n", 1_000_000, {"input": (1, 1)})), "<network>", 1_000_001, 1_000_000),
    ("cores", "synapses_per_chip"): lambda tmp: Case(
        custom(tmp, "loihi", only=True, synapses_per_chip=100), net(101, dense("s", 1, {"input": (101, 101)})),
        net(100, dense("s", 1, {"input": (100, 100)})), "<network>", 101, 100),
    ("cores", "weight_bits"): lambda tmp: Case(
        custom(tmp, "loihi", weight_bits=7), net(2, dense("w", 2, {"input": (2, 2)})),
        net(2, dense("w", 2, {"input": (2, 2)})), "w", 8, 7, good_profile=custom(tmp, "loihi", weight_bits=8)),
    ("cores", "neuron_models"): lambda tmp: Case(
        custom(tmp, "loihi", neuron_models=["LIF", "IF"]), net(2, dense("m", 2, {"input": (2, 2)}, "CubaLIF")),
        net(2, dense("m", 2, {"input": (2, 2)}, "IF")), "m", "CubaLIF (spiking)", "LIF, IF"),
    # ------------------------------------------------ xylo (16 in, 1000 hidden, 8 out, fan-in 63, 64,000 weights)
    ("xylo", "input_channels"): lambda tmp: Case(
        load_profile("xylo"), _xylo_pair(n_in=17), _xylo_pair(n_in=16), "input", 17, 16),
    ("xylo", "hidden_neurons"): lambda tmp: Case(
        load_profile("xylo"), _xylo_pair(hidden=1001, out_nnz=1), _xylo_pair(hidden=1000, out_nnz=1), "h",
        1001, 1000),
    ("xylo", "output_neurons"): lambda tmp: Case(
        load_profile("xylo"), _xylo_pair(out=9), _xylo_pair(out=8), "out", 9, 8),
    ("xylo", "fan_in_per_neuron"): lambda tmp: Case(
        load_profile("xylo"), _xylo_pair(hidden=64, out=1), _xylo_pair(hidden=64, out=1, out_nnz=63), "out",
        64, 63),
    ("xylo", "total_weights"): lambda tmp: Case(  # 1000 hidden x fan-in 63 < 64,000: unreachable on Xylo itself
        custom(tmp, "xylo", only=True, total_weights=100), net(1, dense("out", 101, {"input": (1, 1)})),
        net(1, dense("out", 100, {"input": (1, 1)})), "<network>", 101, 100),
    ("xylo", "weight_bits"): lambda tmp: Case(  # one layer of synapses: the readout rule left unchecked
        custom(tmp, "xylo", weight_bits=7, output_neurons="unknown"), net(2, dense("out", 2, {"input": (2, 2)})),
        net(2, dense("out", 2, {"input": (2, 2)})), "out", 8, 7,
        good_profile=custom(tmp, "xylo", output_neurons="unknown")),
    ("xylo", "readout_after_hidden"): lambda tmp: Case(
        load_profile("xylo"), net(2, dense("out", 2, {"input": (2, 2)})), _xylo_pair(), "out", "the input",
        "hidden layers only"),
    ("xylo", "neuron_models"): lambda tmp: Case(
        load_profile("xylo"), _xylo_pair(out_model="IF"), _xylo_pair(out_model="LIF"), "out", "IF (spiking)",
        "CubaLIF, LIF, CubaLI, LI"),  # the readout's models: the host also reads a readout's voltage
    # ------------------------------------------------ speck (9 cores, 64Ki/32Ki/16Ki memories, 1024 channels, ...)
    ("speck", "layer_kinds"): lambda tmp: Case(
        custom(tmp, "speck", only=True, layer_kinds=["dense"]), net(4, conv("c", (1, 2, 2), 1)),
        net(4, conv("c", (1, 2, 2), 1)), "c", "conv2d", "dense", good_profile=load_profile("speck")),
    ("speck", "cores"): lambda tmp: Case(
        load_profile("speck"), chain(10, 8, 4), chain(9, 8, 4), "<network>", 10, 9),
    ("speck", "neuron_memory_per_core"): lambda tmp: Case(
        load_profile("speck"), net(128 * 128, conv("big", (1, 128, 128), 5)),
        net(128 * 128, conv("big", (1, 128, 128), 4)), "big", 5 * 128 * 128, 65_536),
    ("speck", "kernel_memory_per_core"): lambda tmp: Case(  # 1024 channels x 2^ceil(log2 65) = 131,072
        load_profile("speck"), net(1024, dense("k", 65, {"input": (1024, 1)})),
        net(1024, dense("k", 64, {"input": (1024, 1)})), "k", 131_072, 65_536),
    ("speck", "core_assignment"): lambda tmp: Case(  # only cores 5 and 6 hold 65,536 kernel entries
        load_profile("speck"), _parallel_kernels(3), _parallel_kernels(2), "k2", "(64, 65536)",
        "a distinct core with both"),
    ("speck", "bias_memory_per_core"): lambda tmp: Case(  # Speck's 1024 equals its channel limit
        custom(tmp, "speck", only=True, bias_memory_per_core=4), net(1, dense("b", 5, {"input": (1, 1)}, bias=True)),
        net(1, dense("b", 4, {"input": (1, 1)}, bias=True)), "b", 5, 4),
    ("speck", "destinations_per_core"): lambda tmp: Case(
        load_profile("speck"), _hub(3), _hub(2), "hub", 3, 2),
    ("speck", "max_input_size"): lambda tmp: Case(
        load_profile("speck"), net(129 * 129, conv("in", (1, 129, 129), 1)),
        net(128 * 128, conv("in", (1, 128, 128), 1)), "in", 129, 128),
    ("speck", "max_kernel_size"): lambda tmp: Case(
        load_profile("speck"), net(17 * 17, conv("k", (1, 17, 17), 1, kernel=(17, 17))),
        net(16 * 16, conv("k", (1, 16, 16), 1, kernel=(16, 16))), "k", 17, 16),
    ("speck", "max_channels"): lambda tmp: Case(
        load_profile("speck"), net(1025, dense("wide", 1, {"input": (1025, 1)})),
        net(1024, dense("wide", 1, {"input": (1024, 1)})), "wide", 1025, 1024),
    ("speck", "max_padding"): lambda tmp: Case(
        load_profile("speck"), net(256, conv("p", (1, 16, 16), 1, kernel=(3, 3), padding=(8, 8))),
        net(256, conv("p", (1, 16, 16), 1, kernel=(3, 3), padding=(7, 7))), "p", 8, 7),
    ("speck", "strides"): lambda tmp: Case(
        load_profile("speck"), net(256, conv("s", (1, 16, 16), 1, kernel=(3, 3), stride=(3, 3))),
        net(256, conv("s", (1, 16, 16), 1, kernel=(3, 3), stride=(2, 2))), "s", "(3, 3)", "1, 2, 4, 8"),
    ("speck", "pool_sizes"): lambda tmp: Case(
        load_profile("speck"), net(4, dense("p", 8, {"input": (4, 4)}, pool=3)),
        net(4, dense("p", 8, {"input": (4, 4)}, pool=4)), "p", 3, "1, 2, 4"),
    ("speck", "weight_bits"): lambda tmp: Case(
        custom(tmp, "speck", weight_bits=7), net(4, dense("w", 8, {"input": (4, 4)})),
        net(4, dense("w", 8, {"input": (4, 4)})), "w", 8, 7, good_profile=load_profile("speck")),
    ("speck", "neuron_models"): lambda tmp: Case(
        load_profile("speck"), net(4, dense("r", 2, {"input": (4, 4)}, "LI")),
        net(4, dense("r", 2, {"input": (4, 4)}, "IF")), "r", "LI (non-spiking)", "IF, LIF"),
}


def _rule(mapping: str, name: str):
    return next(r for r in RULES[mapping] if r.name == name)


def _status(report: FitReport, rule: str) -> tuple[str, str]:
    return next((r.status, r.detail) for r in report.results if r.rule == rule)


def _check(case: Case, mapping: str, profile: Profile, network: Network, monkeypatch) -> FitReport:
    assert profile.mapping == mapping
    if case.placer is not None:
        monkeypatch.setattr(FAMILIES[mapping], "place", case.placer)
    return check_fit(network, profile)


# ---------------------------------------------------------------- the table covers every rule
def _rules_modules():
    return [importlib.import_module(f"{rules_pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(rules_pkg.__path__)]


def test_every_rule_function_of_every_rules_module_has_a_case():
    registered = {}
    for mod in _rules_modules():
        if hasattr(mod, "RULES"):  # a chip family: it must be one the checks use
            assert FAMILIES.get(mod.MAPPING) is mod, f"{mod.__name__} is not registered in rules.FAMILIES"
            for rule in mod.RULES:
                # a small named module-level function, not a closure or lambda
                assert rule.check.__name__.startswith("rule_"), (mod.MAPPING, rule.name)
                assert getattr(sys.modules[rule.check.__module__], rule.check.__name__) is rule.check
                registered[mod.MAPPING, rule.name] = rule.check
    defined = {f for mod in _rules_modules() for name, f in vars(mod).items()
               if name.startswith("rule_") and inspect.isfunction(f) and f.__module__ == mod.__name__}
    assert defined == set(registered.values()), "a rule_* function that no family's RULES lists"
    missing = sorted(set(registered) - set(CASES))
    assert not missing, f"rules without a case in tests/test_fit_rules.py: {missing}"
    assert sorted(CASES) == sorted(registered), "a case for a rule that no longer exists"
    assert set(FAMILIES) | {"none"} == set(RULES)


# ---------------------------------------------------------------- each rule fires alone, and passes inside
@pytest.mark.parametrize("mapping,rule", sorted(CASES), ids=[f"{m}-{r}" for m, r in sorted(CASES)])
def test_rule_fires_alone_with_layer_value_and_limit(mapping, rule, tmp_path, monkeypatch):
    case = CASES[mapping, rule](tmp_path)
    name = case.reported or rule
    rep = _check(case, mapping, case.profile, case.bad, monkeypatch)
    assert _status(rep, name)[0] == VIOLATED
    got = [(v.rule, v.layer, v.value, v.limit) for v in rep.violations]
    assert got == [(name, case.layer, case.value, case.limit)], "must break exactly this rule, once"
    v = rep.violations[0]
    if isinstance(case.value, int) and isinstance(case.limit, int):
        assert v.excess == case.value - case.limit
    assert f"[{name}] layer {case.layer!r}" in v.message()
    assert f"[{name}] layer {case.layer!r}" in str(rep.error())
    assert rep.fits is False

    ok = _check(case, mapping, case.good_profile or case.profile, case.good, monkeypatch)
    assert _status(ok, name) == (OK, "")
    assert ok.violations == [] and ok.fits is True


@pytest.mark.parametrize("mapping,rule", sorted(CASES), ids=[f"{m}-{r}" for m, r in sorted(CASES)])
def test_rule_whose_limit_is_not_published_is_not_checked(mapping, rule, tmp_path, monkeypatch):
    case = CASES[mapping, rule](tmp_path)
    unpublished = custom(tmp_path, case.profile,
                         **{n: "unknown" for n in _names(_rule(mapping, rule).needs) if case.profile.get(n)})
    rep = _check(case, mapping, unpublished, case.bad, monkeypatch)
    name = case.reported or rule
    assert _status(rep, name) == (NOT_CHECKED, "limit not published")
    assert not [v for v in rep.violations if v.rule == name]
    assert name in [r.rule for r in rep.not_checked]


# ---------------------------------------------------------------- details of single rules
def test_synapse_memory_rule_reports_the_name_the_profile_uses(tmp_path):
    # Loihi names its own synapse memory; with fan-in unknown a 101-input neuron breaks only 100 B
    prof = custom(tmp_path, "loihi", synapse_memory_per_core=100, fan_in_per_core="unknown")
    rep = check_fit(net(101, dense("heavy", 1, {"input": (101, 101)})), prof)
    assert [(v.rule, v.layer, v.value, v.limit) for v in rep.violations] == [
        ("synapse_memory_per_core", "heavy", 101, 100)]
    assert "synapse memory (lower bound) on core 0 101 bytes > limit 100 bytes" in rep.violations[0].message()
    ok = check_fit(net(100, dense("heavy", 1, {"input": (100, 100)})), prof)
    assert _status(ok, "synapse_memory_per_core") == (OK, "")


def test_placement_rules_are_not_checked_without_a_placement(tmp_path):
    # no neurons per core: no placement, so no per-core rule and no core count, but the chip totals run
    prof = custom(tmp_path, "loihi", neurons_per_core="unknown")
    rep = check_fit(chain(129), prof)
    for rule in ("synapse_memory_per_core", "fan_in_per_core", "fan_out_per_core", "cores"):
        assert _status(rep, rule) == (NOT_CHECKED, "no placement: loihi-custom publishes no neurons per core")
    assert _status(rep, "neurons_per_core") == (NOT_CHECKED, "limit not published")
    assert _status(rep, "neurons_per_chip") == (OK, "")


def test_max_channels_also_counts_output_channels():
    rep = check_fit(net(1, dense("many", 1025, {"input": (1, 1)})), load_profile("speck"))
    assert [(v.rule, v.layer, v.what, v.value, v.limit) for v in rep.violations] == [
        ("max_channels", "many", "output channels", 1025, 1024)]


def test_bias_memory_counts_only_layers_with_a_bias(tmp_path):
    prof = custom(tmp_path, "speck", only=True, bias_memory_per_core=4)
    assert check_fit(net(1, dense("b", 5, {"input": (1, 1)})), prof).violations == []


def test_weight_bits_skips_layers_without_synapses(tmp_path):
    prof = custom(tmp_path, "xylo", weight_bits=7)
    layers = [dense("h", 2, {"input": (2, 2)}), dense("out", 2, {"h": (2, 0)})]  # out: all weights zero
    rep = check_fit(net(2, *layers), prof)
    assert [(v.rule, v.layer) for v in rep.violations] == [("weight_bits", "h")]


def test_no_rule_runs_on_a_conventional_profile():
    rep = check_fit(chain(3), load_profile("cpu-45nm"))
    assert rep.results == [] and rep.fits is None


# ---------------------------------------------------------------- the network view takes a dense graph's plan
def test_dense_graph_without_its_compiled_plan_names_the_source():
    from spikeloop.core.errors import ConfigError
    from spikeloop.core.nir_io import read_graph
    from spikeloop.hwprofiles.fit import layers_from_nir

    with pytest.raises(ConfigError, match=r"^policy\.nir: a graph without Conv2d nodes .* pass plan="):
        layers_from_nir(read_graph("tests/data/policy.nir"), source="policy.nir")


def test_hwprofiles_imports_nothing_above_it():
    import subprocess

    code = ("import sys, spikeloop.hwprofiles, spikeloop.hwprofiles.fit, spikeloop.hwprofiles.rules; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['spikeloop', 'runtime'], ['spikeloop', 'train'], ['spikeloop', 'export'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
