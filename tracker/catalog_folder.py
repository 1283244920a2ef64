"""The ``report_forms/`` folder as a whole: every definition loaded into one versioned ``Catalog``, the
checks that span files (duplicate codes, indicators added up across forms) and the layout lock.

The web process and the parse worker both load forms through ``load_forms``, so the catalog they use
carries the same ``version`` when the files are the same, and a worker can tell when they are not; the
worker then takes the web process's catalog (``run_with_catalog``), never the folder's newer files.
"""
from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Form
from .catalog_loader import FormDefinitionError, line_of, load_form, offset_of


@dataclass(frozen=True)
class CatalogRef:
    """What names a catalog across the pipe to the parse worker: its folder and its version."""

    directory: str
    version: str


class Catalog(Mapping[str, Form]):
    """Every form of one ``report_forms/`` folder by code, and the version of the files they came from.

    ``version`` is the first 16 hex digits of the SHA-256 of the definition files' names and bytes. The
    web process and the parse worker compare it, so a return is always read with the very forms its
    blank form was issued from (``run_with_catalog``).
    """

    def __init__(self, forms: Mapping[str, Form], version: str, directory: str) -> None:
        self._forms = dict(forms)
        self.version = version
        self.directory = directory

    def __getitem__(self, code: str) -> Form:
        return self._forms[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._forms)

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"Catalog({sorted(self._forms)}, version={self.version!r})"

    @property
    def ref(self) -> CatalogRef:
        return CatalogRef(self.directory, self.version)


def load_forms(directory: Path) -> Catalog:
    """Return the catalog of every ``*.toml`` directly in ``directory`` (subfolders are plans), versioned
    by the bytes it was built from (each file is read once, so the version cannot describe other bytes).

    Raises FormDefinitionError for the first invalid file or for two files with the same code.
    """
    forms: dict[str, Form] = {}
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FormDefinitionError(path, 1, f"không đọc được tệp: {exc}") from None
        digest.update(f"{path.name}\x1f{len(raw)}\x1f".encode("utf-8") + raw)
        form = load_form(path, raw)
        if form.code in forms:
            line = line_of(raw.decode("utf-8"), (f'"{form.code}"',))
            raise FormDefinitionError(
                path, line, f"mã biểu mẫu «{form.code}» trùng với tệp {forms[form.code].source.name}"
            )
        forms[form.code] = form
    problems = shared_key_problems(list(forms.values()))
    if problems:
        raise problems[0]
    return Catalog(forms, digest.hexdigest()[:16], str(Path(directory).resolve()))


def shared_key_problems(forms: list[Form]) -> list[FormDefinitionError]:
    """Return what keeps the forms' Biểu from being added up across forms in the bảng tổng hợp.

    A Biểu code on several forms must have the same columns (periods and breakdowns); an indicator key
    (``total_key``) on several forms must have the same ĐVT. Each problem names the later form's file and line.
    """
    problems: list[FormDefinitionError] = []
    columns: dict[str, tuple[Form, tuple[str, ...]]] = {}
    units: dict[str, tuple[Form, str]] = {}
    for form in sorted(forms, key=lambda f: f.code):
        text = form.source.read_text(encoding="utf-8") if form.source.exists() else ""
        for sheet in form.sheets:
            keys = tuple(c.key for c in sheet.columns)
            first = columns.setdefault(sheet.code, (form, keys))
            if first[1] != keys:
                problems.append(FormDefinitionError(form.source, line_of(text, (f'"{sheet.code}"',)),
                                                    f"biểu «{sheet.code}» có bộ cột khác với biểu cùng mã của "
                                                    f"{first[0].code}: không tổng hợp chung được"))
            for row in sheet.data_rows:
                seen = units.setdefault(row.total_key, (form, row.unit))
                if seen[1] != row.unit:
                    problems.append(FormDefinitionError(
                        form.source, line_of(text, (f'"{row.code}"',), offset_of(text, f'"{sheet.code}"')),
                        f"chỉ tiêu «{row.total_key}» có ĐVT «{row.unit}», khác «{seen[1]}» ở {seen[0].code}: "
                        "đặt key khác cho chỉ tiêu này (key = \"BIỂU.mã\") để không bị cộng chung"))
    return problems


# Not "*.toml": every such file in the folder is a form definition.
LAYOUT_LOCK_NAME = "layouts.lock"
_LOCK_HEADER = """\
# Layout fingerprints of every form version ever issued: form code -> version -> fingerprint.
# Written by `flask --app tracker check-forms --record`, which only ever adds lines. A blank form
# carries its fingerprint in the hidden identity sheet, so a recorded line must never change:
# a form whose layout changes needs a new `version`. Commit this file with the form definitions.
"""


def read_layout_lock(directory: Path) -> dict[str, dict[int, str]]:
    """Return {form code: {version: fingerprint}} recorded in ``directory``; {} when there is no lock file.

    Raises FormDefinitionError when the file is not valid TOML of that shape.
    """
    path = Path(directory) / LAYOUT_LOCK_NAME
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {code: {int(version): str(fp) for version, fp in versions.items()} for code, versions in data.items()}
    except (tomllib.TOMLDecodeError, AttributeError, ValueError, UnicodeDecodeError) as exc:
        raise FormDefinitionError(path, 1, f"tệp khoá bố cục không hợp lệ: {exc}") from None


def layout_lock_errors(forms: Mapping[str, Form], directory: Path) -> list[str]:
    """Return one error per form whose layout fingerprint is unrecorded or differs from the recorded one."""
    path = Path(directory) / LAYOUT_LOCK_NAME
    try:
        lock = read_layout_lock(directory)
    except FormDefinitionError as exc:
        return [str(exc)]
    errors = []
    for code, form in sorted(forms.items()):
        recorded = lock.get(code, {}).get(form.version)
        if recorded is None:
            errors.append(f"{path}: {code} phiên bản {form.version} chưa được ghi dấu vân tay bố cục "
                          f"({form.layout_fingerprint}); chạy «flask --app tracker check-forms --record» và "
                          "đưa tệp này vào kho mã cùng định nghĩa biểu mẫu.")
        elif recorded != form.layout_fingerprint:
            errors.append(f"{form.source}:{line_of(form.source.read_text(encoding='utf-8'), ('version',))}: "
                          f"bố cục của {code} đã thay đổi (dấu vân tay {form.layout_fingerprint}, đã ghi "
                          f"{recorded} cho phiên bản {form.version}) mà không tăng «version». Biểu mẫu trống "
                          "đã phát hành theo bố cục cũ sẽ bị đọc sai: hãy tăng version rồi chạy "
                          "«check-forms --record».")
    return errors


def record_layouts(forms: Mapping[str, Form], directory: Path) -> list[str]:
    """Add every unrecorded (form, version) fingerprint to the lock file; return what was added.

    Never changes a recorded line (that is what ``layout_lock_errors`` reports).
    """
    lock = read_layout_lock(directory)
    added = []
    for code, form in sorted(forms.items()):
        if form.version not in lock.setdefault(code, {}):
            lock[code][form.version] = form.layout_fingerprint
            added.append(f"{code} phiên bản {form.version}: {form.layout_fingerprint}")
    if added:
        lines = [_LOCK_HEADER]
        for code in sorted(lock):
            lines.append(f"\n[{code}]\n")
            lines.extend(f'{version} = "{fp}"\n' for version, fp in sorted(lock[code].items()))
        (Path(directory) / LAYOUT_LOCK_NAME).write_text("".join(lines), encoding="utf-8")
    return added


def check_forms(directory: Path) -> list[str]:
    """Return every definition error of the forms in ``directory`` ("file:line: message"); [] when fine.

    Besides each file's own errors, a form whose layout fingerprint is not the one recorded for its
    version in ``LAYOUT_LOCK_NAME`` (or not recorded at all) is an error.
    """
    errors: list[str] = []
    codes: dict[str, Path] = {}
    loaded: list[Form] = []
    paths = sorted(Path(directory).glob("*.toml"))
    if not paths:
        return [f"{directory}: không có tệp biểu mẫu *.toml"]
    for path in paths:
        try:
            form = load_form(path)
        except FormDefinitionError as exc:
            errors.append(str(exc))
            continue
        if form.code in codes:
            line = line_of(path.read_text(encoding="utf-8"), (f'"{form.code}"',))
            errors.append(str(FormDefinitionError(
                path, line, f"mã biểu mẫu «{form.code}» trùng với tệp {codes[form.code].name}")))
        codes.setdefault(form.code, path)
        loaded.append(form)
    errors.extend(str(problem) for problem in shared_key_problems(loaded))
    # One form per code for the lock check (a duplicate code is reported above).
    by_code = {f.code: f for f in reversed(loaded)}
    return errors + layout_lock_errors(by_code, directory)


# ---------------------------------------------------------------------------------------------
# The catalog in the parse worker

class CatalogMismatch(Exception):
    """The worker's folder holds other definitions than the catalog it was asked to use."""

    def __init__(self, wanted: str, found: str) -> None:
        super().__init__(wanted, found)
        self.wanted = wanted
        self.found = found


# Catalogs the worker has used, by version, newest last: a handful, since each one is kept whole.
_KEPT: dict[str, Catalog] = {}
_KEEP = 4


def _keep(catalog: Catalog) -> Catalog:
    _KEPT.pop(catalog.version, None)
    _KEPT[catalog.version] = catalog
    while len(_KEPT) > _KEEP:
        del _KEPT[next(iter(_KEPT))]
    return catalog


def catalog_at(wanted: CatalogRef | Catalog) -> Catalog:
    """Return, in the parse worker, the catalog at ``wanted``'s version: one kept from an earlier call, else
    the one loaded from ``wanted.directory``. A whole ``Catalog`` sent over is kept for the next calls.

    Raises CatalogMismatch when the folder no longer holds that version (a definition edited since the
    web process loaded its catalog, or broken on disk): the caller then sends its catalog whole.
    """
    if isinstance(wanted, Catalog):
        return _keep(wanted)
    kept = _KEPT.get(wanted.version)
    if kept is not None:
        return kept
    try:
        loaded = _keep(load_forms(Path(wanted.directory)))
    except FormDefinitionError as exc:
        raise CatalogMismatch(wanted.version, f"không đọc được: {exc}") from None
    if loaded.version != wanted.version:
        raise CatalogMismatch(wanted.version, loaded.version)
    return loaded


def run_with_catalog(func_path: str, catalog: Catalog, *args: Any, timeout: float,
                     memory_limit: int | None) -> Any:
    """Return ``func_path(catalog, *args)`` run in the parse worker (``isolation.run``), the function
    getting ``catalog`` through ``catalog_at``.

    Only the catalog's folder and version cross the pipe, unless the worker finds other definitions
    there: then the catalog goes across whole, so the worker never parses at another version than the
    web process issued blanks at. Raises what ``isolation.run`` raises.
    """
    from . import isolation

    try:
        return isolation.run(func_path, catalog.ref, *args, timeout=timeout, memory_limit=memory_limit)
    except CatalogMismatch:
        return isolation.run(func_path, catalog, *args, timeout=timeout, memory_limit=memory_limit)
