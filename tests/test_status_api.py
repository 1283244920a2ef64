"""GET /api/v1/plans/<plan>/status: who sees what, at which instant, in which shape."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from versions import add_version

from tracker.extensions import db
from tracker.models import Review

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"
URL = f"/api/v1/plans/{PLAN}/status"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def returns(app):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True, warnings=2)
    add_version(app, "218", 1, DEADLINE + timedelta(days=2), False, errors=4)


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_department_token_sees_every_unit(client, token_for, returns, role):
    response = client.get(URL + "?as_of=2024-05-12T00:00:00%2B07:00", headers=bearer(token_for(role)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["plan"] == PLAN and body["as_of"] == "2024-05-12T00:00:00+07:00"
    units = {u["code"]: u for u in body["units"]}
    assert len(units) == 10
    assert units["219"] == {
        "code": "219", "name": "Huyện Lục Ngạn", "form": "PL03", "status": "on_time", "late": False,
        "complete": True, "first_received_at": "2024-05-09T00:00:00+07:00",
        "latest_received_at": "2024-05-09T00:00:00+07:00", "errors": 0, "warnings": 2, "review": None,
        "counted_version": 1, "last_reminded_at": None,
        "cover": {"report_number": None, "report_date": None, "signer_title": None, "signer_name": None},
        "signed_report": None}
    assert units["218"]["status"] == "incomplete" and units["218"]["late"] is True
    assert units["218"]["errors"] == 4 and units["218"]["form"] == "PL02"
    assert units["223"]["status"] == "exempt" and units["223"]["form"] is None
    assert units["217"]["status"] == "overdue" and units["217"]["first_received_at"] is None


def test_unit_token_sees_its_own_unit_only(client, token_for, returns):
    body = client.get(URL, headers=bearer(token_for("unit", "219"))).get_json()
    assert [u["code"] for u in body["units"]] == ["219"]
    other = client.get(URL, headers=bearer(token_for("unit", "218"))).get_json()
    assert [u["code"] for u in other["units"]] == ["218"]


def test_unit_session_sees_its_own_unit_only(client, login_as, returns):
    login_as("unit", "213")
    body = client.get(URL).get_json()
    assert [u["code"] for u in body["units"]] == ["213"]


def test_anonymous_gets_401_json(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("bad", ["yesterday", "2024-05-10T00:00", "2024-02-30T00:00:00+07:00"])
def test_bad_as_of_is_400_json(client, token_for, bad):
    response = client.get(URL, query_string={"as_of": bad}, headers=bearer(token_for("staff")))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_as_of" and "không hợp lệ" in error["message"]


def test_unknown_plan_is_404_json(client, token_for):
    response = client.get("/api/v1/plans/khong-co/status", headers=bearer(token_for("staff")))
    assert response.status_code == 404 and "error" in response.get_json()


def test_as_of_before_first_upload_and_at_deadline(client, token_for, returns):
    headers = bearer(token_for("staff"))
    early = client.get(URL, query_string={"as_of": "2024-05-01T00:00:00+07:00"}, headers=headers).get_json()
    assert {u["code"]: u["status"] for u in early["units"]}["219"] == "not_due"
    at_deadline = client.get(URL, query_string={"as_of": "2024-05-09T17:00:00Z"}, headers=headers).get_json()
    statuses = {u["code"]: u["status"] for u in at_deadline["units"]}
    assert statuses["219"] == "on_time" and statuses["218"] == "overdue"
    assert at_deadline["as_of"] == "2024-05-10T00:00:00+07:00"


def test_review_appears_with_reason(app, client, token_for):
    version_id = add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    with app.app_context():
        db.session.add(Review(version_id=version_id, state="returned", reason="Biểu 03 thiếu số liệu quý I",
                              created_at=DEADLINE))
        db.session.commit()
    headers = bearer(token_for("unit", "219"))
    unit = client.get(URL, query_string={"as_of": "2024-05-11T00:00:00+07:00"}, headers=headers).get_json()["units"][0]
    assert unit["review"] == {"state": "returned", "reason": "Biểu 03 thiếu số liệu quý I"}
    assert unit["status"] == "incomplete" and unit["complete"] is False
    before = client.get(URL, query_string={"as_of": "2024-05-09T12:00:00+07:00"}, headers=headers).get_json()
    assert before["units"][0]["review"] is None and before["units"][0]["status"] == "on_time"
