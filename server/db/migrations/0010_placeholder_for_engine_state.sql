-- PLACEHOLDER on branch h-schedules only, so that 0012 applies without a gap while the engine
-- state migration (H1, branch h-engine) is not merged: delete this file when merging h-engine.
SELECT 1;
