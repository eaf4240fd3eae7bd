"""spikeloop.train: spiking layers, the neuron contract, agents, environments, checkpoints."""
from spikeloop.core.neuron import FLOAT, HARD, SOFT, cuba_step

__all__ = ["FLOAT", "HARD", "SOFT", "cuba_step"]
