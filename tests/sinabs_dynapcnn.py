"""sinabs's software model of the DYNAP-CNN / Speck chip, importable without samna.

``sinabs.backend.dynapcnn`` (sinabs 3.1.3) imports SynSense's hardware driver ``samna`` at the top
of its modules (``dynapcnn_network.py``, ``config_builder.py``, ``chips/speck2e.py``,
``chips/speck2f.py``, ``io.py``). samna cannot be installed here (its PyPI packages are stubs that
download from elsewhere). The software forward path (``DynapcnnNetwork(..., discretize=True)``
called on a tensor) never calls samna: it needs the names to exist at import time only. So,
where samna is absent, :func:`dynapcnn` registers empty modules under those names, with a
placeholder class for the two names sinabs reads at import (``SpeckConfiguration``, and
``samna.device.DeviceInfo`` in an annotation). Anything that would really use samna (making a
chip configuration, opening a device) then fails, loudly.

What a comparison against this model proves: that spikeloop discretizes each layer as sinabs
does for the chip and runs the same integer integrate-and-fire dynamics (integrate, spike, reset,
lower clamp, sum pooling, a Linear as a convolution over the whole map). What it cannot prove:
the chip's own behaviour (its asynchronous event order, its 16-bit saturation at the top, which
sinabs's float state does not model, its routing), which needs the hardware and samna.
"""
from __future__ import annotations

import importlib
import sys
import types

SAMNA_NAMES = ("samna", "samna.speck2e", "samna.speck2e.configuration", "samna.speck2f",
               "samna.speck2f.configuration", "samna.device", "samnagui")


def _placeholder_samna() -> None:
    """Empty modules under samna's names (see the module docstring)."""
    mods = {name: types.ModuleType(name) for name in SAMNA_NAMES}

    class Unavailable:
        """samna is not installed: nothing of the hardware path works."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError("samna is not installed; sinabs's hardware path is unavailable here")

    for chip in ("speck2e", "speck2f"):
        mods[f"samna.{chip}.configuration"].SpeckConfiguration = Unavailable
        mods[f"samna.{chip}"].configuration = mods[f"samna.{chip}.configuration"]
        setattr(mods["samna"], chip, mods[f"samna.{chip}"])
    mods["samna.device"].DeviceInfo = Unavailable
    mods["samna"].device = mods["samna.device"]
    sys.modules.update(mods)


def dynapcnn():
    """The ``sinabs.backend.dynapcnn`` module (with placeholders for samna where it is absent)."""
    try:
        importlib.import_module("samna")
    except ImportError:
        _placeholder_samna()
    return importlib.import_module("sinabs.backend.dynapcnn")
