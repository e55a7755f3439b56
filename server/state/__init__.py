"""Runs and steps: the transition table, the store that applies it, and its statements (state.sql)."""
