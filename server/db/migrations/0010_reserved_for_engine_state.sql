-- 0010: reserved for the engine state of issue 12 (branch h-engine), which brings its own 0010.
-- This empty placeholder only keeps the numbers without a gap on branch h-policies; drop it when
-- merging h-engine.
SELECT 1;
