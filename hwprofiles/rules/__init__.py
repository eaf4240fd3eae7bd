"""spikeloop.hwprofiles.rules: the design rules, one module per chip family's mapping model.

``cores`` (Loihi, Loihi 2, TrueNorth, SpiNNaker 2), ``xylo`` and ``speck``; ``common``
holds the rule record and the rules every family shares. Each family module names its
``MAPPING``, lists its ``RULES`` in the order they are reported and its ``UNIMPLEMENTED``
limits, and (where the model places layers) offers ``place(net, profile)``.
"""
from spikeloop.hwprofiles.rules import cores, speck, xylo
from spikeloop.hwprofiles.rules.common import DEPLOYED_WEIGHT_BITS, Context, Rule, Violation

FAMILIES = {m.MAPPING: m for m in (cores, xylo, speck)}
"""the rules module of each mapping model (``none``, a conventional profile, has none)"""
RULES: dict[str, list[Rule]] = {**{name: m.RULES for name, m in FAMILIES.items()}, "none": []}
UNIMPLEMENTED: dict[str, list[tuple[str, str]]] = {name: m.UNIMPLEMENTED for name, m in FAMILIES.items()
                                                   if m.UNIMPLEMENTED}

__all__ = ["DEPLOYED_WEIGHT_BITS", "FAMILIES", "RULES", "UNIMPLEMENTED", "Context", "Rule", "Violation"]
