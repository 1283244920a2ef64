"""Which figures look wrong beside the others: outlier flags over a plan's counted values.

Pure and vectorised: each form's counted values come in as one unit × cell matrix (``FormValues``), the
flags come out as plain ``Flag`` values. Nothing here reads the database or the clock, and a flag is
never an error: it changes no version, no review and no status.

Three checks, each per cell (indicator × period × breakdown):

- ``robust_z``: across the units of the same form, the modified z-score
  0.6745 · (x − median) / MAD (Iglewicz and Hoaglin) of the figure, or of the figure per population
  where the form says so (``[outliers.per]``: per 1,000 children, per commune), beyond the form's
  ``threshold``. Where more than half the units report the same figure the MAD is 0 and the mean absolute
  deviation stands in: (x − median) / (1.2533 · meanAD). The spread is never taken below 5% of the
  median, and a cell where most units report 0 gets no score (rare events: year over year and bounds);
- ``year_over_year``: the unit's own figure in the plan this one was copied from, same indicator, period
  key and breakdown: a ratio at or beyond ``year_over_year`` either way (a halving at 2.0), when the
  larger of the two reaches ``year_over_year_min``;
- ``bounds``: outside the min–max range staff set for the indicator (every period and breakdown).
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .catalog import Form, OutlierSettings
from .wording import format_number

ROBUST, YEAR_OVER_YEAR, BOUNDS = "robust_z", "year_over_year", "bounds"
REASON_LABELS = {ROBUST: "Khác xa các đơn vị khác", YEAR_OVER_YEAR: "Thay đổi lớn so với năm trước",
                 BOUNDS: "Ngoài khoảng Sở đặt"}
_MAD_TO_SIGMA = 0.6745
_MEAN_AD_TO_SIGMA = 1.2533
_RELATIVE_FLOOR = 0.05

VerifiedKey = tuple[str, str, str, str, str, float]  # unit, indicator, period, breakdown, reason, value


def cell_key(indicator: str, period: str, breakdown: str) -> str:
    """Return the key of one cell in a ``FormValues`` matrix: "B03.victims|base|total"."""
    return f"{indicator}|{period}|{breakdown}"


def split_key(key: str) -> tuple[str, str, str]:
    indicator, period, breakdown = key.split("|")
    return indicator, period, breakdown


@dataclass(frozen=True)
class FormValues:
    """The numbers of one form's counted versions: a row per unit, a column per cell key, NaN where blank."""

    form_code: str
    units: tuple[str, ...]
    keys: tuple[str, ...]
    values: np.ndarray  # float64, shape (len(units), len(keys))

    def aligned(self, units: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        """Return the values laid out on ``units`` × ``keys``, NaN where this frame has no such unit or cell."""
        if tuple(units) == self.units and tuple(keys) == self.keys:
            return self.values
        out = np.full((len(units), len(keys)), np.nan)
        row_of = {u: i for i, u in enumerate(self.units)}
        col_of = {k: j for j, k in enumerate(self.keys)}
        rows = [(i, row_of[u]) for i, u in enumerate(units) if u in row_of]
        cols = [(j, col_of[k]) for j, k in enumerate(keys) if k in col_of]
        if rows and cols:
            dst_r, src_r = map(np.array, zip(*rows))
            dst_c, src_c = map(np.array, zip(*cols))
            out[np.ix_(dst_r, dst_c)] = self.values[np.ix_(src_r, src_c)]
        return out


class Flag(NamedTuple):
    """One figure that looks wrong, with what it was compared to.

    ``value`` is the unit's figure as reported; ``reference`` the median of the units (of the rate when
    ``per`` names a population), the unit's figure last year, or the bound crossed; ``score`` the modified
    z-score or the year-over-year ratio; ``rate`` the figure per ``per`` where one was used. A named tuple,
    not a frozen dataclass: a national plan makes tens of thousands, and those cost several times as much.
    """

    unit: str
    form_code: str
    indicator: str
    period: str
    breakdown: str
    value: float
    reason: str
    reference: float
    score: float | None = None
    rate: float | None = None
    per: str = ""
    bound: str = ""  # "min" or "max" for a bounds flag
    verified: bool = False

    @property
    def key(self) -> VerifiedKey:
        return (self.unit, self.indicator, self.period, self.breakdown, self.reason, float(self.value))

    @property
    def reason_label(self) -> str:
        return REASON_LABELS[self.reason]

    @property
    def message(self) -> str:
        """Return a Vietnamese sentence saying why the figure is flagged."""
        if self.reason == ROBUST:
            if self.per and self.rate is not None:
                return (f"{fmt_number(self.rate)} trên {self.per}, trung vị các đơn vị là "
                        f"{fmt_number(self.reference)} (điểm z hiệu chỉnh {fmt_number(self.score)}).")
            return (f"{fmt_number(self.value)}, trung vị các đơn vị là {fmt_number(self.reference)} "
                    f"(điểm z hiệu chỉnh {fmt_number(self.score)}).")
        if self.reason == YEAR_OVER_YEAR:
            if self.reference == 0:
                return f"{fmt_number(self.value)}, năm trước là 0."
            return (f"{fmt_number(self.value)}, năm trước là {fmt_number(self.reference)} "
                    f"(gấp {fmt_number(self.score)} lần).")
        side = "nhỏ hơn mức tối thiểu" if self.bound == "min" else "lớn hơn mức tối đa"
        return f"{fmt_number(self.value)} {side} {fmt_number(self.reference)} do Sở đặt."


def fmt_number(value: float | None) -> str:
    """Return a number as Vietnamese write it (12.345,6; at most 2 decimals); "—" for None, "∞" for infinity."""
    if value is not None and math.isinf(value):
        return "∞"
    return format_number(None if value is None or math.isnan(value) else value, 2, blank="—")


def _population_columns(form: Form, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (the column of the population for each column or -1, the scale per column, labels)."""
    settings = form.outliers
    col_of = {k: j for j, k in enumerate(keys)}
    pop_col = np.full(len(keys), -1)
    scale = np.ones(len(keys))
    labels = [""] * len(keys)
    for j, key in enumerate(keys):
        indicator, period, breakdown = split_key(key)
        population = settings.population(indicator)
        if population is None:
            continue
        source = col_of.get(cell_key(population.indicator, period, breakdown),
                            col_of.get(cell_key(population.indicator, period, "total"), -1))
        if source >= 0:
            pop_col[j], scale[j], labels[j] = source, population.scale, population.label
    return pop_col, scale, labels


def _row_median(a: np.ndarray) -> np.ndarray:
    """Return the median of each row, ignoring NaN (rows without NaN take numpy's fast partition)."""
    out = np.empty(a.shape[0])
    gaps = np.isnan(a).any(axis=1)
    if (~gaps).any():
        out[~gaps] = np.median(a[~gaps], axis=1)
    if gaps.any():
        out[gaps] = np.nanmedian(a[gaps], axis=1)
    return out


def robust_flags(form: Form, frame: FormValues) -> list[Flag]:
    """Return the cells where a unit's figure (or rate) is far from the other units' (modified z-score)."""
    settings: OutlierSettings = form.outliers
    if frame.values.size == 0:
        return []
    pop_col, scale, labels = _population_columns(form, frame.keys)
    # Cells as rows, units as columns: every statistic below runs along contiguous memory.
    compared = np.ascontiguousarray(frame.values.T)
    rated = pop_col >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if rated.any():
            population = compared[pop_col[rated]]
            rates = compared[rated] / population * scale[rated][:, None]
            rates[~(population > 0)] = np.nan  # no population, no rate
            compared[rated] = rates
        enough = (~np.isnan(compared)).sum(axis=1) >= settings.min_units
        if not enough.any():
            return []
        rows = np.flatnonzero(enough)
        sub = compared[rows]
        median = _row_median(sub)
        signed = sub - median[:, None]
        deviation = np.abs(signed)
        # Rates of units with the same figures per child differ in the last bits: that is no spread.
        same = deviation <= (1e-9 * np.fmax(np.abs(median), 1.0))[:, None]
        deviation[same] = 0.0
        signed[same] = 0.0
        mad = _row_median(deviation)
        mean_ad = np.nanmean(deviation, axis=1)
        # The spread: MAD / 0.6745, or 1.2533 · meanAD where the MAD is 0, never below 5% of the median
        # (a unit 2% off units that all agree is not far out). Where most units report 0 (median and MAD
        # 0) there is no spread to speak of: rare events are left to year over year and the bounds.
        spread = np.where(mad > 0, mad / _MAD_TO_SIGMA, _MEAN_AD_TO_SIGMA * mean_ad)
        spread = np.fmax(spread, _RELATIVE_FLOOR * np.abs(median))
        scored = (spread > 0) & ~((mad == 0) & (median == 0))
        limit = np.where(scored, settings.threshold * spread, np.inf)
        hits = deviation > limit[:, None]  # NaN never passes
    flags = []
    cells = [split_key(key) for key in frame.keys]
    for r, i in zip(*np.nonzero(hits)):
        j = rows[r]
        indicator, period, breakdown = cells[j]
        flags.append(Flag(frame.units[i], frame.form_code, indicator, period, breakdown, float(frame.values[i, j]),
                          ROBUST, float(median[r]), float(signed[r, i] / spread[r]),
                          float(sub[r, i]) if rated[j] else None, labels[j]))
    return flags


def year_over_year_flags(form: Form, frame: FormValues, previous: FormValues | None) -> list[Flag]:
    """Return the cells whose figure moved by the form's ratio or more since the unit's previous plan."""
    if previous is None or frame.values.size == 0:
        return []
    settings = form.outliers
    factor = settings.year_over_year
    now = frame.values
    before = previous.aligned(frame.units, frame.keys)
    with np.errstate(invalid="ignore"):
        # Comparisons with NaN are False: a cell missing in either year is never flagged.
        big = np.fmax(np.abs(now), np.abs(before)) >= max(settings.year_over_year_min, 1e-12)
        moved = np.where(before > 0, (now >= factor * before) | (now * factor <= before),
                         (before == 0) & (now != 0))
        hits = big & moved & (before == before) & (now == now)
    flags = []
    cells = [split_key(key) for key in frame.keys]
    for i, j in zip(*np.nonzero(hits)):
        indicator, period, breakdown = cells[j]
        old = float(before[i, j])
        flags.append(Flag(frame.units[i], frame.form_code, indicator, period, breakdown, float(now[i, j]),
                          YEAR_OVER_YEAR, old, float(now[i, j]) / old if old else None))
    return flags


def bound_flags(frame: FormValues, bounds: Mapping[str, tuple[float | None, float | None]]) -> list[Flag]:
    """Return the cells outside staff's bounds ({indicator: (min or None, max or None)})."""
    if not bounds or frame.values.size == 0:
        return []
    low = np.full(len(frame.keys), -np.inf)
    high = np.full(len(frame.keys), np.inf)
    for j, key in enumerate(frame.keys):
        bound = bounds.get(split_key(key)[0])
        if bound is not None:
            low[j] = -np.inf if bound[0] is None else bound[0]
            high[j] = np.inf if bound[1] is None else bound[1]
    x = frame.values
    with np.errstate(invalid="ignore"):
        below, above = x < low, x > high
    flags = []
    for mask, side, limits in ((below, "min", low), (above, "max", high)):
        for i, j in zip(*np.nonzero(mask)):
            indicator, period, breakdown = split_key(frame.keys[j])
            flags.append(Flag(frame.units[i], frame.form_code, indicator, period, breakdown, float(x[i, j]),
                              BOUNDS, float(limits[j]), bound=side))
    return flags


def find_flags(forms: Mapping[str, Form], current: Sequence[FormValues],
               previous: Mapping[str, FormValues] | None = None,
               bounds: Mapping[str, Mapping[str, tuple[float | None, float | None]]] | None = None,
               verified: Collection[VerifiedKey] = ()) -> list[Flag]:
    """Return every flag of a plan, ordered by unit, then as the cells appear on the form.

    ``current``: one ``FormValues`` per form of the plan's counted versions; ``previous``: the source
    plan's counted values by form code, matched here by cell key whatever the form (the indicator must
    exist in both); ``bounds``: {form code: {indicator: (min, max)}}; ``verified``: the keys of flags
    staff marked "đã xác minh" (same unit, cell, reason and value), which come back with ``verified``.
    Frames of forms missing from ``forms`` are skipped.
    """
    previous = previous or {}
    everything_before = _merge(list(previous.values())) if previous else None
    verified_keys = set(verified)
    flags: list[Flag] = []
    for frame in current:
        form = forms.get(frame.form_code)
        if form is None:
            continue
        order = {split_key(key): j for j, key in enumerate(frame.keys)}
        found = (robust_flags(form, frame) + year_over_year_flags(form, frame, everything_before)
                 + bound_flags(frame, (bounds or {}).get(frame.form_code, {})))
        found = [flag._replace(verified=True) if flag.key in verified_keys else flag for flag in found]
        found.sort(key=lambda f: (f.unit, order.get((f.indicator, f.period, f.breakdown), 10**9), f.reason))
        flags.extend(found)
    flags.sort(key=lambda f: f.unit)  # stable: keeps the form order within a unit
    return flags


def _merge(frames: list[FormValues]) -> FormValues | None:
    """Return one frame over the union of the units and cells of ``frames`` (the first frame wins a clash)."""
    if not frames:
        return None
    if len(frames) == 1:
        return frames[0]
    units = tuple(dict.fromkeys(u for f in frames for u in f.units))
    keys = tuple(dict.fromkeys(k for f in frames for k in f.keys))
    merged = np.full((len(units), len(keys)), np.nan)
    for frame in reversed(frames):
        part = frame.aligned(units, keys)
        merged = np.where(np.isnan(part), merged, part)
    return FormValues("*", units, keys, merged)
