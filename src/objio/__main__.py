"""``python -m objio``: the ``objio`` command (e.g. under ``torchrun --no-python``'s
counterpart ``torchrun -m objio bench ...``, or where the console script is not on PATH)."""

import sys

from .cli import main

sys.exit(main())
