"""Energy arithmetic with hand-computed values, the all-in model, NeuroBench counts."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from spikeloop.hwprofiles import NetworkShape, load_profile, price_dense_baseline, price_neuromorphic
from spikeloop.hwprofiles.energy import neurobench_counts
from spikeloop.runtime.emulator import Emulator
from spikeloop.runtime.plan import INPUT
from spikeloop.core.neuron import cuba_step

pJ = 1e-12
# one decision of a 4 -> 10 -> 10 -> 2 network: 10 Lava steps, graded input into fc0
PER_DECISION = {"synops": {"fc0": 80.0, "fc1": 30.0, "fc2": 12.0},
                "graded": {"fc0": True, "fc1": False, "fc2": False},
                "updates": {"lif0": 100.0, "lif1": 100.0, "li2": 20.0},
                "active": {"lif0": 40.0, "lif1": 10.0, "li2": 20.0},
                "spikes": {"lif0": 6.0, "lif1": 4.0}, "steps": 10.0}
SHAPE = NetworkShape(input_size=4, output_size=2, neurons=22, dense_macs=4 * 10 + 10 * 10 + 10 * 2,
                     spike_destinations={"lif0": 1, "lif1": 1})
HOST = load_profile("cpu-45nm")
HOST_J = 4 * 4.6 * pJ + 1 * 0.9 * pJ  # normalise 4 values (MAC fp32), argmax over 2 (1 compare)
REL = 1e-12  # float rounding of sums of products; the arithmetic itself is exact


def terms(rep):
    return {t.name: t for t in rep.terms}


def test_loihi_breakdown_by_hand():
    rep = price_neuromorphic(PER_DECISION, SHAPE, load_profile("loihi"), HOST)
    t = terms(rep)
    assert t["synaptic ops (binary spikes)"].energy == pytest.approx(42 * 23.6 * pJ, rel=REL)
    assert t["synaptic ops (graded input)"].energy == pytest.approx(80 * 23.6 * pJ, rel=REL)
    assert t["neuron updates (active)"].energy == pytest.approx(70 * 81 * pJ, rel=REL)
    assert t["neuron updates (inactive)"].count == 150
    assert t["neuron updates (inactive)"].energy == pytest.approx(150 * 52 * pJ, rel=REL)
    assert t["spikes routed"].energy == pytest.approx(10 * 1.7 * pJ, rel=REL)
    assert t["static power x window"].energy == pytest.approx(0.104 * 10 * 1e-3, rel=REL)
    dynamic = (42 + 80) * 23.6 * pJ + 70 * 81 * pJ + 150 * 52 * pJ + 10 * 1.7 * pJ + HOST_J
    assert rep.total == pytest.approx(dynamic + 1.04e-3, rel=REL)
    assert rep.to_dict()["dynamic_J"] == pytest.approx(dynamic, rel=REL)
    assert rep.unpriced == ["input spike encoder"]  # Loihi 1 takes binary events only
    assert t["input spike encoder"].count == 4 and t["input spike encoder"].status == "unpriced"


def test_truenorth_all_in_is_priced_alone():
    rep = price_neuromorphic(PER_DECISION, SHAPE, load_profile("truenorth"), HOST)
    t = terms(rep)
    assert rep.total == pytest.approx((42 + 80) * 26 * pJ + HOST_J, rel=REL)
    for name in ("neuron updates (active)", "neuron updates (inactive)", "spikes routed", "static power x window"):
        assert t[name].status == "included" and t[name].energy is None, name
        assert "included in synop_all_in (26 pJ all-in per synaptic event)" == t[name].source
    assert rep.unpriced == ["input spike encoder"] and rep.static == 0


def test_loihi2_prices_nothing_it_cannot_cite():
    rep = price_neuromorphic(PER_DECISION, SHAPE, load_profile("loihi2"), HOST)
    assert rep.total == pytest.approx(HOST_J, rel=REL)
    assert rep.unpriced == ["synaptic ops (binary spikes)", "synaptic ops (graded input)",
                            "neuron updates (active)", "neuron updates (inactive)", "spikes routed",
                            "static power x window"]
    assert "input spike encoder" not in terms(rep)  # graded spikes carry the observation


def test_speck_static_power_without_a_timestep_stays_unpriced():
    t = terms(price_neuromorphic(PER_DECISION, SHAPE, load_profile("speck"), HOST))
    static = t["static power x window"]
    assert static.status == "unpriced" and static.count == 10 and static.unit == "steps"
    assert static.source == ("static power 0.00042 W is published but no time per step, so the window has no "
                             "duration")


def test_spinnaker2_prices_synops_only():
    rep = price_neuromorphic(PER_DECISION, SHAPE, load_profile("spinnaker2"), HOST)
    assert rep.total == pytest.approx(122 * 10 * pJ + HOST_J, rel=REL)
    assert "neuron updates (active)" in rep.unpriced and "static power x window" in rep.unpriced


def test_dense_baseline_fp32_and_int8_by_hand():
    fp32 = price_dense_baseline(SHAPE, HOST, "fp32")
    int8 = price_dense_baseline(SHAPE, HOST, "int8")
    assert SHAPE.dense_macs == 160
    assert fp32.total == pytest.approx(160 * 4.6 * pJ, rel=REL)
    assert int8.total == pytest.approx(160 * 0.23 * pJ, rel=REL)


def test_neurobench_counts_by_hand():
    nb = neurobench_counts(PER_DECISION, SHAPE)
    assert (nb["dense"], nb["effective_macs"], nb["effective_acs"]) == (1600, 80, 42)
    assert nb["activation_sparsity"] == 1 - 10 / 200


def test_energy_stage_reports_every_target_with_fit_and_ratios(small_plan):
    from spikeloop.pipeline import energy_stage

    em = Emulator(small_plan, "fixed")
    rng = np.random.default_rng(0)
    for _ in range(3):
        em.decide_raw(np.rint(rng.normal(0, 20, small_plan.input_size)).astype(np.int64))
    per_dec = em.counts().per_decision()
    out = energy_stage(small_plan, per_dec, ["loihi", "loihi2", "speck", "xylo", "truenorth", "spinnaker2"],
                       "cpu-45nm")
    assert list(out["targets"]) == ["loihi", "loihi2", "speck", "xylo", "truenorth", "spinnaker2"]
    loihi = out["targets"]["loihi"]
    assert loihi["fit"]["fits"] is True and loihi["fit"]["cores_used"] == 3
    assert loihi["ratio_vs_dense_fp32"] == loihi["total_J"] / out["baselines"]["fp32"]["total_J"]
    xylo_fit = out["targets"]["xylo"]["fit"]  # 4-32-32-2 fits (the host reads the readout's voltage)...
    assert xylo_fit["fits"] is True and any("need a spike encoder" in n for n in xylo_fit["notes"])  # ...its input
    # needs an encoder
    syn = sum(per_dec["synops"].values())
    assert out["neurobench"]["effective_macs"] + out["neurobench"]["effective_acs"] == syn
    priced = sum(t["energy_J"] for t in loihi["terms"] if t["energy_J"] is not None)
    assert loihi["total_J"] == pytest.approx(priced, rel=REL)


def test_conventional_profile_is_not_a_target(small_plan):
    from spikeloop.core.errors import ConfigError
    from spikeloop.pipeline import energy_stage

    with pytest.raises(ConfigError, match="cpu-45nm is a conventional profile"):
        energy_stage(small_plan, Emulator(small_plan).counts().per_decision(), ["cpu-45nm"], "cpu-45nm")


# ------------------------------------------------------------------ NeuroBench on the same model
class _Spikes(torch.nn.Module):
    """Identity on a population's spikes: the activation module NeuroBench hooks."""

    def forward(self, s):
        return s


class _LavaSchedule(torch.nn.Module):
    """The plan as Lava runs it, in torch: one step of delay per Dense hop, windowed resets.

    Synapses are ``nn.Linear`` layers so that NeuroBench's hooks see every input they get.
    """

    def __init__(self, plan):
        super().__init__()
        self.plan = plan
        self.linears = torch.nn.ModuleDict()
        for c in plan.connections:
            lin = torch.nn.Linear(c.weight.shape[1], c.weight.shape[0], bias=False).double()
            lin.weight.data = torch.as_tensor(c.weight, dtype=torch.float64)
            self.linears[c.name] = lin
        self.acts = torch.nn.ModuleDict({p.name: _Spikes() for p in plan.populations if p.spiking})
        self.offsets = plan.reset_offsets()
        self.t = 0
        self.u = {p.name: torch.zeros(1, p.size, dtype=torch.float64) for p in plan.populations}
        self.v = {k: x.clone() for k, x in self.u.items()}
        self.buf = {c.name: torch.zeros(1, c.weight.shape[0], dtype=torch.float64) for c in plan.connections}

    def forward(self, x):
        zero = torch.zeros_like(x)
        for k in range(self.plan.period):
            self.t += 1
            out = {INPUT: x if k < self.plan.T else zero}
            for p in self.plan.populations:
                a_in = sum(self.buf[c.name] for c in self.plan.incoming(p.name))
                if self.t % self.plan.period == self.offsets[p.name]:
                    self.u[p.name], self.v[p.name] = torch.zeros_like(a_in), torch.zeros_like(a_in)
                u, v, s, _ = cuba_step(self.u[p.name], self.v[p.name], a_in, du=float(np.min(p.du)),
                                       dv=float(np.min(p.dv)), bias=torch.as_tensor(p.bias), vth=p.vth,
                                       reset=p.reset, spike_fn=lambda z: (z > 0).double())
                self.u[p.name], self.v[p.name] = u, v
                if s is not None:
                    out[p.name] = self.acts[p.name](s)
            for c in self.plan.connections:
                self.buf[c.name] = self.linears[c.name](out[c.src])
        return self.v[self.plan.output]


def test_counts_agree_with_neurobench_metrics_on_the_same_model():
    try:
        import neurobench  # noqa: F401
    except ImportError:
        why = "neurobench not installed (pip install --no-deps neurobench snntorch)"
        if os.environ.get("CI"):  # the Makefile installs it: under CI this check must never skip
            pytest.fail(why + "; it is required when CI is set")
        pytest.skip(why)
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    from conftest import random_plan

    plan, _, _ = random_plan(sizes=(4, 24, 16, 3), seed=3)
    for c in plan.connections:  # a dyadic grid keeps float sums exact in numpy and torch alike
        c.weight = np.round(c.weight * 8) / 8
        c.weight[np.abs(c.weight) < 0.2] = 0.0  # and some zero weights, which neither side counts
    rng = np.random.default_rng(7)
    decisions = [np.round(rng.normal(0, 1.5, plan.input_size) * 8) / 8 + 1 / 16 for _ in range(12)]

    em = Emulator(plan, "float")
    for x in decisions:
        em.decide_raw(x)
    ours = neurobench_counts(em.counts().per_decision(), NetworkShape.of(plan))

    model = TorchModel(_LavaSchedule(plan))
    model.add_activation_module(_Spikes)
    model.register_hooks()
    synops, sparsity = SynapticOperations(), ActivationSparsity()
    sparsities = []
    with torch.no_grad():
        for x in decisions:
            batch = (torch.as_tensor(x[None]), torch.zeros(1))
            preds = model(batch[0])
            result = synops(model, preds, batch)
            sparsities.append(sparsity(model, preds, batch))
            model.reset_hooks()
    assert result["Dense"] == ours["dense"]
    assert result["Effective_MACs"] == ours["effective_macs"]
    assert result["Effective_ACs"] == ours["effective_acs"]
    assert ours["effective_acs"] > 0 and ours["effective_macs"] > 0
    assert np.mean(sparsities) == pytest.approx(ours["activation_sparsity"], rel=1e-12)
    assert 0 < ours["activation_sparsity"] < 1


# ------------------------------------------------------------------ the CLI on a run folder
@pytest.fixture(scope="module")
def priced_run(tmp_path_factory):
    """A run folder for the trained CartPole policy with counts from a short emulator run."""
    import json
    import shutil

    from spikeloop.cli import main
    from spikeloop.core.nir_io import read_graph
    from spikeloop.pipeline import EvalConfig, build_report
    from spikeloop.runtime.compiler import plan_from_nir
    from spikeloop.runtime.fixed_point import quantize_plan
    from spikeloop.runtime.backends import make_backend
    from spikeloop.runtime.runner import run_closed_loop

    run = tmp_path_factory.mktemp("run")
    shutil.copy("tests/data/policy.nir", run / "policy.nir")
    plan = plan_from_nir(read_graph(run / "policy.nir"))
    fixed = quantize_plan(plan)
    res = run_closed_loop(make_backend("emulator", plan, "fixed", fixed), "CartPole-v1", episodes=1, seed=1000,
                          progress=False, max_steps=20)
    cfg = EvalConfig(episodes=1)
    report = build_report(run, "CartPole-v1", {"plan": plan, "fixed": fixed, "results": {"lava_fixed": res}},
                          {"targets": {}, "baselines": {}}, None, cfg, "test")
    report["counts_source"] = "bit-exact emulator (fixed point), 20 decisions"
    (run / "report.json").write_text(json.dumps(report, default=float))
    assert main(["energy", str(run), "--profile", "loihi,loihi2,speck,xylo,truenorth,spinnaker2",
                 "--raster-seed", "1000"]) == 0
    return run, json.loads((run / "report.json").read_text())


def test_energy_command_writes_all_targets_and_figures(priced_run):
    run, report = priced_run
    md = (run / "report.md").read_text()
    for name in ("loihi", "loihi2", "speck", "xylo", "truenorth", "spinnaker2"):
        assert f"| {name} | " in md and f"(`{name}`)" in md
    assert (run / "energy_breakdown.png").stat().st_size > 10_000 and (run / "raster.png").stat().st_size > 10_000
    assert "![spike raster of one episode](raster.png)" in md and "bit-exact with Lava" in md
    assert report["energy"]["figures"]["raster_episode"]["decisions"] > 0
    assert "### NeuroBench-convention counts" in md


def test_every_reported_number_traces_to_a_constant_or_a_count(priced_run):
    _, report = priced_run
    counts = report["counts_per_decision"]
    binary = sum(v for k, v in counts["synops"].items() if not counts["graded"][k])
    graded = sum(v for k, v in counts["synops"].items() if counts["graded"][k])
    updates, active = sum(counts["updates"].values()), sum(counts["active"].values())
    expected_count = {"synaptic ops (binary spikes)": binary, "synaptic ops (graded input)": graded,
                      "neuron updates (active)": active, "neuron updates (inactive)": updates - active,
                      "spikes routed": sum(counts["spikes"].values()), "input spike encoder": 4,
                      "host encoding (normalise observation)": 4, "host decoding (argmax)": 1}
    for name, rep in report["energy"]["targets"].items():
        prof = load_profile(name)
        for t in rep["terms"]:
            if t["name"] in expected_count:
                assert t["count"] == expected_count[t["name"]], (name, t["name"])
            if t["status"] != "priced":
                assert t["energy_J"] is None
                continue
            src = HOST if t["where"] == "host" else prof
            const = src.get(t["constant"])
            if t["constant"] == "static_power":
                assert t["count"] == counts["steps"] * prof.value("timestep")
            assert t["energy_per_event"] == const.value and t["source"].startswith(const.source)
            assert t["energy_J"] == t["count"] * t["energy_per_event"]
        assert rep["total_J"] == pytest.approx(sum(t["energy_J"] or 0 for t in rep["terms"]), rel=REL)


def test_static_power_choices_by_hand():
    """Real time and the whole chip (the default), the unthrottled timestep, the used cores' share."""
    from spikeloop.core.errors import ConfigError
    from spikeloop.hwprofiles.energy import StaticPower

    loihi = load_profile("loihi")
    for choice, seconds in ((None, 10 * 1e-3), (StaticPower("unthrottled"), 10 * 13e-6),
                            (StaticPower("realtime", "cores", cores_used=3), 10 * 1e-3 * 3 / 128),
                            (StaticPower("unthrottled", "cores", cores_used=3), 10 * 13e-6 * 3 / 128)):
        rep = price_neuromorphic(PER_DECISION, SHAPE, loihi, HOST, choice)
        assert rep.static == pytest.approx(0.104 * seconds, rel=REL)
        said = (choice or StaticPower()).describe()
        assert f"static power: {said}" in rep.assumptions and rep.to_dict()["static_choice"]["described"] == said
    no_place = terms(price_neuromorphic(PER_DECISION, SHAPE, loihi, HOST, StaticPower(share="cores")))
    assert no_place["static power x window"].status == "unpriced"
    assert "needs the cores used" in no_place["static power x window"].source
    with pytest.raises(ConfigError, match="static timestep must be one of"):
        StaticPower("fast")


def test_a_spike_encoder_is_priced_as_host_work():
    from dataclasses import replace

    from spikeloop.core.coding import SpikeEncoding

    enc = SpikeEncoding(mean=(0.0,) * 4, std=(1.0,) * 4, code="population", max_events=1, neurons=9)
    assert enc.host_ops() == 4 * 4 + 36 * 6
    shape = replace(SHAPE, encoder=(enc.describe(), enc.host_ops()))
    for name in ("loihi", "loihi2"):
        t = terms(price_neuromorphic(PER_DECISION, shape, load_profile(name), HOST))
        enc_term = t["input spike encoder (host)"]
        assert enc_term.where == "host" and enc_term.energy == pytest.approx(enc.host_ops() * 4.6 * pJ, rel=REL)
        assert "input spike encoder" not in t  # nothing left unpriced about the input
    unhosted = terms(price_neuromorphic(PER_DECISION, shape, load_profile("loihi")))
    assert unhosted["input spike encoder (host)"].status == "unpriced"


def test_run_and_energy_state_the_static_power_choice(trained_run, capsys):
    import json

    from spikeloop.cli import main

    assert main(["run", str(trained_run), "--backend", "emulator", "--precision", "fixed", "--episodes", "1",
                 "--quiet", "--profile", "loihi", "--static-share", "cores"]) == 0
    rep = json.loads((trained_run / "report.json").read_text())["energy"]["targets"]["loihi"]
    steps = json.loads((trained_run / "report.json").read_text())["counts_per_decision"]["steps"]
    assert rep["static_choice"] == {"timestep": "realtime", "share": "cores",
                                    "described": "real-time timestep, used-core share of static power"}
    assert rep["static_J"] == pytest.approx(0.104 * steps * 1e-3 * 3 / 128, rel=1e-12)  # 3 of 128 cores
    assert "used-core share" in (trained_run / "report.md").read_text()
    capsys.readouterr()
    assert main(["energy", str(trained_run), "--profile", "loihi", "--static-timestep", "unthrottled",
                 "--no-plots"]) == 0
    assert "static power: unthrottled timestep, whole-chip static power" in capsys.readouterr().out
    rep = json.loads((trained_run / "report.json").read_text())["energy"]["targets"]["loihi"]
    assert rep["static_J"] == pytest.approx(0.104 * steps * 13e-6, rel=1e-12)
