"""A module that ends the process on import: importing it as a job must fail the run, not the scheduler."""

import sys

sys.exit(3)
