"""A closed-loop Lava run in its own process, for the Ctrl-C test (tests/test_runtime_cleanup.py).

Usage: python lava_worker.py MARKER  -- prints READY once decisions are flowing, then runs on.
"""
import signal
import sys

import numpy as np

import spikeloop.runtime  # noqa: F401
from spikeloop.core.nir_io import read_graph
from spikeloop.runtime.compiler import plan_from_nir
from spikeloop.runtime.backends import LAVA_MAPPINGS, make_backend

if __name__ == "__main__":
    # A shell starts background jobs with SIGINT ignored (POSIX, without job control), and the
    # test runner may be one: give the worker the disposition of a process in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plan = plan_from_nir(read_graph(sys.argv[2]))
    mapping = sys.argv[3] if len(sys.argv) > 3 else "per-node"
    try:
        with make_backend(LAVA_MAPPINGS[mapping], plan, "fixed") as net:
            for i in range(1_000_000):
                net.decide(np.zeros(plan.input_size))
                if i == 5:
                    print("READY", flush=True)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(130)
