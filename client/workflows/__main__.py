"""``python -m workflowstate.workflows MODULE...``: see ``_command``."""

import sys

from ._command import main

sys.exit(main())
