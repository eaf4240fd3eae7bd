"""spikeloop.runtime: NIR -> Lava compiler, fixed point, emulator, closed-loop runner.

Importing this package installs the Lava compatibility shim before Lava is imported.
"""
from spikeloop.runtime import lava_compat as _lava_compat

_lava_compat.install()
