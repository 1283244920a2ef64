"""Staff accept a version or return it for correction: the rules, the routes, the audit, the fragments."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask import render_template
from sqlalchemy import select, text
from versions import add_version

from tracker.compliance import ReviewState
from tracker.extensions import db
from tracker.models import (
    AuditEvent,
    OutboundMessage,
    Plan,
    ReturnVersion,
    Review,
    Unit,
)
from tracker.review import (
    MAX_REASON,
    ReviewRefused,
    VersionUnderReview,
    decide_accept,
    decide_return,
)

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"


def url(unit: str, n: int, action: str) -> str:
    return f"/plans/{PLAN}/units/{unit}/versions/{n}/{action}"


def reviews(app) -> list[tuple[int, str, str]]:
    with app.app_context():
        return [(r.version.version, r.state, r.reason)
                for r in db.session.scalars(select(Review).order_by(Review.id))]


def audit_actions(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        return [(e.action, e.target, e.detail) for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
                if e.action.startswith("review.")]


# ------------------------------------------------------------------------------------------- rules

def target(version=2, complete=True, errors=0, newest=2, review=None) -> VersionUnderReview:
    return VersionUnderReview(version, complete, errors, newest, review)


def test_accept_complete_newest_version():
    decision = decide_accept(target())
    assert decision.state is ReviewState.ACCEPTED and decision.reason == "" and decision.audit_action == "review.accept"


@pytest.mark.parametrize(("case", "status", "needle"), [
    (target(complete=False, errors=3), 422, "còn 3 lỗi"),
    (target(version=1, newest=2), 409, "không còn là phiên bản mới nhất"),
    (target(review=ReviewState.ACCEPTED), 409, "đã được chấp nhận"),
])
def test_accept_refusals(case, status, needle):
    with pytest.raises(ReviewRefused) as refused:
        decide_accept(case)
    assert refused.value.status == status and needle in refused.value.message


def test_return_needs_a_reason_and_trims_it():
    decision = decide_return(target(complete=False, errors=1), "  Biểu 02   thiếu dòng g_a ")
    assert decision.state is ReviewState.RETURNED and decision.reason == "Biểu 02 thiếu dòng g_a"
    for reason in ("", "   \n\t "):
        with pytest.raises(ReviewRefused) as refused:
            decide_return(target(), reason)
        assert refused.value.status == 422 and "lý do" in refused.value.message
    with pytest.raises(ReviewRefused) as refused:
        decide_return(target(), "x" * (MAX_REASON + 1))
    assert refused.value.status == 422
    with pytest.raises(ReviewRefused) as refused:
        decide_return(target(review=ReviewState.RETURNED), "lần nữa")
    assert refused.value.status == 409
    # Staff may change their mind: an accepted version can still be returned, and vice versa.
    assert decide_return(target(review=ReviewState.ACCEPTED), "sai").state is ReviewState.RETURNED
    assert decide_accept(target(review=ReviewState.RETURNED)).state is ReviewState.ACCEPTED


# ------------------------------------------------------------------------------------------- routes

def test_staff_accept_records_review_and_audit(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("staff")
    response = client.post(url("219", 1, "accept"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/plans/{PLAN}/units/219")
    assert reviews(app) == [(1, "accepted", "")]
    assert audit_actions(app) == [("review.accept", f"{PLAN}/219",
                                   {"plan": PLAN, "unit": "219", "version": 1, "reason": ""})]
    dashboard = client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)
    assert "Đã chấp nhận" in dashboard
    assert client.post(url("219", 1, "accept")).status_code == 409


def test_review_state_is_an_enum_stored_as_the_same_string(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("staff")
    assert client.post(url("219", 1, "return"), data={"reason": "Sai biểu 02"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Review.state)) is ReviewState.RETURNED
        # The row holds the value, as before the enum: exports, the API and older rows read the same strings.
        assert db.session.execute(text("SELECT state FROM reviews")).scalars().all() == ["returned"]
    # One wording per state on every page that shows it (it used to be reworded three ways).
    home = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    page = client.get(f"/plans/{PLAN}/units/219/versions/1").get_data(as_text=True)
    assert f"{ReviewState.RETURNED.label}: Sai biểu 02" in home and ReviewState.RETURNED.label in page
    assert "Trả lại để sửa<" not in home
    add_version(app, "219", 2, DEADLINE - timedelta(hours=1), True)
    assert client.post(url("219", 2, "accept")).status_code == 302
    home = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert home.count(ReviewState.ACCEPTED.label) >= 2  # the summary and the version's row
    assert "tiếp nhận</span>" not in home


def test_accept_refuses_incomplete_version(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), False, errors=2)
    login_as("admin")
    response = client.post(url("219", 1, "accept"))
    assert response.status_code == 422
    assert "chưa đầy đủ" in response.get_data(as_text=True)
    assert reviews(app) == [] and audit_actions(app) == []


def test_return_with_reason_shows_and_a_new_upload_clears_it(app, client, login_as, token_for):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("staff")
    empty = client.post(url("219", 1, "return"), data={"reason": "  "})
    assert empty.status_code == 422 and reviews(app) == []
    response = client.post(url("219", 1, "return"), data={"reason": "Biểu 03: số vụ xâm hại chưa khớp"})
    assert response.status_code == 302
    assert reviews(app) == [(1, "returned", "Biểu 03: số vụ xâm hại chưa khớp")]
    assert audit_actions(app)[-1][0] == "review.return"
    assert audit_actions(app)[-1][2]["reason"] == "Biểu 03: số vụ xâm hại chưa khớp"
    with app.app_context():
        queued = db.session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "returned")).all()
        assert [m.unit_key for m in queued] == ["219"]  # the unit is told by email (issue 6)
    html = client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)
    assert "Biểu 03: số vụ xâm hại chưa khớp" in html and "Trả lại để chỉnh sửa" in html
    api = app.test_client().get(f"/api/v1/plans/{PLAN}/status",
                                headers={"Authorization": f"Bearer {token_for('unit', '219')}"})
    unit = api.get_json()["units"][0]
    assert unit["status"] == "incomplete" and unit["review"]["reason"] == "Biểu 03: số vụ xâm hại chưa khớp"
    # The unit uploads a corrected version: the return no longer applies, and v1 can no longer be reviewed.
    add_version(app, "219", 2, datetime.now(timezone.utc) - timedelta(seconds=5), True)
    unit = app.test_client().get(f"/api/v1/plans/{PLAN}/status",
                                 headers={"Authorization": f"Bearer {token_for('unit', '219')}"}).get_json()["units"][0]
    assert unit["review"] is None and unit["status"] == "on_time"
    stale = client.post(url("219", 1, "accept"))
    assert stale.status_code == 409 and "không còn là phiên bản mới nhất" in stale.get_data(as_text=True)


def test_review_routes_refuse_units_and_anonymous(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    assert client.post(url("219", 1, "accept")).status_code == 302  # to the login page
    assert reviews(app) == []
    login_as("unit", "219")
    assert client.post(url("219", 1, "accept")).status_code == 403
    assert client.post(url("219", 1, "return"), data={"reason": "x"}).status_code == 403
    assert reviews(app) == []


def test_review_of_missing_version_is_404(app, client, login_as):
    login_as("staff")
    assert client.post(url("219", 7, "accept")).status_code == 404
    assert client.post(url("999", 1, "accept")).status_code == 404


def test_csrf_is_required_when_enabled(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    app.config["WTF_CSRF_ENABLED"] = True
    login_as("staff")
    assert client.post(url("219", 1, "accept")).status_code == 400
    assert reviews(app) == []


# ------------------------------------------------------------------------------------------- fragments

def test_review_form_and_audit_trail_fragments(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("staff")
    client.post(url("219", 1, "return"), data={"reason": "Thiếu chữ ký <b>lãnh đạo</b>"})
    with app.test_request_context():
        version = db.session.scalar(select(ReturnVersion).where(ReturnVersion.version == 1))
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        unit = db.session.scalar(select(Unit).where(Unit.code == "219"))
        form = render_template("dashboard/_review_form.html", plan=plan, unit=unit, version=version)
        # The unit page includes the fragment inside its loop over versions, named ``v`` there.
        in_loop = render_template("dashboard/_review_form.html", plan=plan, unit=unit, v=version)
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.target == f"{PLAN}/219")).all()
        trail = render_template("dashboard/_audit_trail.html", events=events)
    assert f'action="/plans/{PLAN}/units/219/versions/1/accept"' in form
    assert f'action="/plans/{PLAN}/units/219/versions/1/return"' in form
    assert 'name="csrf_token"' in form and 'name="reason"' in form
    assert "Thiếu chữ ký &lt;b&gt;lãnh đạo&lt;/b&gt;" in form  # shown, escaped
    assert in_loop == form
    assert "Trả lại để chỉnh sửa" in trail and "canbo@demo.bacgiang.vn" in trail and "Phiên bản 1" in trail
