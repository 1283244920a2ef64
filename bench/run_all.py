"""Run the seven benchmarks of issue 9, each in its own process with a time limit, and rewrite the results
in docs/benchmarks.md between its markers (the charge-test section of bench/load.py is kept as it is).

    python -m bench.run_all            # all seven (what `make bench` runs)
    python -m bench.run_all --only 1 7 # some of them
    python -m bench.run_all --quick    # fewer runs: a smoke test, figures not worth keeping
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bench.common import ROOT, BenchResult, Target

DOC = ROOT / "docs" / "benchmarks.md"
# The raw results of the last run of each bench, so that `--only` rewrites the page without losing the others.
LAST = ROOT / "bench" / "results" / "last.json"
BEGIN = "<!-- bench:results:begin (written by `make bench`; edits between these markers are lost) -->"
END = "<!-- bench:results:end -->"
CHARGE_HEADING = "## Charge test (bench/load.py)"

# (number, module, time limit in seconds). On an idle machine the whole run takes about six minutes; the
# limits leave room for a loaded one, and a bench past its limit is reported as not measured.
BENCHES: tuple[tuple[int, str, int], ...] = (
    (1, "bench.b1_parse", 180),
    (2, "bench.b2_status", 360),
    (3, "bench.b3_export", 300),
    (4, "bench.b4_reminders", 420),
    (5, "bench.b5_blanks", 180),
    (6, "bench.b6_memory", 150),
    (7, "bench.b7_upload", 150),
    (8, "bench.b8_outliers", 420),
    (9, "bench.b9_status_2025", 300),
)
TITLES = {
    1: "Parse and check one return",
    2: "Status of a national plan (10,595 communes, ~30,000 versions)",
    3: "Consolidated export of 705 district returns",
    4: "Reminder run for 10,595 units",
    5: "Blank workbooks for a province, and their zip",
    6: "Peak memory of the upload worker on a 10 MiB return",
    7: "One upload end to end through the API",
    8: "Outlier list of the national status plan (10,595 communes)",
    9: "Status of a plan over the 3,321 communes of the 2025 map",
}
PACKAGES = ("Flask", "Flask-SQLAlchemy", "SQLAlchemy", "pandas", "numpy", "python-calamine", "openpyxl", "Jinja2",
            "Werkzeug", "psycopg", "aiosmtpd", "Flask-Mail")


def run_one(number: int, module: str, limit: int, quick: bool) -> BenchResult:
    """Run one bench module in a child process; return its result (an error result on failure or overrun)."""
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", module, "--out", str(out)] + (["--quick"] if quick else [])
        began = time.perf_counter()
        print(f"[{number}] {TITLES[number]} …", flush=True)
        try:
            proc = subprocess.run(command, cwd=str(ROOT), timeout=limit, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return BenchResult(number, TITLES[number], seconds=time.perf_counter() - began,
                               error=f"not measured: stopped after its time limit of {limit} s")
        if out.exists():
            result = BenchResult.from_json(out.read_text(encoding="utf-8"))
        else:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            result = BenchResult(number, TITLES[number], seconds=time.perf_counter() - began,
                                 error=f"not measured: exit code {proc.returncode}: {tail[0][:300]}")
        if result.error and proc.stderr:
            sys.stderr.write(proc.stderr[-3000:])
        print(f"[{number}] done in {result.seconds:.0f} s" + (f" — {result.error}" if result.error else ""), flush=True)
        return result


def merge_with_last(fresh: dict[int, BenchResult]) -> list[BenchResult]:
    """Return the fresh results, with the last stored result of every bench not run this time."""
    merged = dict(fresh)
    if LAST.exists():
        for raw in json.loads(LAST.read_text(encoding="utf-8")):
            old = BenchResult.from_json(json.dumps(raw))
            if old.number not in merged:
                kept = "(Kept from an earlier run: this bench was not run with the others.)"
                if kept not in old.notes:
                    old.notes.append(kept)
                merged[old.number] = old
    return [merged[number] for number in sorted(merged)]


def machine() -> list[str]:
    """Return the lines describing this machine and the software measured."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:")))
        ram = f"{kib / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "RAM unknown"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return [f"{os.cpu_count()} CPUs (nproc), {cpu}, {ram}; {platform.system()} {platform.release()}",
            f"Python {platform.python_version()}; " + ", ".join(versions),
            _postgres_version()]


def _postgres_version() -> str:
    from bench.common import pg_available, pg_url

    reason = pg_available()
    if reason:
        return f"PostgreSQL: not reachable ({reason})"
    from sqlalchemy import create_engine, text

    url = pg_url()
    engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as conn:
        version = conn.execute(text("show server_version")).scalar_one()
    engine.dispose()
    return f"PostgreSQL {version} on loopback (scratch schema per bench, dropped afterwards); SQLite {_sqlite()}"


def _sqlite() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _met(target: Target) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[target.met]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def render(results: list[BenchResult], started: datetime, wall: float, load: tuple[float, float],
           quick: bool) -> str:
    """Return the Markdown between the markers: machine, a summary of targets, then each bench's figures."""
    lines = [BEGIN, "", f"Run of {started.strftime('%Y-%m-%d %H:%M')} UTC, {wall / 60:.1f} min in all"
             + (" (**--quick: smoke-test figures, too few runs to keep**)" if quick else "") + ".", ""]
    lines += [f"- {line}" for line in machine()]
    lines.append(f"- Load average (1 min) at the start and end of the run: {load[0]:.1f} and {load[1]:.1f}. "
                 "Figures taken while other work shares the two cores are slower than on an idle machine; the "
                 "ratios are measured in turn within each bench, so they suffer less than the absolute times.")
    lines += ["", "### Targets", "", "| # | Target | Measured | Result | Why, when missed |", "|---|---|---|---|---|"]
    for result in results:
        if result.error and not result.targets:
            lines.append(f"| {result.number} | {result.title} | — | not measured | {result.error} |")
        for target in result.targets:
            lines.append(f"| {result.number} | {target.text} | {target.measured} | {_met(target)} | "
                         f"{target.why.replace('|', '/')} |")
    lines.append("")
    for result in results:
        lines += [f"### {result.number}. {result.title}", ""]
        if result.error:
            lines += [f"Error: {result.error}", ""]
        if result.figures:
            lines += ["| Figure | Median | Runs | Range | Note |", "|---|---|---|---|---|"]
            for f in result.figures:
                lines.append(f"| {f.label} | {_number(f.median)} {f.unit} | {f.runs} | "
                             f"{_number(f.low)}–{_number(f.high)} | {f.note.replace('|', '/')} |")
            lines.append("")
        lines += [f"- {note}" for note in result.notes]
        lines += [f"- Bench time: {result.seconds:.0f} s.", ""]
    lines.append(END)
    return "\n".join(lines)


def write_doc(section: str) -> None:
    """Replace the text between the markers of docs/benchmarks.md with ``section`` (creating the file if needed)."""
    if DOC.exists():
        text = DOC.read_text(encoding="utf-8")
    else:
        text = ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = _skeleton(section)
    DOC.write_text(text, encoding="utf-8")


def _skeleton(section: str) -> str:
    return "\n".join([
        "# Benchmarks", "",
        "Issue 9 asks for proof that the tracker stays fast when a plan is national. `make bench` runs the",
        "seven benches in `bench/` and rewrites the results below; see the end of this page for how they work.",
        "", "## Results", "", section, "", CHARGE_HEADING, "",
        "Figures of the load script (`make load`: gunicorn and N concurrent uploaders) go here.", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=int, nargs="*", help="bench numbers to run (default: all seven)")
    parser.add_argument("--quick", action="store_true", help="fewer runs; a smoke test")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing the doc")
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    chosen = [b for b in BENCHES if not args.only or b[0] in args.only]
    fresh = {number: run_one(number, module, limit, args.quick) for number, module, limit in chosen}
    results = merge_with_last(fresh) if not args.no_write else list(fresh.values())
    section = render(results, started, time.perf_counter() - began, (load_start, os.getloadavg()[0]), args.quick)
    if args.no_write:
        print(section)
    else:
        write_doc(section)
        LAST.parent.mkdir(parents=True, exist_ok=True)
        LAST.write_text("[\n" + ",\n".join(r.to_json() for r in results) + "\n]\n", encoding="utf-8")
        print(f"Wrote {DOC.relative_to(ROOT)}")
    missed = [t for r in results for t in r.targets if t.met is False]
    print(f"{sum(1 for r in results for t in r.targets if t.met)} targets met, {len(missed)} missed, "
          f"{sum(1 for r in results if r.error)} bench(es) with errors.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
