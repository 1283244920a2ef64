"""The form definitions load, describe the Excel layout, and refuse broken edits with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from forms_fixtures import FORMS_DIR
from tracker.catalog import DECREE09_KEYS, FIRST_DATA_ROW, GUIDE_SHEET_NAME, layout_key, column_letter
from tracker.expressions import Call, Cell, Check, Ref, RowRange, parse_check
from tracker.catalog_loader import FormDefinitionError, load_form
from tracker.catalog_folder import LAYOUT_LOCK_NAME, check_forms, read_layout_lock, load_forms


@pytest.fixture(scope="module")
def forms():
    return load_forms(FORMS_DIR)


def test_shipped_forms_load_and_pass_check_forms(forms) -> None:
    assert set(forms) == {"PL02", "PL03"}
    assert check_forms(FORMS_DIR) == []


def test_sheet_counts_and_optional_biểu_05(forms) -> None:
    pl02, pl03 = forms["PL02"], forms["PL03"]
    assert [s.code for s in pl02.sheets] == ["B01", "B02", "B03", "B04", "B05", "B07"]
    assert [s.code for s in pl03.sheets] == ["B01", "B02", "B03", "B04", "B05", "B06", "B07"]
    assert pl02.sheet("B05").optional and not pl03.sheet("B05").optional
    assert not any(s.optional for s in pl03.sheets)
    # Biểu 04 is in full for Lục Nam and short for the other districts.
    assert len(pl02.sheet("B04").data_rows) > len(pl03.sheet("B04").data_rows)
    assert {r.code for r in pl03.sheet("B04").data_rows} < {r.code for r in pl02.sheet("B04").data_rows}


def test_biểu_02_lists_the_14_groups_of_article_10(forms) -> None:
    for form in forms.values():
        groups = [r for r in form.sheet("B02").data_rows if r.code.startswith("g_")]
        assert [r.stt for r in groups] == list("abcd") + ["đ"] + list("eghiklmno")
        assert all(r.label.startswith("Trẻ em") for r in groups)


def test_every_label_is_vietnamese_and_every_row_has_a_unit(forms) -> None:
    for form in forms.values():
        for key in DECREE09_KEYS:
            assert getattr(form.decree09, key).strip()
        for sheet in form.sheets:
            assert sheet.title.startswith(sheet.name + ".")
            for row in sheet.data_rows:
                assert row.label and row.unit and row.kind in ("stock", "flow")
                assert row.indicator == f"{sheet.code}.{row.code}"
                assert form.indicator(row.indicator) is row


def test_excel_sheet_names_are_valid_and_unique(forms) -> None:
    for form in forms.values():
        names = form.excel_sheet_names()
        assert names[0] == GUIDE_SHEET_NAME
        assert len(set(names)) == len(names)
        for name in names:
            assert len(name) <= 31 and not set(name) & set("[]:*?/\\")
        assert set(form.extents()) == set(names)


def test_layout_of_biểu_01(forms) -> None:
    sheet = forms["PL03"].sheet("B01")
    assert sheet.first_data_row == FIRST_DATA_ROW == 6
    assert [c.key for c in sheet.columns] == [
        "base_total", "base_male", "base_female", "current_total", "current_male", "current_female"
    ]
    assert sheet.cell("communes", "base_total") == "D6"
    assert sheet.cell("communes", "current_total") == "G6"
    # Row 9 is the "Chia theo nhóm tuổi" group line, so children_0_6 sits on row 10.
    assert sheet.cell("children", "base_male") == "E8"
    assert sheet.rows[3].is_group and sheet.rows[3].excel_row == 9
    assert sheet.cell("children_0_6", "current_female") == "I10"
    assert sheet.note_col == 10 and sheet.max_col == 10
    assert sheet.max_row > sheet.last_data_row == 6 + len(sheet.rows) - 1
    with pytest.raises(KeyError):
        sheet.cell("communes", "base_male")  # communes are not split by sex
    with pytest.raises(KeyError):
        sheet.cell("nope", "base_total")


def test_input_cells_exclude_computed_cells(forms) -> None:
    pl03 = forms["PL03"]
    b06 = pl03.sheet("B06")
    inputs = {(r.code, c.key) for r, c, _ in b06.input_cells()}
    computed = {(r.code, c.key) for r, c, _ in b06.computed_cells()}
    assert ("party_committee", "base_female") in inputs
    assert ("party_committee", "base_female_pct") in computed
    assert ("srb", "current_total") in computed and ("srb", "current_total") not in inputs
    assert ("dv_cases", "base_female_pct") not in computed  # a total-only row has no % nữ
    for row, column, address in b06.input_cells():
        assert address == f"{column.letter}{row.excel_row}"
    keys = {c.key for c in pl03.computed}
    assert ("B06", "srb", "base_total") in keys and ("B02", "special_supported_pct", "base_male") in keys
    assert not keys & set(pl03.input_keys())


def test_narrative_cells_and_sections(forms) -> None:
    pl02, pl03 = forms["PL02"], forms["PL03"]
    assert pl03.narrative.cell("I") == "C4"
    with pytest.raises(KeyError):
        pl03.narrative.cell("II")  # a heading without an answer cell
    codes03 = [s.code for s in pl03.narrative.sections]
    assert {"II.B", "II.B.1", "II.A.7", "III.1", "III.2", "III.3", "IV", "V"} <= set(codes03)
    assert not any(code.startswith("II.B") for code in (s.code for s in pl02.narrative.sections))
    assert all(s.required for s in pl03.narrative.sections if s.answer)


def test_max_extent_covers_every_sheet(forms) -> None:
    for form in forms.values():
        rows, cols = form.max_extent()
        for sheet in form.sheets:
            assert sheet.max_row <= rows and sheet.max_col <= cols


def test_column_letter() -> None:
    assert [column_letter(i) for i in (1, 4, 26, 27, 52, 16384)] == ["A", "D", "Z", "AA", "AZ", "XFD"]


def test_parse_check_builds_the_tree() -> None:
    check = parse_check("max(B02.g_a..B02.g_o) <= B02.special_total[total]")
    assert check == Check(
        "<=",
        Call("max", (RowRange(Ref("B02", "g_a", None), Ref("B02", "g_o", None)),)),
        Ref("B02", "special_total", "total"),
        None,
    )
    assert parse_check("B01: [total] = [male] + [female]").scope == "B01"


def test_range_rule_expands_to_every_row_between(forms) -> None:
    rule = next(r for r in forms["PL03"].rules if r.id == "B02.max_group")
    first = rule.instances[0]
    assert isinstance(first.left, Call)
    assert [a.key[1] for a in first.left.args if isinstance(a, Cell)][:3] == ["g_a", "g_b", "g_c"]
    assert len(first.left.args) == 14
    assert len(rule.instances) == 6  # three breakdowns × two periods


# --- broken copies ------------------------------------------------------------------------------


def _copy(tmp_path: Path, code: str = "PL03") -> Path:
    target = tmp_path / f"{code}.toml"
    shutil.copy(FORMS_DIR / f"{code}.toml", target)
    shutil.copy(FORMS_DIR / LAYOUT_LOCK_NAME, tmp_path / LAYOUT_LOCK_NAME)
    return target


def _edit(path: Path, old: str, new: str, count: int = 1) -> str:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    text = text.replace(old, new, count)
    path.write_text(text, encoding="utf-8")
    return text


def _line(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1


def _raises_at(path: Path, line: int) -> FormDefinitionError:
    with pytest.raises(FormDefinitionError) as info:
        load_forms(path.parent)
    error = info.value
    assert error.path == path and error.line == line
    assert str(error).startswith(f"{path}:{line}: ")
    assert check_forms(path.parent) == [str(error)]
    return error


def test_rule_naming_an_unknown_row(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, 'check = "B01.minority <= B01.children"', 'check = "B01.minority <= B01.kids"')
    error = _raises_at(path, _line(text, "B01.minority <= B01.kids"))
    assert "B01.kids" in error.detail


def test_rule_naming_an_unknown_sheet_or_column(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, 'check = "B01.minority <= B01.children"', 'check = "B01.minority <= B09.children"')
    assert "B09" in _raises_at(path, _line(text, "B09.children")).detail
    path = _copy(tmp_path)
    text = _edit(path, 'check = "B01.minority <= B01.children"',
                 'check = "B01.minority <= B01.children[unknown]"')
    assert "unknown" in _raises_at(path, _line(text, "children[unknown]")).detail


def test_duplicate_row_code(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, '{ code = "children_6_11",', '{ code = "children_0_6",')
    error = _raises_at(path, _line(text, '"children_0_6"', nth=2))
    assert "trùng mã chỉ tiêu" in error.detail


def test_bad_expression_syntax(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, 'check = "B01.minority <= B01.children"', 'check = "B01.minority <= B01.children +"')
    assert "sai cú pháp" in _raises_at(path, _line(text, "B01.children +")).detail


def test_unknown_column_set(tmp_path: Path) -> None:
    path = _copy(tmp_path, "PL02")
    text = _edit(path, 'column_set = "amount"', 'column_set = "women"')
    assert "women" in _raises_at(path, _line(text, 'column_set = "women"')).detail


def test_python_in_a_rule_is_refused_not_run(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, 'check = "B01.minority <= B01.children"', """check = "__import__('os').system('x') = 1\"""")
    _raises_at(path, _line(text, "__import__"))


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = _edit(path, 'id = "B01.minority"', 'id = "B01.minority')
    _raises_at(path, _line(text, 'id = "B01.minority'))


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        ('label = "Số thôn, tổ dân phố"', 'lable = "Số thôn, tổ dân phố"', "lable", "lable"),
        ('id = "B01.age_6_16"', 'id = "B01.minority"', 'id = "B01.minority"', "trùng mã quy tắc"),
        ('check = "B01.minority <= B01.children"', 'check = "[male] <= B01.children"', "[male] <=", "BIỂU:"),
        ('sum(B03.age_0_6..B03.age_11_16)', 'sum(B03.age_11_16..B03.age_0_6)', "age_11_16..", "đứng trước"),
        ('check = "B01.minority <= B01.children"', 'check = "B01.minority <= B01.children_0_6..B01.children"',
         "<= B01.children_0_6..", "sai cú pháp"),
        ('kind = "stock", breakdowns = ["total"], levels = [2] },\n  { code = "villages"',
         'kind = "stok", breakdowns = ["total"], levels = [2] },\n  { code = "villages"', 'kind = "stok"', "stock"),
        ('severity = "warning"\ncheck = "B03.cases', 'severity = "info"\ncheck = "B03.cases',
         '"B03.cases_victims"', "severity"),
        ('check = "B04.child_friendly_communes <= B01.communes"',
         'check = "B04.child_friendly_communes[male] <= B01.communes"', "child_friendly_communes[male]", "male"),
    ],
)
def test_other_definition_mistakes(tmp_path: Path, old: str, new: str, needle: str, words: str) -> None:
    path = _copy(tmp_path)
    text = _edit(path, old, new)
    needle_line = _line(text, needle, nth=2 if needle == 'id = "B01.minority"' else 1)
    assert words in _raises_at(path, needle_line).detail


def test_two_files_with_the_same_code(tmp_path: Path) -> None:
    _copy(tmp_path, "PL02")
    other = tmp_path / "PL99.toml"
    shutil.copy(FORMS_DIR / "PL02.toml", other)
    with pytest.raises(FormDefinitionError) as info:
        load_forms(tmp_path)
    assert info.value.path == other and "PL02" in info.value.detail
    assert len(check_forms(tmp_path)) == 1


def test_plans_in_subfolders_are_not_forms(tmp_path: Path) -> None:
    _copy(tmp_path, "PL02")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.toml").write_text("not = [valid", encoding="utf-8")
    assert list(load_forms(tmp_path)) == ["PL02"]


def test_adding_a_row_shows_up_and_shifts_the_rows_below(tmp_path: Path) -> None:
    original = load_form(FORMS_DIR / "PL03.toml")
    path = _copy(tmp_path)
    _edit(
        path,
        '  { code = "children_6_11",',
        '  { code = "children_3_6", stt = "3.1a", label = "Trẻ em từ 3 đến dưới 6 tuổi (thí điểm)", '
        'unit = "Người", kind = "stock" },\n  { code = "children_6_11",',
    )
    form = load_form(path)
    b01, old = form.sheet("B01"), original.sheet("B01")
    new_row = b01.row("children_3_6")
    assert new_row.excel_row == old.row("children_6_11").excel_row
    assert b01.row("children_6_11").excel_row == old.row("children_6_11").excel_row + 1
    assert b01.cell("births", "base_total") == "D" + str(old.row("births").excel_row + 1)
    assert b01.cell("children_3_6", "current_male") == f"H{new_row.excel_row}"
    assert len(form.input_keys()) == len(original.input_keys()) + 6
    # The new row falls inside the range of the age-group rule, so the rule now sums it too.
    rule = next(r for r in form.rules if r.id == "B01.age_groups")
    assert ("B01", "children_3_6", "base_total") in rule.instances[0].cells
    assert b01.max_row == old.max_row + 1



@pytest.mark.parametrize(("old", "new"), [
    # A label reworded, a row inserted, a breakdown header renamed: each a different layout.
    ('label = "Số trẻ em sinh ra sống trong kỳ"', 'label = "Số trẻ em sinh ra trong kỳ"'),
    ('  { code = "children_6_11",', '  { code = "children_3_6", stt = "3.1a", label = "Trẻ em từ 3 đến dưới 6 tuổi", '
     'unit = "Người", kind = "stock" },\n  { code = "children_6_11",'),
])
def test_a_layout_change_without_a_version_bump_fails_check_forms(app, runner, tmp_path, old, new) -> None:
    forms = tmp_path / "forms"
    shutil.copytree(FORMS_DIR, forms, ignore=shutil.ignore_patterns("plans", "units"))
    app.config["REPORT_FORMS_DIR"] = str(forms)
    assert runner.invoke(args=["check-forms"]).exit_code == 0
    path = forms / "PL03.toml"
    _edit(path, old, new)
    result = runner.invoke(args=["check-forms"])
    assert result.exit_code == 1
    assert "bố cục của PL03 đã thay đổi" in result.output and "không tăng «version»" in result.output
    assert f"{path}:" in result.output
    # --record never rewrites a recorded line: the same layout change still fails.
    assert runner.invoke(args=["check-forms", "--record"]).exit_code == 1
    # With the version bumped the new layout is recorded beside the old one, and the check passes.
    _edit(path, "version = 1", "version = 2")
    recorded = runner.invoke(args=["check-forms", "--record"])
    assert recorded.exit_code == 0, recorded.output
    assert "Đã ghi PL03 phiên bản 2" in recorded.output
    lock = read_layout_lock(forms)
    assert lock["PL03"][1] == load_form(FORMS_DIR / "PL03.toml").layout_fingerprint
    assert lock["PL03"][2] == load_form(path).layout_fingerprint != lock["PL03"][1]


def test_shipped_layouts_are_recorded_and_fold_case_space_and_tone_placement(forms) -> None:
    lock = read_layout_lock(FORMS_DIR)
    for code, form in forms.items():
        assert lock[code][form.version] == form.layout_fingerprint
    assert layout_key("  Huyện Hiệp  Hoà ") == layout_key("HUYỆN HIỆP HÒA") == layout_key("huyện hiệp hòa")
    assert layout_key("Thuỷ lợi") == layout_key("thủy lợi") and layout_key("Hoà") != layout_key("Hóa")
    assert layout_key(3.0) == "3" and layout_key(None) == layout_key(float("nan")) == ""


def test_check_forms_command(runner) -> None:
    result = runner.invoke(args=["check-forms"])
    assert result.exit_code == 0, result.output
    assert "PL02 phiên bản 1" in result.output and "PL03 phiên bản 1" in result.output


def test_check_forms_command_names_file_and_line(app, runner, tmp_path) -> None:
    import shutil

    broken = tmp_path / "forms"
    shutil.copytree(FORMS_DIR, broken)
    text = (broken / "PL03.toml").read_text(encoding="utf-8")
    (broken / "PL03.toml").write_text(text.replace("B01.children_0_6", "B01.no_such_row", 1), encoding="utf-8")
    app.config["REPORT_FORMS_DIR"] = str(broken)
    result = runner.invoke(args=["check-forms"])
    assert result.exit_code == 1
    assert "PL03.toml:" in result.output


def test_indicators_added_up_across_forms_must_share_their_unit(tmp_path: Path) -> None:
    pl03 = _copy(tmp_path, "PL03")
    _copy(tmp_path, "PL02")
    text = _edit(pl03, '{ code = "children", stt = "3", label = "Tổng số trẻ em (dưới 16 tuổi)", unit = "Người"',
                 '{ code = "children", stt = "3", label = "Tổng số trẻ em (dưới 16 tuổi)", unit = "Nghìn người"')
    error = _raises_at(pl03, _line(text, '{ code = "children", stt'))
    assert "«B01.children» có ĐVT «Nghìn người», khác «Người» ở PL02" in str(error)
    # Its own key keeps it apart: then nothing is added up, and the forms load.
    _edit(pl03, '{ code = "children", stt = "3",', '{ code = "children", key = "B01.children_thousands", stt = "3",')
    assert check_forms(tmp_path) == [] and "PL03" in load_forms(tmp_path)
