"""`python -m omni_mer.demo`: the same as `omni-mer demo`."""

import sys

from omni_mer.demo.app import main

sys.exit(main())
