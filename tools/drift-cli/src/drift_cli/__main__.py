"""`python -m drift_cli` is the `drift` command."""

import sys

from drift_cli.main import main

sys.exit(main())
