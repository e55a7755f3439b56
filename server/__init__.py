"""The workflowstate gRPC server and its PostgreSQL store."""
