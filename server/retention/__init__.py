"""Retention: policies stored in the database, and the loop that erases the runs they match."""
