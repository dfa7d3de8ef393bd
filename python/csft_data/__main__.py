"""``python -m csft_data`` runs the command-line interface."""

import sys

from csft_data.cli import main

sys.exit(main())
