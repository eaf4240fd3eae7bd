"""spikeloop.train: the torch spiking graph, network builders, the policy record, agents, checkpoints."""
from spikeloop.train.graph import SpikingGraph
from spikeloop.train.networks import spiking_mlp
from spikeloop.train.policy import Policy, Provenance, TorchPolicy

__all__ = ["Policy", "Provenance", "SpikingGraph", "TorchPolicy", "spiking_mlp"]
