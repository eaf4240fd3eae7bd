"""spikeloop.hwprofiles: profile files (one TOML per target), loader, mapping checks, energy model."""
from spikeloop.hwprofiles.energy import (NetworkShape, neurobench_counts, price_dense_baseline,
                                         price_neuromorphic)
from spikeloop.hwprofiles.fit import FitReport, Network, check_fit, layers_from_nir, layers_from_plan
from spikeloop.hwprofiles.profile import Profile, builtin_profiles, load_profile

__all__ = ["FitReport", "Network", "NetworkShape", "Profile", "builtin_profiles", "check_fit",
           "layers_from_nir", "layers_from_plan", "load_profile", "neurobench_counts", "price_dense_baseline",
           "price_neuromorphic"]
