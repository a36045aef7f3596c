"""``python -m objio.bench [options]``: the ``objio bench`` command on its own."""

import sys

from ..cli.bench import main

sys.exit(main())
