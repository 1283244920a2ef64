"""Bench 7: one upload end to end through the API, against the bare calamine read of the same file.

The 2024 plan is seeded in a scratch SQLite database; unit 219's officer posts complete PL03 returns
to ``POST /api/v1/plans/bacgiang-2024/units/219/returns`` with an API token (guard, isolated parse in
the warm worker, checks, storage of bytes, values and issues, the JSON answer). Every upload differs
by one narrative answer, since an identical file is answered without parsing. Taken in turn with
``pandas.read_excel(engine="calamine", sheet_name=None)`` of the same bytes. The first upload, which
starts the worker process (a fresh interpreter importing pandas), is reported apart.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
from typing import Any

from bench.common import BenchResult, Target, bench_main, figure, make_app, scratch_database, temp_dir, timed

LIMIT_RATIO = 10.0
LIMIT_MS = 100.0


def body(result: BenchResult, args: argparse.Namespace) -> None:
    import pandas as pd

    from bench.uploads import PLAN, UNIT, distinct_returns, seed_2024
    from tracker import isolation

    runs = 5 if args.quick else 25
    with scratch_database("sqlite") as url:
        # 26 uploads by one unit in a minute: above the hourly limit an officer has, which is not timed here.
        app = make_app(url, temp_dir("bench-upload-"), UPLOAD_RATE="1000 per hour")
        token = seed_2024(app)
        files = distinct_returns(app, runs + 1)
        client = app.test_client()
        path = f"/api/v1/plans/{PLAN}/units/{UNIT[0]}/returns"

        def upload(data: bytes) -> Any:
            response = client.post(path, headers={"Authorization": f"Bearer {token}"},
                                   data={"file": (io.BytesIO(data), "bao-cao.xlsx")},
                                   content_type="multipart/form-data")
            if response.status_code != 201 or not response.get_json()["complete"]:
                raise RuntimeError(f"upload answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
            return response

        isolation.shutdown()
        cold, _ = timed(lambda: upload(files[0]))
        uploads: list[float] = []
        reads: list[float] = []
        for data in files[1:]:
            uploads.append(timed(lambda: upload(data))[0])
            reads.append(timed(lambda: pd.read_excel(io.BytesIO(data), sheet_name=None, engine="calamine"))[0])
        isolation.shutdown()
        with app.app_context():
            from tracker.extensions import db

            db.session.remove()
            db.engine.dispose()
    result.figures.append(figure("upload through the API, warm worker", uploads,
                                 note=f"{len(files[1]) / 1024:.0f} KiB PL03 return, new version each time"))
    result.figures.append(figure("bare read_excel calamine of the same file", reads))
    result.figures.append(figure("first upload, starting the worker process", [cold]))
    times = statistics.median(uploads) / statistics.median(reads)
    median_ms = statistics.median(uploads) * 1000
    result.targets.append(Target(f"upload ≤ {LIMIT_RATIO:.0f}× the bare calamine read", f"{times:.1f}×",
                                 times <= LIMIT_RATIO))
    result.targets.append(Target(f"upload of a typical return ≈ {LIMIT_MS:.0f} ms", f"{median_ms:.0f} ms",
                                 median_ms <= LIMIT_MS,
                                 "" if median_ms <= LIMIT_MS else
                                 f"the ratio is the target measured in turn; the bare read itself took "
                                 f"{statistics.median(reads) * 1000:.0f} ms in this run, not the ~10 ms the issue's "
                                 "estimate assumes (load from other work on the two cores)"))
    result.targets.append(Target("no fresh interpreter per upload (warm worker)",
                                 f"first upload {cold * 1000:.0f} ms, then {median_ms:.0f} ms",
                                 median_ms < cold * 1000))


def main(argv: list[str] | None = None) -> int:
    return bench_main(7, "One upload end to end through the API", body, argv)


if __name__ == "__main__":
    sys.exit(main())
