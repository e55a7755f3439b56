"""Schedules: runs created at a cron expression's or an interval's times, by every server, each
occurrence exactly once (store.py, schedules.sql, the loop in firer.py, the times in timing.py)."""
