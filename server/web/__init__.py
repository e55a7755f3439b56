"""The web dashboard: pages over the gRPC API, served by `workflowstate serve` on --http-listen."""
