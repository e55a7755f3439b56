"""workflowstate: a gRPC state server for durable workflows.

The package is split by job: ``workflowstate.v1`` holds the stubs generated
from ``proto/`` (never edited by hand), ``workflowstate.client`` the typed
Python client, ``workflowstate.server`` the server and its PostgreSQL store.
"""

__version__ = "0.1.0"
