"""Bench 1: parse and check one return, against bare pandas reads of the same file.

Contenders, taken in turn on the same bytes (``sheet_name=None`` for both bare reads):
- tracker: ``parsing.parse_return`` (identify, read with calamine, check every input and rule);
- calamine: ``pandas.read_excel(engine="calamine", sheet_name=None)``;
- openpyxl: ``pandas.read_excel(engine="openpyxl", sheet_name=None)``;
- and, as the floor beneath them, python-calamine alone (``CalamineWorkbook.to_python``) on the sheets the
  tracker reads: the Rust reader with neither pandas nor any check, the most any parse could hope for.
For a typical PL03 return (the valid full return of tests/forms_fixtures) and for one 20 times larger
(PL03 with every sheet's rows and row rules repeated 20 times, see bench/bigform.py).
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
from typing import Any

from bench.common import BenchResult, Target, bench_main, figure, interleaved, ratio

RATIO_CALAMINE = 1.5
FASTER_THAN_OPENPYXL = 4.0


def _case(result: BenchResult, label: str, form: Any, data: bytes, runs: int, budget: float) -> None:
    import pandas as pd

    from tracker.parsing import parse_return

    parsed = parse_return(data, form)
    if not parsed.complete:
        raise RuntimeError(f"{label}: the bench return is not complete: {parsed.issues[:3]}")
    samples = interleaved({
        "tracker": lambda: parse_return(data, form),
        "calamine": lambda: pd.read_excel(io.BytesIO(data), sheet_name=None, engine="calamine"),
        "openpyxl": lambda: pd.read_excel(io.BytesIO(data), sheet_name=None, engine="openpyxl"),
        "rust": lambda: _rust_read(data, form),
    }, runs, budget=budget)
    cells = len(form.input_keys())
    rules = sum(len(rule.instances) for rule in form.rules)
    size = f"{len(data) / 1024:.0f} KiB, {cells:,} input cells, {rules:,} rule checks"
    result.figures.append(figure(f"{label}: tracker parse_return", samples["tracker"], note=size))
    result.figures.append(figure(f"{label}: bare read_excel calamine", samples["calamine"]))
    result.figures.append(figure(f"{label}: bare read_excel openpyxl", samples["openpyxl"]))
    result.figures.append(figure(f"{label}: python-calamine alone, the tracker's sheets (floor)", samples["rust"],
                                 note=f"tracker = {ratio(samples['tracker'], samples['rust']):.2f}× this floor"))
    to_calamine = ratio(samples["tracker"], samples["calamine"])
    vs_openpyxl = ratio(samples["openpyxl"], samples["tracker"])
    overhead_ms = (statistics.median(samples["tracker"]) - statistics.median(samples["calamine"])) * 1000
    beyond_floor_ms = (statistics.median(samples["tracker"]) - statistics.median(samples["rust"])) * 1000
    why = ""
    if to_calamine > RATIO_CALAMINE:
        why = (f"{overhead_ms:.0f} ms beyond the bare read, {beyond_floor_ms:.0f} ms beyond python-calamine alone, "
               f"for {cells:,} cells and {rules:,} rule checks: profile the parse (cProfile of parse_return) "
               "to see whether the tidy table, the per-cell look at text cells or the rule groups dominate")
    result.targets.append(Target(f"{label}: tracker ≤ {RATIO_CALAMINE}× bare calamine read",
                                 f"{to_calamine:.2f}×", to_calamine <= RATIO_CALAMINE, why))
    result.targets.append(Target(f"{label}: tracker ≥ {FASTER_THAN_OPENPYXL}× faster than openpyxl read",
                                 f"{vs_openpyxl:.1f}×", vs_openpyxl >= FASTER_THAN_OPENPYXL,
                                 "" if vs_openpyxl >= FASTER_THAN_OPENPYXL else
                                 f"{beyond_floor_ms:.0f} ms beyond python-calamine alone: see the line above"))


def _rust_read(data: bytes, form: Any) -> list[Any]:
    from python_calamine import CalamineWorkbook

    from tracker.identity import META_SHEET_NAME

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    wanted = {META_SHEET_NAME, form.narrative.name, *(sheet.name for sheet in form.sheets)}
    grids = [book.get_sheet_by_name(name).to_python(skip_empty_area=False) for name in book.sheet_names
             if name in wanted]
    book.close()
    return grids


def body(result: BenchResult, args: argparse.Namespace) -> None:
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import filled_return, sample_texts

    from bench.bigform import enlarged_form, enlarged_values

    quick = args.quick
    form = shipped_forms()["PL03"]
    values = consistent_values(form)
    typical = filled_return(form, values, sample_texts(form))
    _case(result, "typical PL03", form, typical, 5 if quick else 30, 20.0)
    big = enlarged_form(form.source, args.times)
    large = filled_return(big, enlarged_values(values, big), sample_texts(big))
    _case(result, f"{args.times}× PL03", big, large, 3 if quick else 9, 60.0)
    result.notes.append(
        f"The {args.times}× return is PL03 with each sheet's rows repeated {args.times} times (codes suffixed "
        "_r2…), the rules that name rows repeated per block, and the valid values of the typical return in "
        "every block; built from the definition text by bench/bigform.py and loaded by the normal loader.")
    result.notes.append("The tracker reads only the sheets it uses (metadata, narrative, Biểu 01–07), with "
                        "python-calamine directly (no pandas frame inference); the bare reads read every sheet "
                        "through pandas, as the targets ask. The python-calamine floor reads the tracker's "
                        "sheets with nothing else: the distance to it is what the checks and the tidy table cost.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--times", type=int, default=20)


def main(argv: list[str] | None = None) -> int:
    return bench_main(1, "Parse and check one return", body, argv, configure)


if __name__ == "__main__":
    sys.exit(main())
