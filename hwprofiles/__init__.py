"""spikeloop.hwprofiles: profile files (one TOML per target), loader, energy model."""
from spikeloop.hwprofiles.energy import NetworkShape, price_dense_baseline, price_neuromorphic
from spikeloop.hwprofiles.profile import Profile, builtin_profiles, load_profile

__all__ = ["NetworkShape", "Profile", "builtin_profiles", "load_profile", "price_dense_baseline",
           "price_neuromorphic"]
