"""``python -m recoverkit`` runs the CLI."""

import sys

from recoverkit.cli import main

sys.exit(main())
