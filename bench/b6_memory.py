"""Bench 6: peak memory of one upload worker parsing a return of just under 10 MiB.

The return is a complete PL03 return with a 1600-pixel-wide photo of random pixels on its narrative
sheet (a scanned page pasted in is how real returns get large), sized so the file sits just under the
10 MiB upload limit; the guard accepts it. A fresh ``isolation.Worker`` (the warm parse process the
web worker uses) starts, its peak resident set (VmHWM in /proc/<pid>/status) is read after start-up
and again after parsing the return; then the whole upload goes through the API in this process, and
this process's own peak (reset just before through /proc/self/clear_refs) is read the same way.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from bench.common import (BenchResult, Target, bench_main, figure, make_app, scratch_database, temp_dir, timed,
                          vm_hwm_kib, vm_rss_kib)

LIMIT_MB = 300.0


def body(result: BenchResult, args: argparse.Namespace) -> None:
    from bench.uploads import PLAN, UNIT, distinct_returns, padded_return, seed_2024
    from tracker import isolation
    from tracker.guard import inspect
    from tracker.returns import guard_limits

    runs = 1 if args.quick else 3
    with scratch_database("sqlite") as url:
        app = make_app(url, temp_dir("bench-mem-"))
        token = seed_2024(app)
        with app.app_context():
            from tracker import forms

            form = forms.get("PL03")
            limit = int(app.config["MAX_UPLOAD_BYTES"])
            limits = guard_limits(forms.all_forms(), limit)
        base = distinct_returns(app, 1)[0]
        data = padded_return(base, form.narrative.name, limit)
        inspect(data, "bao-cao-10MiB.xlsx", limits)  # the guard must let it through, or this measures nothing
        result.notes.append(f"Return of {len(data):,} bytes ({len(data) / 2**20:.2f} MiB; limit {limit:,}); the "
                            f"same return without the picture is {len(base):,} bytes.")
        started: list[float] = []
        peaks: list[float] = []
        seconds: list[float] = []
        for _ in range(runs):
            worker = isolation.Worker()
            try:
                worker.start()
                assert worker.pid is not None
                started.append(vm_hwm_kib(worker.pid) / 1024)
                took, parsed = timed(lambda: worker.run("tracker.parsing:parse_return", data, form,
                                                        app.config["SECRET_KEY"], timeout=60.0))
                peaks.append(vm_hwm_kib(worker.pid) / 1024)
                seconds.append(took)
                if not parsed.complete:
                    raise RuntimeError(f"the padded return is not complete: {parsed.issues[:3]}")
            finally:
                worker.shutdown()
        result.figures.append(figure("parse worker peak RSS after start-up (pandas imported)", started, unit="MB",
                                     scale=1.0))
        result.figures.append(figure("parse worker peak RSS after parsing the 10 MiB return", peaks, unit="MB",
                                     scale=1.0))
        result.figures.append(figure("parse of the 10 MiB return in the worker", seconds))
        peak = sorted(peaks)[len(peaks) // 2]
        result.targets.append(Target(f"upload worker parsing a 10 MiB return ≤ {LIMIT_MB:.0f} MB", f"{peak:.0f} MB",
                                     peak <= LIMIT_MB))

        client = app.test_client()
        # Reset this process's peak to its current size (Linux clear_refs), so the peak is the upload's.
        Path("/proc/self/clear_refs").write_text("5")
        before_rss = vm_rss_kib() / 1024
        took, response = timed(lambda: client.post(
            f"/api/v1/plans/{PLAN}/units/{UNIT[0]}/returns", headers={"Authorization": f"Bearer {token}"},
            data={"file": (io.BytesIO(data), "bao-cao-10MiB.xlsx")}, content_type="multipart/form-data"))
        if response.status_code != 201:
            raise RuntimeError(f"upload answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        after_peak = vm_hwm_kib() / 1024
        result.figures.append(figure("web process: whole 10 MiB upload through the API", [took]))
        result.figures.append(figure("web process peak RSS during that upload", [after_peak], unit="MB", scale=1.0,
                                     note=f"{before_rss:.0f} MB resident before it (peak reset just before)"))
        isolation.shutdown()
        with app.app_context():
            from tracker.extensions import db

            db.session.remove()
            db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    return bench_main(6, "Peak memory of the upload worker on a 10 MiB return", body, argv)


if __name__ == "__main__":
    sys.exit(main())
