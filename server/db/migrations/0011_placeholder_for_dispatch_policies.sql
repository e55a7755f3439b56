-- PLACEHOLDER on branch h-schedules only, so that 0012 applies without a gap while the dispatch
-- policies migration (H4, branch h-policies) is not merged: delete this file when merging h-policies.
SELECT 1;
