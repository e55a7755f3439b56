"""Remote mode: hand due steps to worker streams, keep their task leases, fail and retry lost ones (dispatch.sql)."""
