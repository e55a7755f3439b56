"""The benchmark of workflowstate: `python -m bench` from the repository root.

It measures, on one database and in one run, how far the server is from the SQL it stands on:

- ``sql-limit``: the least SQL one step lifecycle needs, run by pgbench (the physical limit);
- ``grpc-lifecycle``: the same lifecycle as six RPCs of the async client against a server process;
- ``lease-cycles``: acquire + release on Lease streams kept open, for a few worker/key shapes.

Every figure is a closed loop (each worker starts its next unit when the last one ends), warmed
up, then counted over a fixed window: units per second, and p50/p99 latency of one unit.
"""
