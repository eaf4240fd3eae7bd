import sys

from spikeloop.cli import main

sys.exit(main())
