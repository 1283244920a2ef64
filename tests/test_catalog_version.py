"""One catalog for the web process and the parse worker: loaded the same way, carrying its version.

A form definition edited on a live server must not issue blanks at one version and parse returns at
another: the worker reads every return with the catalog of the web process that received it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from forms_fixtures import FORMS_DIR, consistent_values
from returns_fixtures import PLAN_CODE, filled_return, make_context

from tracker import isolation
from tracker.catalog_folder import CatalogMismatch, catalog_at, load_forms, run_with_catalog
from tracker.identity import Expected
from tracker.parsing import ParseResult, parse_return

SECRET = "kiem-tra-2024"
OLD_LABEL = 'label = "Tổng số trẻ em (dưới 16 tuổi)"'
NEW_LABEL = 'label = "Tổng số trẻ em dưới 16 tuổi trên địa bàn"'


@pytest.fixture()
def forms_dir(tmp_path: Path) -> Path:
    """A copy of the shipped definitions that a test may edit."""
    directory = tmp_path / "report_forms"
    directory.mkdir()
    for path in FORMS_DIR.glob("*.toml"):
        shutil.copy(path, directory / path.name)
    return directory


def _edit_label(directory: Path) -> None:
    """Rename a data row of PL03 on disk, as someone editing the definition on the server would."""
    path = directory / "PL03.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count(OLD_LABEL) == 1
    path.write_text(text.replace(OLD_LABEL, NEW_LABEL), encoding="utf-8")


def test_the_version_is_the_definition_files(forms_dir: Path) -> None:
    first, again = load_forms(forms_dir), load_forms(forms_dir)
    assert first.version == again.version == load_forms(FORMS_DIR).version
    assert len(first.version) == 16
    _edit_label(forms_dir)
    edited = load_forms(forms_dir)
    assert edited.version != first.version
    assert edited["PL03"].layout_fingerprint != first["PL03"].layout_fingerprint


def test_the_worker_side_refuses_a_folder_at_another_version(forms_dir: Path) -> None:
    web = load_forms(forms_dir)
    _edit_label(forms_dir)
    # A version it has never seen, and the folder holds another one: never silently the folder's forms.
    with pytest.raises(CatalogMismatch) as raised:
        catalog_at(type(web.ref)(web.ref.directory, "0" * 16))
    assert raised.value.found == load_forms(forms_dir).version
    # Sent whole, the catalog is kept: the next call by reference needs nothing from the disk.
    assert catalog_at(web) is web
    assert catalog_at(web.ref) is web


def test_a_return_is_parsed_with_the_catalog_its_blank_came_from(forms_dir: Path) -> None:
    web = load_forms(forms_dir)  # what the web process loaded at start-up and issues blanks from
    form = web["PL03"]
    data = filled_return(form, consistent_values(form), ctx=make_context(), secret=SECRET)
    expected = {"plan_code": PLAN_CODE, "unit_code": "219", "unit_name": "Huyện Lục Ngạn"}
    # The definition is edited on disk while the web process runs: the worker must not read it.
    _edit_label(forms_dir)
    assert load_forms(forms_dir).version != web.version
    isolation.shutdown()  # a fresh worker, which has kept no catalog from earlier tests
    parsed = run_with_catalog("tracker.parsing:parse_upload", web, data, "PL03", SECRET, expected, (), None,
                              timeout=60, memory_limit=isolation.DEFAULT_MEMORY_LIMIT)
    assert isinstance(parsed, ParseResult)
    assert parsed.identity.layout == form.layout_fingerprint
    # Exactly what this process would read with its own form: the same values and the same issues.
    here = parse_return(data, form, SECRET, Expected(form.code, form.version, form.layout_fingerprint,
                                                     form_names={c: f.name for c, f in web.items()}, **expected))
    assert parsed == here
    assert len(parsed.values) > 100 and not [i for i in parsed.issues if i.sheet == "Biểu 01"]
