"""`seed --demo` tells the story: every status on the 2024 dashboard, a filled mail log, a chart with a curve,
all marked as demo data; a second run adds nothing; plain `seed` adds no returns."""
from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import OutboundMessage, Plan, ReturnVersion, Review, Unit, User, VersionComment

PLAN = "bacgiang-2024"


def test_plain_seed_adds_no_returns(app, runner):
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 0


def test_seed_demo_tells_the_story_once(app, runner, client, login_as, token_for):
    result = runner.invoke(args=["seed", "--demo"])
    assert result.exit_code == 0, result.output
    assert "Dữ liệu mẫu: 7 phiên bản báo cáo, 3 ý kiến của Sở" in result.output
    token = token_for("staff")
    status = client.get(f"/api/v1/plans/{PLAN}/status", headers={"Authorization": f"Bearer {token}"}).get_json()
    statuses = Counter(u["status"] for u in status["units"])
    assert statuses == {"on_time": 3, "late": 1, "incomplete": 2, "overdue": 3, "exempt": 1}
    returned = [u for u in status["units"] if u["review"] and u["review"]["state"] == "returned"]
    assert [u["code"] for u in returned] == ["217"]
    assert all(u["last_reminded_at"] for u in status["units"] if u["status"] == "overdue")

    with app.app_context():
        versions = db.session.scalars(select(ReturnVersion)).all()
        assert len(versions) == 7 and all(v.note.startswith("Dữ liệu mẫu") for v in versions)
        assert all(v.filename.startswith("du-lieu-mau_") for v in versions)
        assert min(v.received_at for v in versions).year == 2024
        kinds = Counter(m.kind for m in db.session.scalars(select(OutboundMessage)))
        assert kinds["receipt"] == 7 and kinds["returned"] == 1 and kinds["manual_reminder"] == 2
        assert kinds["overdue"] >= 6 and kinds["deadline_approaching"] >= 7 and kinds["comment"] == 1
        assert all(m.eml_path for m in db.session.scalars(select(OutboundMessage).where(
            OutboundMessage.status == "sent")))
        assert db.session.scalar(select(func.count()).select_from(Review)) == 3
        assert db.session.scalar(select(func.count()).select_from(VersionComment)) == 1

    series = client.get(f"/api/v1/plans/{PLAN}/timeliness", headers={"Authorization": f"Bearer {token}"}).get_json()
    received = [d["received"] for d in series["days"]]
    assert received[0] == 0 and received[-1] == 6 and len(set(received)) >= 5  # a curve, not a step
    assert sum(1 for d in series["days"] if d["reminders_sent"]) >= 5

    login_as("staff")
    html = client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)
    assert 'data-testid="demo-banner"' in html and "Nguyễn Thu Hà (mẫu)" not in html  # 213 is not chased
    assert "Phạm Quốc Hùng (mẫu)" in html and "0204 3881 217" in html
    log = client.get("/mail-log").get_data(as_text=True)
    assert "Đã ghi vào hộp thư đi" in log

    again = runner.invoke(args=["seed", "--demo"])
    assert again.exit_code == 0 and "không được tạo thêm" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 7


def test_the_story_reminds_the_plans_own_unit_when_its_code_names_another_one_too(app, runner, token_for):
    # Sơn Động's record was corrected from 02/05/2024: the plan (named on the map of 10/05/2024) has the new
    # version of code 220, and the first row bearing that code is the version that ended.
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        assignment = next(a for a in plan.assignments if a.unit.code == "220")
        old = assignment.unit
        new = Unit(code="220", name=old.name, kind=old.kind, level=old.level, parent_id=old.parent_id,
                   valid_from=date(2024, 5, 2), valid_to=old.valid_to)
        old.valid_to = date(2024, 5, 2)
        db.session.add(new)
        db.session.flush()
        assert db.session.scalar(select(Unit).where(Unit.code == "220")) is old  # what a dateless lookup finds
        assignment.unit_id = new.id
        for contact in list(old.contacts):
            contact.unit_id = new.id
        for user in db.session.scalars(select(User).where(User.unit_id == old.id)):
            user.unit_id = new.id
        db.session.commit()
    result = runner.invoke(args=["seed", "--demo"])
    assert result.exit_code == 0, result.output
    status = app.test_client().get(f"/api/v1/plans/{PLAN}/status",
                                   headers={"Authorization": f"Bearer {token_for('staff')}"}).get_json()
    son_dong = next(u for u in status["units"] if u["code"] == "220")
    assert son_dong["status"] == "overdue" and son_dong["last_reminded_at"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                 .where(OutboundMessage.kind == "manual_reminder")) == 2
