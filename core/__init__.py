"""spikeloop.core: the records every other layer stands on.

The neuron contract, input encodings and output decodings, graph utilities, NIR
reading with spikeloop's metadata, environments, errors and atomic artifacts. Nothing
here imports ``spikeloop.train``, ``spikeloop.export``, ``spikeloop.runtime`` or
``spikeloop.hwprofiles``.
"""
