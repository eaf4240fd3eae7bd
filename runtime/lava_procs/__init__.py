"""spikeloop's own Lava processes and process models.

They live in a package of their own because Lava's compiler imports every module in
the folder of a process's module when it searches for process models.
"""
