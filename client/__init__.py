"""Typed Python client for the workflowstate server."""
