"""`python -m workflowstate.server` is the `workflowstate` command."""

import sys

from .ops.cli import main

sys.exit(main())
