"""The clock cycles a Xylo SNN core spends on one timestep, and the clock that keeps it real time.

SynSense's cycle model of the Xylo Audio 2 core (stated in Rockpool's
``devices/xylo/syns61201/power_cycles_model.py``; implemented here from its formula, with
its constants in the profile's ``[cycles.*]``) counts, per timestep:

* each input channel: one cycle, plus ``input_event_loop`` per hidden neuron when it has an event;
* each hidden neuron: 3 cycles, plus ``hidden_isyn_update`` per recurrent synapse when it spiked;
* each spiking hidden neuron: one cycle plus ``output_isyn_update`` per output neuron;
* each hidden neuron's update: ``hidden_neuron_fixed`` plus 3 cycles when it spikes;
* each output neuron's update: ``output_neuron_fixed``.

Event *probabilities* enter (the share of channel-steps with an event): several events in
one step cost what one does. spikeloop maps no alias neurons and uses one synapse per neuron,
so the model's alias and second-synapse terms are zero here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeloop.core.errors import ConfigError
from spikeloop.hwprofiles.profile import Profile

REALTIME_MARGIN = 0.2
"""headroom on the clock for real time (Rockpool's est_clock_freq default: 20 %)"""


def event_probability(raster) -> float:
    """The share of (step, channel) entries with at least one event in ``raster``."""
    r = np.asarray(raster)
    if r.size == 0:
        raise ConfigError("an event raster needs at least one step and one channel")
    return float(np.count_nonzero(r) / r.size)


@dataclass(frozen=True)
class XyloCycles:
    """Cycles per timestep of one network and activity, and what they imply."""

    per_step: float
    """master clock cycles per network timestep"""
    input_rate: float
    hidden_rate: float
    output_rate: float

    def clock_hz(self, dt_s: float, margin: float = REALTIME_MARGIN) -> float:
        """The master clock that computes one step within ``dt_s``, with ``margin`` headroom."""
        if not (dt_s > 0 and np.isfinite(dt_s)):
            raise ConfigError(f"a timestep must be a positive number of seconds, got {dt_s!r}")
        return self.per_step * (1 + margin) / dt_s


def _rate(name: str, value) -> float:
    if np.ndim(value) == 0:
        p = float(value)
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{name} event probability must lie in [0, 1], got {p!r}")
        return p
    return event_probability(value)


def xylo_cycles(profile: Profile, n_in: int, n_hidden: int, n_out: int, recurrent_fanout: float,
                inputs=1.0, hidden=1.0, outputs=1.0) -> XyloCycles:
    """Cycles per timestep on ``profile``'s cycle model for a core of these sizes.

    ``recurrent_fanout`` is the mean number of recurrent synapses per hidden neuron;
    ``inputs``, ``hidden`` and ``outputs`` are event rasters ``(T, channels)`` (or
    probabilities in ``[0, 1]``; the default 1 is the worst case, every neuron every step).
    """
    c = {n: profile.value(n) for n in ("input_event_loop", "hidden_isyn_update", "output_isyn_update",
                                        "hidden_neuron_fixed", "output_neuron_fixed")}
    missing = [n for n, v in c.items() if v is None]
    if missing:
        raise ConfigError(f"profile {profile.name!r} has no cycle model (missing or unknown: "
                          f"{', '.join(f'[cycles.{n}]' for n in missing)})")
    p_in, p_hid, p_out = _rate("input", inputs), _rate("hidden", hidden), _rate("output", outputs)
    per_step = (n_in * (p_in * n_hidden * c["input_event_loop"] + 1)
                + n_hidden * (recurrent_fanout * c["hidden_isyn_update"] * p_hid + 3)
                + n_hidden * p_hid * (1 + n_out * c["output_isyn_update"])
                + n_hidden * (c["hidden_neuron_fixed"] + 3 * p_hid)
                + n_out * c["output_neuron_fixed"])
    return XyloCycles(float(per_step), p_in, p_hid, p_out)
