"""``python -m cli``: the ``decide`` command."""

import sys

from cli.main import main

sys.exit(main())
