import sys

from demo.train import main

sys.exit(main())
