"""Hardware profiles: TOML files of cited constants, validated on load.

Every constant is a table ``{value, unit, source, confidence}``. ``value`` is a
non-negative number (a non-negative integer for counts and limits), a list of them
(per-core limits), a list of strings (allowed layer kinds or neuron models), or the
string ``"unknown"`` where nothing is published: the energy report then lists the
term as unpriced and the mapping check reports the rule as not checked. Unknown
sections, fields and constants are errors, so a typo never silently drops a constant.

Sections: ``[profile]`` (name, title, kind, mapping, graded_spikes, notes),
``[energy.*]``, ``[timing.*]``, ``[cycles.*]`` (a vendor's clock-cycle model), ``[limits.*]``
and ``[reference.*]``. Reference
constants are published figures for other workloads (a keyword-spotting inference,
a video task); the report shows them as context and never prices anything with them.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from spikeloop.core.errors import ProfileError

CONFIDENCE = ("silicon", "pre-silicon", "vendor", "architectural", "derived", "3rd-party", "unknown")
UNKNOWN = "unknown"

NUMBER, COUNT, COUNTS, STRINGS = "number", "count", "counts", "strings"
"""value types: a non-negative number, a non-negative integer, a list of those integers, a list of strings"""

SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "energy": {
        "synop": ("J", NUMBER),
        "synop_all_in": ("J", NUMBER),  # whole-chip energy over synaptic events: priced alone
        "neuron_update_active": ("J", NUMBER),
        "neuron_update_inactive": ("J", NUMBER),
        "spike_route": ("J", NUMBER),
        "static_power": ("W", NUMBER),
        "mac_fp32": ("J", NUMBER), "ac_fp32": ("J", NUMBER),
        "mac_int8": ("J", NUMBER), "ac_int8": ("J", NUMBER),
    },
    "timing": {"timestep": ("s", NUMBER), "timestep_unthrottled": ("s", NUMBER)},
    # a vendor's clock-cycle model of one timestep (Xylo: spikeloop.hwprofiles.cycles)
    "cycles": {
        "input_event_loop": ("cycles", NUMBER),
        "hidden_isyn_update": ("cycles", NUMBER),
        "output_isyn_update": ("cycles", NUMBER),
        "hidden_neuron_fixed": ("cycles", NUMBER),
        "output_neuron_fixed": ("cycles", NUMBER),
        "energy_per_cycle": ("J", NUMBER),
    },
    "limits": {
        # core-based chips (Loihi, Loihi 2, TrueNorth, SpiNNaker 2)
        "cores": ("cores", COUNT),
        "neurons_per_core": ("neurons", COUNT),
        "synapse_memory_per_core": ("bytes", COUNT),
        "memory_per_core": ("bytes", COUNT),  # shared by synapses and neuron state (Loihi 2)
        "fan_in_per_core": ("axons", COUNT),
        "fan_out_per_core": ("axons", COUNT),
        "neurons_per_chip": ("neurons", COUNT),
        "synapses_per_chip": ("synapses", COUNT),
        "weight_bits": ("bits", COUNT),
        "graded_spike_bits": ("bits", COUNT),
        # Xylo-style: one hidden pool between input channels and output neurons
        "input_channels": ("channels", COUNT),
        "hidden_neurons": ("neurons", COUNT),
        "output_neurons": ("neurons", COUNT),
        "fan_in_per_neuron": ("synapses", COUNT),
        "total_weights": ("weights", COUNT),
        # Speck-style: one layer per convolutional core
        "neuron_memory_per_core": ("entries", COUNTS),
        "kernel_memory_per_core": ("entries", COUNTS),
        "bias_memory_per_core": ("entries", COUNT),
        "destinations_per_core": ("cores", COUNT),
        "max_input_size": ("pixels", COUNT),
        "max_kernel_size": ("pixels", COUNT),
        "max_channels": ("channels", COUNT),
        "max_padding": ("pixels", COUNT),
        "strides": ("pixels", COUNTS),
        "pool_sizes": ("pixels", COUNTS),
        # all mappings
        "layer_kinds": ("kinds", STRINGS),
        "neuron_models": ("models", STRINGS),
        "readout_models": ("models", STRINGS),
    },
}
REQUIRED_ENERGY = {
    "neuromorphic": ("synop", "neuron_update_active", "neuron_update_inactive", "spike_route", "static_power",
                     "timestep"),
    "conventional": ("mac_fp32", "ac_fp32", "mac_int8", "ac_int8"),
}
"""constants every profile of a kind must list (a value, or "unknown" when nothing is published)"""
ALL_IN = "synop_all_in"
"""an all-in energy per synaptic event replaces every neuromorphic energy term: it is priced alone"""
MAPPING_LIMITS: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "cores": ("cores", "neurons_per_core", ("synapse_memory_per_core", "memory_per_core"), "fan_in_per_core",
              "fan_out_per_core", "neurons_per_chip", "synapses_per_chip", "weight_bits", "neuron_models"),
    "xylo": ("input_channels", "hidden_neurons", "output_neurons", "fan_in_per_neuron", "total_weights",
             "weight_bits", "neuron_models"),
    "speck": ("cores", "neuron_memory_per_core", "kernel_memory_per_core", "bias_memory_per_core",
              "destinations_per_core", "max_input_size", "max_kernel_size", "max_channels", "max_padding",
              "strides", "pool_sizes", "weight_bits", "layer_kinds", "neuron_models"),
    "none": (),
}
"""limits each mapping model checks; a profile must list them all (a tuple: one of the names)"""
REFERENCE = "reference"
PROFILE_KEYS = {"name", "title", "kind", "mapping", "graded_spikes", "notes"}
KINDS = ("neuromorphic", "conventional")
MAPPINGS = ("cores", "xylo", "speck", "none")
"""how :mod:`spikeloop.hwprofiles.fit` places a network: onto identical cores, into Xylo's
input/hidden/output pools, onto Speck's convolutional cores, or not at all (conventional)"""
CONSTANT_KEYS = ("value", "unit", "source", "confidence")


@dataclass(frozen=True)
class Constant:
    """One cited number (or list); ``value`` is None when unknown."""

    name: str
    value: float | tuple | None
    unit: str
    source: str
    confidence: str

    @property
    def known(self) -> bool:
        """Whether a value is published (not "unknown")."""
        return self.value is not None


@dataclass(frozen=True)
class Profile:
    """A validated hardware profile: identity, mapping model and cited constants."""

    name: str
    title: str
    kind: str
    path: str
    constants: dict[str, Constant] = field(default_factory=dict)
    graded_spikes: bool = False
    notes: str = ""
    mapping: str = "cores"
    reference: dict[str, Constant] = field(default_factory=dict)

    def get(self, name: str) -> Constant | None:
        """The constant ``name`` (in any section but reference), or None if the profile does not list it."""
        return self.constants.get(name)

    def value(self, name: str):
        """The known value of ``name``, or None when it is unknown or not listed."""
        c = self.constants.get(name)
        return None if c is None else c.value


def builtin_profiles(kind: str | None = None) -> list[str]:
    """Names of the profiles shipped with spikeloop (optionally only those of ``kind``)."""
    names = sorted(p.name[:-5] for p in resources.files("spikeloop.hwprofiles").iterdir()
                   if p.name.endswith(".toml"))
    return names if kind is None else [n for n in names if load_profile(n).kind == kind]


NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in profile by name, or a user's TOML file by path."""
    if isinstance(name_or_path, bytes):
        name_or_path = name_or_path.decode(errors="replace")
    if not isinstance(name_or_path, (str, Path)):
        raise ProfileError(f"a profile is a built-in name or a path to a .toml file, got {name_or_path!r}")
    text_path = Path(name_or_path)
    if text_path.suffix == ".toml" or text_path.exists():
        if text_path.is_dir():
            raise ProfileError(f"{text_path}: is a directory, not a profile file")
        if not text_path.is_file():
            raise ProfileError(f"{text_path}: profile file not found")
        return parse_profile(_read(text_path), str(text_path))
    name = str(name_or_path)
    builtin = builtin_profiles()
    if not name or not set(name) <= NAME_CHARS or name.startswith(".") or name not in builtin:
        raise ProfileError(f"unknown profile {name!r}; built-in profiles: "
                           f"{', '.join(builtin)}, or pass a path to a .toml file")
    res = resources.files("spikeloop.hwprofiles") / f"{name}.toml"
    return parse_profile(res.read_text(encoding="utf-8"), str(res))


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profile ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); TOML "
                           "files are UTF-8") from None


def parse_profile(text: str, origin: str = "<profile>") -> Profile:
    """Parse and validate profile TOML ``text``; errors name ``origin`` and the field."""
    if not isinstance(text, str):
        raise ProfileError(f"{origin}: profile text must be a string, got {type(text).__name__}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{origin}: not valid TOML: {e}") from e
    unknown = sorted(set(data) - {"profile", REFERENCE, *SECTIONS})
    if unknown:
        raise ProfileError(f"{origin}: unknown section(s) {unknown}; allowed: profile, "
                           f"{', '.join(SECTIONS)}, {REFERENCE}")
    head = data.get("profile")
    if not isinstance(head, dict):
        raise ProfileError(f"{origin}: missing [profile] table with name, title and kind")
    bad = sorted(set(head) - PROFILE_KEYS)
    if bad:
        raise ProfileError(f"{origin}: unknown field(s) {bad} in [profile]; allowed: {sorted(PROFILE_KEYS)}")
    for key in ("name", "title", "kind"):
        if not isinstance(head.get(key), str) or not head[key]:
            raise ProfileError(f"{origin}: [profile] needs a non-empty string '{key}'")
    if head["kind"] not in KINDS:
        raise ProfileError(f"{origin}: [profile] kind {head['kind']!r} is not one of {KINDS}")
    mapping = head.get("mapping", "cores" if head["kind"] == "neuromorphic" else "none")
    if mapping not in MAPPINGS:
        raise ProfileError(f"{origin}: [profile] mapping {mapping!r} is not one of {MAPPINGS}")
    if not isinstance(head.get("graded_spikes", False), bool):
        raise ProfileError(f"{origin}: [profile] graded_spikes must be true or false")
    constants = {}
    for section, allowed in SECTIONS.items():
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise ProfileError(f"{origin}: [{section}] must be a table of constants")
        for name, entry in entries.items():
            where = f"{origin}: [{section}.{name}]"
            if name not in allowed:
                raise ProfileError(f"{where}: unknown constant; allowed in [{section}]: {sorted(allowed)}")
            unit, vtype = allowed[name]
            constants[name] = _constant(where, name, entry, unit, vtype)
    reference = {}
    ref_table = data.get(REFERENCE, {})
    if not isinstance(ref_table, dict):
        raise ProfileError(f"{origin}: [{REFERENCE}] must be a table of figures, got {ref_table!r}")
    for name, entry in ref_table.items():
        where = f"{origin}: [{REFERENCE}.{name}]"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: must be a table with value, unit, source, confidence, got {entry!r}")
        unit = entry.get("unit")
        if not isinstance(unit, str) or not unit:
            raise ProfileError(f"{where}: a reference figure needs a non-empty string 'unit'")
        reference[name] = _constant(where, name, entry, unit, NUMBER)
    _check_complete(origin, head["kind"], mapping, constants)
    graded = bool(head.get("graded_spikes", False))
    bits = constants.get("graded_spike_bits")
    if graded and (bits is None or not bits.known):
        raise ProfileError(f"{origin}: [profile] graded_spikes = true needs a known, cited "
                           "[limits.graded_spike_bits]")
    return Profile(head["name"], head["title"], head["kind"], origin, constants, graded,
                   str(head.get("notes", "")), mapping, reference)


def _check_complete(origin: str, kind: str, mapping: str, constants: dict) -> None:
    """Every constant the energy model and the mapping rules use is listed, so absence is never silent."""
    section = {n: sec for sec, names in SECTIONS.items() for n in names}
    hint = 'write value = "unknown" and confidence = "unknown" if nothing is published'
    energy = REQUIRED_ENERGY[kind]
    if ALL_IN in constants:
        if kind != "neuromorphic":
            raise ProfileError(f"{origin}: [energy.{ALL_IN}] is for neuromorphic profiles only")
        extra = [n for n in energy if n in constants]
        if extra:
            raise ProfileError(f"{origin}: [energy.{ALL_IN}] is an all-in figure and is priced alone; remove "
                               f"{', '.join(f'[{section[n]}.{n}]' for n in extra)}")
        energy = ()
    for name in energy:
        if name not in constants:
            raise ProfileError(f"{origin}: missing constant [{section[name]}.{name}] (every {kind} profile "
                               f"needs it); {hint}")
    for need in MAPPING_LIMITS[mapping]:
        names = (need,) if isinstance(need, str) else need
        if not any(n in constants for n in names):
            raise ProfileError(f"{origin}: missing constant {' or '.join(f'[limits.{n}]' for n in names)} "
                               f"(mapping {mapping!r} checks it); {hint}")


def _constant(where: str, name: str, entry, unit: str, vtype: str) -> Constant:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: must be a table with value, unit, source, confidence")
    extra = sorted(set(entry) - set(CONSTANT_KEYS))
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {extra}; allowed: {list(CONSTANT_KEYS)}")
    for key in CONSTANT_KEYS:
        if key not in entry:
            raise ProfileError(f"{where}: missing '{key}'")
    value = None if entry["value"] == UNKNOWN else _check_value(where, entry["value"], vtype)
    if entry["unit"] != unit:
        raise ProfileError(f"{where}: unit must be {unit!r}, got {entry['unit']!r}")
    if entry["confidence"] not in CONFIDENCE:
        raise ProfileError(f"{where}: confidence {entry['confidence']!r} is not one of {CONFIDENCE}")
    if (value is None) != (entry["confidence"] == UNKNOWN):
        raise ProfileError(f"{where}: value \"unknown\" goes with confidence \"unknown\" and only with it")
    if not isinstance(entry["source"], str) or (value is not None and not entry["source"].strip()):
        raise ProfileError(f"{where}: a known value needs a non-empty source")
    return Constant(name, value, unit, entry["source"], entry["confidence"])


def _check_value(where: str, value, vtype: str):
    if vtype == STRINGS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ProfileError(f"{where}: value must be a non-empty list of strings or \"unknown\", "
                               f"got {value!r}")
        return tuple(value)
    if vtype == COUNTS:
        if not isinstance(value, list) or not value:
            raise ProfileError(f"{where}: value must be a non-empty list of non-negative integers or "
                               f"\"unknown\", got {value!r}")
        return tuple(_number(where, v, integer=True) for v in value)
    return _number(where, value, integer=vtype == COUNT)


def _number(where: str, value, integer: bool):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}: value must be a number or \"unknown\", got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ProfileError(f"{where}: value must be a finite non-negative number, got {value!r}")
    if integer:
        if value != int(value):
            raise ProfileError(f"{where}: value must be a whole number, got {value!r}")
        return int(value)
    return float(value)
