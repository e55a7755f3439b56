"""PostgreSQL: the pool, the one way statements run, the driver-error map, migrations, LISTEN/NOTIFY."""
