"""What every layer of the server may use: its error classes and shutdown signal. Imports nothing of the server."""
