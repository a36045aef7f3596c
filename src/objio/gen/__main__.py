"""``python -m objio.gen [options]``: ``objio gen`` on its own, with the connection options."""

import sys

from ..cli.gen import main

sys.exit(main())
