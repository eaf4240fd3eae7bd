"""Hardware profiles: TOML files of cited constants, validated on load.

Every constant is a table ``{value, unit, source, confidence}``. ``value`` is a
non-negative number, or the string ``"unknown"`` where nothing is published (the
energy report then lists the term as unpriced). Unknown fields are errors, so a
typo never silently drops a constant.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from spikeloop.errors import ProfileError

CONFIDENCE = ("silicon", "pre-silicon", "vendor", "architectural", "derived", "3rd-party", "unknown")
UNKNOWN = "unknown"
SECTIONS = {
    "energy": {"synop": "J", "neuron_update_active": "J", "neuron_update_inactive": "J",
               "spike_route": "J", "static_power": "W", "mac_fp32": "J", "ac_fp32": "J",
               "mac_int8": "J", "ac_int8": "J", "inference": "J"},
    "timing": {"timestep": "s"},
    "limits": {"cores": "cores", "neurons_per_core": "compartments", "synapse_memory_per_core": "bytes",
               "fan_in_per_core": "axons", "fan_out_per_core": "axons", "weight_bits": "bits"},
}
PROFILE_KEYS = {"name", "title", "kind", "graded_spikes", "notes"}
KINDS = ("neuromorphic", "conventional")


@dataclass(frozen=True)
class Constant:
    """One cited number; ``value`` is None when unknown."""

    name: str
    value: float | None
    unit: str
    source: str
    confidence: str

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    kind: str
    path: str
    constants: dict[str, Constant] = field(default_factory=dict)
    graded_spikes: bool = False
    notes: str = ""

    def get(self, name: str) -> Constant | None:
        """The constant ``name`` (in any section), or None if the profile does not list it."""
        return self.constants.get(name)


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with spikeloop."""
    return sorted(p.name[:-5] for p in resources.files("spikeloop.hwprofiles").iterdir()
                  if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in profile by name, or a user's TOML file by path."""
    text_path = Path(name_or_path)
    if text_path.suffix == ".toml" or text_path.exists():
        if not text_path.is_file():
            raise ProfileError(f"{text_path}: profile file not found")
        return parse_profile(text_path.read_text(), str(text_path))
    res = resources.files("spikeloop.hwprofiles") / f"{name_or_path}.toml"
    if not res.is_file():
        raise ProfileError(f"unknown profile {str(name_or_path)!r}; built-in profiles: "
                           f"{', '.join(builtin_profiles())}, or pass a path to a .toml file")
    return parse_profile(res.read_text(), str(res))


def parse_profile(text: str, origin: str = "<profile>") -> Profile:
    """Parse and validate profile TOML ``text``; errors name ``origin`` and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{origin}: not valid TOML: {e}") from e
    unknown = sorted(set(data) - {"profile", *SECTIONS})
    if unknown:
        raise ProfileError(f"{origin}: unknown section(s) {unknown}; allowed: profile, {', '.join(SECTIONS)}")
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
    constants = {}
    for section, allowed in SECTIONS.items():
        for name, entry in data.get(section, {}).items():
            where = f"{origin}: [{section}.{name}]"
            if name not in allowed:
                raise ProfileError(f"{where}: unknown constant; allowed in [{section}]: {sorted(allowed)}")
            constants[name] = _constant(where, name, entry, allowed[name])
    return Profile(head["name"], head["title"], head["kind"], origin, constants,
                   bool(head.get("graded_spikes", False)), str(head.get("notes", "")))


def _constant(where: str, name: str, entry, unit: str) -> Constant:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: must be a table with value, unit, source, confidence")
    extra = sorted(set(entry) - {"value", "unit", "source", "confidence"})
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {extra}")
    for key in ("value", "unit", "source", "confidence"):
        if key not in entry:
            raise ProfileError(f"{where}: missing '{key}'")
    value = entry["value"]
    if value == UNKNOWN:
        value = None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}: value must be a number or \"unknown\", got {value!r}")
    elif not value >= 0 or value != value or value == float("inf"):
        raise ProfileError(f"{where}: value must be a finite non-negative number, got {value!r}")
    if entry["unit"] != unit:
        raise ProfileError(f"{where}: unit must be {unit!r}, got {entry['unit']!r}")
    if entry["confidence"] not in CONFIDENCE:
        raise ProfileError(f"{where}: confidence {entry['confidence']!r} is not one of {CONFIDENCE}")
    if (value is None) != (entry["confidence"] == UNKNOWN):
        raise ProfileError(f"{where}: value \"unknown\" goes with confidence \"unknown\" and only with it")
    if not isinstance(entry["source"], str) or (value is not None and not entry["source"].strip()):
        raise ProfileError(f"{where}: a known value needs a non-empty source")
    return Constant(name, None if value is None else float(value), unit, entry["source"], entry["confidence"])
