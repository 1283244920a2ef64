"""Run the parser property of tests/test_parser_property.py for a long time.

    .venv/bin/python scripts/fuzz_long.py 3600            # one hour
    .venv/bin/python scripts/fuzz_long.py 600 --out /tmp/fuzz

Mutated returns go through the server's read path (guard, then the parse worker) in rounds of
Hypothesis examples until the time is up. A failure is shrunk by Hypothesis, its bytes are written
to --out (default: a temporary folder) and the script exits 1. Loopback-free: nothing leaves this
process but the parse worker it starts.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main(argv: list[str] | None = None) -> int:
    """Fuzz for the given seconds; return 0 when nothing failed, 1 with the failing file saved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float, help="how long to run")
    parser.add_argument("--round", type=int, default=200, help="examples per Hypothesis round")
    parser.add_argument("--out", type=Path, default=None, help="folder for failing inputs")
    args = parser.parse_args(argv)

    from hypothesis import HealthCheck, given, settings

    import test_parser_property as prop

    outcomes: collections.Counter[str] = collections.Counter()
    last: list[bytes] = []

    def check(data: bytes) -> None:
        last[:] = [bytes(data)]
        outcome = prop.server_read(data)
        outcomes[getattr(outcome, "code", type(outcome).__name__)] += 1
        prop.check(data)

    round_test = settings(max_examples=args.round, deadline=None, database=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))(given(prop.MUTATED)(check))
    deadline = time.monotonic() + args.seconds
    rounds = 0
    try:
        while time.monotonic() < deadline:
            round_test()
            rounds += 1
            total = sum(outcomes.values())
            print(f"round {rounds}: {total} inputs so far, {dict(outcomes.most_common())}", flush=True)
    except Exception as exc:  # noqa: BLE001 - the failure is the finding: save it and report
        out = args.out or Path(tempfile.mkdtemp(prefix="tracker-fuzz-"))
        out.mkdir(parents=True, exist_ok=True)
        if last:
            path = out / f"failure-{hashlib.sha256(last[0]).hexdigest()[:16]}.xlsx"
            path.write_bytes(last[0])
            print(f"FAILED after {sum(outcomes.values())} inputs: {exc!r}\nfailing input saved to {path}")
        else:
            print(f"FAILED: {exc!r}")
        return 1
    finally:
        from tracker import isolation

        isolation.shutdown()
    print(f"OK: {sum(outcomes.values())} inputs in {rounds} rounds, no unexpected exception.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
