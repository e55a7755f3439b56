"""Helpers of the test suite: a real PostgreSQL, real server processes, a cuttable TCP proxy."""
