"""spikeloop: train spiking RL policies, export to NIR, deploy on Lava, price every decision."""
__version__ = "0.1.0"
