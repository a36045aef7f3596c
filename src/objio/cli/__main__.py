"""``python -m objio.cli``: the ``objio`` command."""

import sys

from . import main

sys.exit(main())
