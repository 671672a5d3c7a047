"""Runnable demo of the pipeline: `python -m demo`."""

import sys

from demo.life import main

sys.exit(main())
