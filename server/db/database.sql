-- Statements about the database itself, not any capability's state.

-- ping --
-- The health probe: one round trip.
SELECT 1;
