"""Stubs generated from proto/workflowstate/v1 by scripts/generate_stubs.py. Do not edit."""
