"""spikeloop.hwprofiles: profile files (one TOML per target), loader, mapping checks, energy model."""
from spikeloop.hwprofiles.energy import (NetworkShape, neurobench_counts, price_dense_baseline,
                                         price_neuromorphic)
from spikeloop.hwprofiles.fit import FitReport, check_fit, format_fit
from spikeloop.hwprofiles.network import Layer, Network, layers_from_nir, layers_from_plan
from spikeloop.hwprofiles.profile import Profile, builtin_profiles, load_profile

__all__ = ["FitReport", "Layer", "Network", "NetworkShape", "Profile", "builtin_profiles", "check_fit",
           "format_fit", "layers_from_nir", "layers_from_plan", "load_profile", "neurobench_counts",
           "price_dense_baseline", "price_neuromorphic"]
