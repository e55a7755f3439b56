"""A client process of the fault tests: concurrent writers (faults_writers.py), journaled to a file.

    python faults_writer_process.py TARGET JOURNAL WRITERS AFTER_RECOVERY TIMEOUT

Runs WRITERS threads doing lifecycles that complete their run (RUN_LIFECYCLE), each with its own
client, retries off, until the test writes one line on stdin: the moment (time.monotonic(), which
on Linux is one clock for every process of the machine) the server was serving again after a
fault. It then goes on until AFTER_RECOVERY lifecycles started after that moment were acknowledged
to the end, stops by itself, writes every call and lifecycle to JOURNAL (JSON) and exits 0. Stdin
closed without a line (the test gave up): it stops at once. A wait longer than TIMEOUT seconds ends
it with an error, journal written all the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Run as a script: tests/ on the path makes `support` importable as it is in the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.faults_writers import RUN_LIFECYCLE, Writers, journal


def main() -> None:
    target, journal_path, count, after_recovery, timeout = sys.argv[1:6]
    writers = Writers(target, count=int(count), ops=RUN_LIFECYCLE)
    try:
        line = sys.stdin.readline()
        if line:
            recovered = float(line)
            writers.wait_until(
                lambda: writers.completed_since(recovered) >= int(after_recovery), float(timeout), "lifecycles after the recovery"
            )
    finally:
        writers.stop()
        Path(journal_path).write_text(json.dumps(journal(writers.calls, writers.lifecycles)))


if __name__ == "__main__":
    main()
