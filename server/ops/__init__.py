"""Running the server: CLI, configuration, assembly, health, metrics, logs, server processes, embedded PostgreSQL."""
