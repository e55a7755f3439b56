"""Run events: read them in a stable order from any position, wake readers, prune (events.sql)."""
