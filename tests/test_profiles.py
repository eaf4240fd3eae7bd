"""Hardware profiles: every figure equals ../shared/HARDWARE.md, and malformed files fail clearly."""
from __future__ import annotations

import re

import pytest

from spikeloop.core.errors import ProfileError
from spikeloop.hwprofiles.profile import (CONFIDENCE, MAPPING_LIMITS, REQUIRED_ENERGY, builtin_profiles,
                                          load_profile, parse_profile)

# (profile, constant) -> (value, confidence), typed by hand from ../shared/HARDWARE.md
EXPECTED = {
    ("loihi", "synop"): (23.6e-12, "pre-silicon"),
    ("loihi", "neuron_update_active"): (81e-12, "pre-silicon"),
    ("loihi", "neuron_update_inactive"): (52e-12, "pre-silicon"),
    ("loihi", "spike_route"): (1.7e-12, "pre-silicon"),
    ("loihi", "static_power"): (0.104, "derived"),
    ("loihi", "timestep"): (1e-3, "silicon"),
    ("loihi", "cores"): (128, "architectural"),
    ("loihi", "neurons_per_core"): (1024, "architectural"),
    ("loihi", "synapse_memory_per_core"): (128 * 1024, "architectural"),
    ("loihi", "fan_in_per_core"): (4096, "architectural"),
    ("loihi", "fan_out_per_core"): (4096, "architectural"),
    ("loihi", "neurons_per_chip"): (128 * 1024, "derived"),
    ("loihi", "weight_bits"): (9, "architectural"),
    ("loihi2", "cores"): (128, "vendor"),
    ("loihi2", "neurons_per_core"): (8192, "3rd-party"),
    ("loihi2", "memory_per_core"): (192 * 1024, "vendor"),
    ("loihi2", "neurons_per_chip"): (1_000_000, "vendor"),
    ("loihi2", "synapses_per_chip"): (120_000_000, "vendor"),
    ("loihi2", "weight_bits"): (8, "3rd-party"),
    ("loihi2", "graded_spike_bits"): (32, "vendor"),
    ("speck", "static_power"): (0.42e-3, "silicon"),
    ("speck", "cores"): (9, "vendor"),
    ("speck", "neuron_memory_per_core"): (tuple(k * 1024 for k in (64, 64, 64, 32, 32, 16, 16, 16, 16)), "vendor"),
    ("speck", "kernel_memory_per_core"): (tuple(k * 1024 for k in (16, 16, 16, 32, 32, 64, 64, 16, 16)), "vendor"),
    ("speck", "bias_memory_per_core"): (1024, "vendor"),
    ("speck", "destinations_per_core"): (2, "vendor"),
    ("speck", "max_input_size"): (128, "vendor"),
    ("speck", "max_kernel_size"): (16, "vendor"),
    ("speck", "max_channels"): (1024, "vendor"),
    ("speck", "max_padding"): (7, "vendor"),
    ("speck", "strides"): ((1, 2, 4, 8), "vendor"),
    ("speck", "pool_sizes"): ((1, 2, 4), "vendor"),
    ("speck", "weight_bits"): (8, "vendor"),
    ("xylo", "input_channels"): (16, "vendor"),
    ("xylo", "hidden_neurons"): (1000, "vendor"),
    ("xylo", "output_neurons"): (8, "vendor"),
    ("xylo", "fan_in_per_neuron"): (63, "vendor"),
    ("xylo", "total_weights"): (64_000, "vendor"),
    ("xylo", "weight_bits"): (8, "vendor"),
    ("xylo", "static_power"): (216e-6, "3rd-party"),
    ("truenorth", "synop_all_in"): (26e-12, "silicon"),
    ("truenorth", "cores"): (4096, "architectural"),
    ("truenorth", "neurons_per_chip"): (1_000_000, "architectural"),
    ("truenorth", "synapses_per_chip"): (256_000_000, "architectural"),
    ("spinnaker2", "synop"): (10e-12, "3rd-party"),
    ("cpu-45nm", "mac_fp32"): (4.6e-12, "derived"),
    ("cpu-45nm", "ac_fp32"): (0.9e-12, "pre-silicon"),
    ("cpu-45nm", "mac_int8"): (0.23e-12, "derived"),
    ("cpu-45nm", "ac_int8"): (0.03e-12, "pre-silicon"),
}
UNKNOWN = {
    "loihi2": ("synop", "neuron_update_active", "neuron_update_inactive", "spike_route", "static_power", "timestep"),
    "speck": ("synop", "neuron_update_active", "neuron_update_inactive", "spike_route", "timestep"),
    "xylo": ("synop", "neuron_update_active", "neuron_update_inactive", "spike_route", "timestep"),
    "spinnaker2": ("neuron_update_active", "neuron_update_inactive", "spike_route", "static_power", "timestep"),
}
REFERENCE = {("xylo", "kws_inference_energy"): 6.6e-6, ("xylo", "kws_dynamic_power"): 291e-6,
             ("speck", "system_power"): 0.70e-3, ("truenorth", "video_task_power"): 63e-3,
             ("spinnaker2", "kws_inference_energy"): 7.1e-6}

MINIMAL = """
[profile]
name = "toy"
title = "Toy chip"
kind = "conventional"

[energy.mac_fp32]
value = 4.6e-12
unit = "J"
source = "a paper"
confidence = "derived"

[energy.ac_fp32]
value = 0.9e-12
unit = "J"
source = "a paper"
confidence = "pre-silicon"

[energy.mac_int8]
value = "unknown"
unit = "J"
source = ""
confidence = "unknown"

[energy.ac_int8]
value = "unknown"
unit = "J"
source = ""
confidence = "unknown"
"""


def test_builtin_profiles_are_the_issue_list():
    assert builtin_profiles() == sorted(["loihi", "loihi2", "speck", "xylo", "truenorth", "spinnaker2", "cpu-45nm"])
    assert builtin_profiles("conventional") == ["cpu-45nm"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_figures_match_hardware_md(key):
    name, const = key
    value, confidence = EXPECTED[key]
    c = load_profile(name).get(const)
    assert c.value == value and c.confidence == confidence
    assert c.source.strip()


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_unpublished_figures_are_unknown(name):
    p = load_profile(name)
    for const in UNKNOWN[name]:
        assert p.get(const).value is None and p.get(const).confidence == "unknown", const


def test_reference_figures_are_kept_apart_from_pricing():
    for (name, const), value in REFERENCE.items():
        p = load_profile(name)
        assert p.reference[const].value == value
        assert p.get(const) is None  # never reachable by the energy model


def test_truenorth_all_in_is_the_only_energy_constant():
    p = load_profile("truenorth")
    energy = {n for n, c in p.constants.items() if c.unit in ("J", "W")}
    assert energy == {"synop_all_in"}


def test_every_builtin_lists_what_its_kind_and_mapping_need():
    for name in builtin_profiles():
        p = load_profile(name)
        assert {c.confidence for c in p.constants.values()} <= set(CONFIDENCE)
        if "synop_all_in" not in p.constants:
            assert all(n in p.constants for n in REQUIRED_ENERGY[p.kind]), name
        for need in MAPPING_LIMITS[p.mapping]:
            names = (need,) if isinstance(need, str) else need
            assert any(n in p.constants for n in names), (name, need)


def test_user_profile_file_by_path(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(MINIMAL)
    p = load_profile(path)
    assert p.name == "toy" and p.path == str(path) and p.mapping == "none"
    assert p.value("mac_fp32") == 4.6e-12 and p.value("mac_int8") is None


def _err(text: str) -> str:
    with pytest.raises(ProfileError) as e:
        parse_profile(text, "toy.toml")
    return str(e.value)


def test_negative_constant_fails_with_the_field_named():
    msg = _err(MINIMAL.replace("value = 4.6e-12", "value = -4.6e-12"))
    assert msg == "toy.toml: [energy.mac_fp32]: value must be a finite non-negative number, got -4.6e-12"


def test_missing_constant_fails_and_says_how_to_declare_it_unknown():
    text = MINIMAL.split("[energy.ac_int8]")[0]
    assert _err(text) == ('toy.toml: missing constant [energy.ac_int8] (every conventional profile needs it); '
                          'write value = "unknown" and confidence = "unknown" if nothing is published')


def test_missing_field_of_a_constant_fails():
    msg = _err(MINIMAL.replace('source = "a paper"\nconfidence = "derived"', 'confidence = "derived"'))
    assert msg == "toy.toml: [energy.mac_fp32]: missing 'source'"


def test_unknown_field_fails():
    msg = _err(MINIMAL.replace('confidence = "derived"', 'confidence = "derived"\nsorce = "typo"'))
    assert msg == "toy.toml: [energy.mac_fp32]: unknown field(s) ['sorce']; allowed: ['value', 'unit', 'source', 'confidence']"


def test_unknown_constant_and_section_and_profile_field_fail():
    assert _err(MINIMAL + '\n[energy.synops]\nvalue = 1\nunit = "J"\nsource = "x"\nconfidence = "vendor"\n') \
        .startswith("toy.toml: [energy.synops]: unknown constant; allowed in [energy]: ")
    assert _err(MINIMAL + "\n[power.x]\nvalue = 1\n") == \
        "toy.toml: unknown section(s) ['power']; allowed: profile, energy, timing, cycles, limits, reference"
    assert _err(MINIMAL.replace('kind = "conventional"', 'kind = "conventional"\ncolour = "blue"')) == (
        "toy.toml: unknown field(s) ['colour'] in [profile]; allowed: "
        "['graded_spikes', 'kind', 'mapping', 'name', 'notes', 'title']")


def test_wrong_unit_confidence_and_unknown_mismatch_fail():
    assert _err(MINIMAL.replace('value = 4.6e-12\nunit = "J"', 'value = 4.6e-12\nunit = "pJ"')) == \
        "toy.toml: [energy.mac_fp32]: unit must be 'J', got 'pJ'"
    assert _err(MINIMAL.replace('confidence = "derived"', 'confidence = "guess"')).startswith(
        "toy.toml: [energy.mac_fp32]: confidence 'guess' is not one of")
    assert _err(MINIMAL.replace('confidence = "derived"', 'confidence = "unknown"')) == \
        'toy.toml: [energy.mac_fp32]: value "unknown" goes with confidence "unknown" and only with it'
    assert _err(MINIMAL.replace('source = "a paper"\nconfidence = "derived"', 'source = " "\nconfidence = "derived"')) \
        == "toy.toml: [energy.mac_fp32]: a known value needs a non-empty source"


def test_limit_types_are_checked():
    base = load_profile("speck").path
    text = open(base).read()
    bad = text.replace("value = 9\n", "value = 9.5\n", 1)
    assert _err(bad) == "toy.toml: [limits.cores]: value must be a whole number, got 9.5"
    bad = text.replace("value = [1, 2, 4, 8]", "value = 8")
    assert _err(bad) == ('toy.toml: [limits.strides]: value must be a non-empty list of non-negative integers '
                         'or "unknown", got 8')
    bad = text.replace('value = ["conv2d"]', "value = [2]")
    assert _err(bad) == 'toy.toml: [limits.layer_kinds]: value must be a non-empty list of strings or "unknown", got [2]'


def test_missing_mapping_limit_fails():
    text = open(load_profile("xylo").path).read()
    cut = re.sub(r"\[limits\.fan_in_per_neuron\][^\[]*", "", text)
    assert _err(cut) == ("toy.toml: missing constant [limits.fan_in_per_neuron] (mapping 'xylo' checks it); "
                         'write value = "unknown" and confidence = "unknown" if nothing is published')


def test_all_in_profile_may_not_carry_other_energy_terms():
    text = open(load_profile("truenorth").path).read()
    extra = text + '\n[energy.spike_route]\nvalue = 1e-12\nunit = "J"\nsource = "x"\nconfidence = "vendor"\n'
    assert _err(extra) == ("toy.toml: [energy.synop_all_in] is an all-in figure and is priced alone; "
                           "remove [energy.spike_route]")


def test_graded_spikes_need_a_cited_payload_width():
    text = open(load_profile("loihi2").path).read()
    cut = re.sub(r"\[limits\.graded_spike_bits\][^\[]*", "", text)
    assert _err(cut) == ("toy.toml: [profile] graded_spikes = true needs a known, cited "
                         "[limits.graded_spike_bits]")


def test_unknown_builtin_name_lists_the_choices():
    with pytest.raises(ProfileError, match=r"unknown profile 'loihi3'; built-in profiles: cpu-45nm, loihi, "):
        load_profile("loihi3")
    with pytest.raises(ProfileError, match="no_such.toml: profile file not found"):
        load_profile("no_such.toml")
