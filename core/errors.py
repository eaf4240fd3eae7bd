"""The one exception hierarchy of spikeloop.

Every user-facing failure is a :class:`SpikeloopError` whose message names the
fault (file, node, layer, limit, value) and, where there is one, the fix.
"""


class SpikeloopError(Exception):
    """Base class of every error spikeloop raises on purpose."""


class ConfigError(SpikeloopError, ValueError):
    """A bad option, config file or environment id."""


class CheckpointError(SpikeloopError):
    """A checkpoint that cannot be read, is corrupt, or does not match the model."""


class ExportError(SpikeloopError):
    """A torch model that cannot be written to NIR."""


class NIRValidationError(SpikeloopError, ValueError):
    """A NIR graph or file that is malformed or outside what spikeloop supports."""


class QuantizationError(SpikeloopError, ValueError):
    """A parameter that the fixed-point target cannot represent."""


class HardwareConstraintError(SpikeloopError):
    """A network that violates a hardware profile's limits."""


class ProfileError(SpikeloopError, ValueError):
    """A hardware profile file that is malformed."""


class RuntimeMismatchError(SpikeloopError):
    """Two implementations that must agree do not."""


class LavaRuntimeError(SpikeloopError):
    """The Lava runtime failed or could not be stopped cleanly."""
