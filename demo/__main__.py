"""Runnable demo of the pipeline: `python -m demo` (or `python -m replay demo`)."""

import sys

from demo.life import main

sys.exit(main())
