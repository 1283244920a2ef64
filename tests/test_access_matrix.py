"""Who may open what: every registered GET route × every kind of actor, by session and by API token,
with object-level checks that a unit only ever gets its own returns, versions, files and values.

The expectation table is written from the access rules, not read from the code:
- anonymous: pages redirect to /login?next=…, /api/ answers 401 JSON; login pages and static files are open;
- a unit officer: 403 on department and admin pages and on another unit's pages, files and versions;
- staff: everything of the department, 403 on admin pages; admin: everything.
A Bearer token acts exactly like its user's session. Routes whose answer the table cannot decide are
listed in SPECIAL. A route that no rule classifies fails ``test_every_route_is_classified``.

The seeded world (versions of unit 219 and 218, API tokens) is built once per module: GET requests
change nothing but the audit log, and the POST checks below assert that nothing changed.
"""
from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from tracker import create_app
from tracker.extensions import db
from tracker.models import (
    ApiToken,
    Assignment,
    Contact,
    OutboundMessage,
    OutlierBound,
    OutlierVerification,
    Plan,
    ReturnFile,
    ReturnIssue,
    ReturnValue,
    ReturnVersion,
    Review,
    SignedReport,
    Unit,
    User,
)

PLAN = "bacgiang-2024"
OWN, OTHER = "219", "218"
OWN_NAME, OTHER_NAME = "Huyện Lục Ngạn", "Huyện Lục Nam"

ANON, ADMIN, STAFF, UNIT_OWN, UNIT_OTHER = "anonymous", "admin", "staff", "unit-own", "unit-other"
ACTORS = (ANON, ADMIN, STAFF, UNIT_OWN, UNIT_OTHER)
MODES = ("session", "token")

# Access classes: who gets a 200.
PUBLIC, LOGIN, UNIT, UNIT_DEPARTMENT, DEPARTMENT, ADMIN_ONLY, UNIT_SELF = (
    "public", "login", "unit", "unit-department", "department", "admin", "unit-self")
ALLOWED = {
    PUBLIC: set(ACTORS),
    LOGIN: {ADMIN, STAFF, UNIT_OWN, UNIT_OTHER},
    UNIT: {ADMIN, STAFF, UNIT_OWN},
    UNIT_DEPARTMENT: {ADMIN, STAFF},
    DEPARTMENT: {ADMIN, STAFF},
    ADMIN_ONLY: {ADMIN},
    # Only the unit's own officers: staff return a version for correction instead of withdrawing it.
    UNIT_SELF: {UNIT_OWN},
}

# Every endpoint we know by name. Unknown ones fall to the prefix rules of ``classify``.
EXPECTED: dict[str, str] = {
    "static": PUBLIC,
    "api.openapi": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.forgot_password": PUBLIC,
    "auth.reset_password": PUBLIC,
    "main.index": LOGIN,
    "main.plan": LOGIN,
    "api.plans": LOGIN,
    "api.status": LOGIN,
    "unit.home": UNIT,
    "unit.blank_form": UNIT,
    "unit.version": UNIT,
    "unit.original": UNIT,
    "unit.annotated": UNIT,
    "unit.upload": UNIT,
    "api_returns.blank_form": UNIT,
    "api_returns.upload": UNIT,
    "unit.withdraw_form": UNIT_SELF,
    "forms_page.forms": DEPARTMENT,
    "api_returns.withdraw": UNIT_SELF,
    "documents.upload": UNIT,
    "documents.api_upload": UNIT,
    "documents.download": UNIT,
    "unit.values": UNIT_DEPARTMENT,
    "unit.blank_forms_zip": DEPARTMENT,
    "dashboard.dashboard": DEPARTMENT,
    "dashboard.schedule": DEPARTMENT,
    "dashboard.export": DEPARTMENT,
    "notify.mail_log": DEPARTMENT,
    "notify.mail_detail": DEPARTMENT,
    "notify.mail_eml": DEPARTMENT,
    "notify.mail_retry": DEPARTMENT,
    "notify.send_digest": DEPARTMENT,
    "notify.contacts": ADMIN_ONLY,
    "dashboard.accept_version": DEPARTMENT,
    "dashboard.return_version": DEPARTMENT,
    "api.export": DEPARTMENT,
    "intake.intake_list": DEPARTMENT,
    "intake.confirm": DEPARTMENT,
    "intake.reject": DEPARTMENT,
    "api_intake.intake_records": DEPARTMENT,
    "api_chase.remind": DEPARTMENT,
    "api_chase.timeliness": DEPARTMENT,
    "api_chase.queue": DEPARTMENT,
    "review.queue": DEPARTMENT,
    "review.remind_units": DEPARTMENT,
    "review.comment": UNIT,
    "unit.held_upload": UNIT,
    "api_reviewer.changes": UNIT,
    "api_reviewer.outliers": DEPARTMENT,
    "reviewer.outliers": DEPARTMENT,
    "reviewer.verify": DEPARTMENT,
    "reviewer.form_page": DEPARTMENT,
    "api_units.units": LOGIN,
    "api_units.plan": LOGIN,
    "plans.plan_list": LOGIN,
    "plans.draft": DEPARTMENT,
    "plans.confirm": DEPARTMENT,
    "plans.change_state": DEPARTMENT,
}

# (endpoint, actor) cells whose answer the table alone cannot decide: (status, Location or None).
SPECIAL: dict[tuple[str, str], tuple[int, str | None]] = {
    # A unit officer's home is their unit's page in the latest plan.
    ("main.index", UNIT_OWN): (302, f"/plans/{PLAN}/units/{OWN}"),
    ("main.index", UNIT_OTHER): (302, f"/plans/{PLAN}/units/{OTHER}"),
    # Unit 219 has one version: those allowed in learn there is no earlier one to compare it with.
    ("api_reviewer.changes", ADMIN): (404, None),
    ("api_reviewer.changes", STAFF): (404, None),
    ("api_reviewer.changes", UNIT_OWN): (404, None),
    # No upload is held under the world's token: those allowed learn it is gone.
    ("unit.held_upload", ADMIN): (404, None),
    ("unit.held_upload", STAFF): (404, None),
    ("unit.held_upload", UNIT_OWN): (404, None),
}

# Known failures of routes owned by other modules; each must keep failing until fixed (strict xfail).
KNOWN_BROKEN: dict[tuple[str, str], str] = {}


def classify(endpoint: str, rule: str) -> str | None:
    """Return the access class of a route: the table first, then the rules for whole areas of the site."""
    if endpoint in EXPECTED:
        return EXPECTED[endpoint]
    if rule.startswith("/admin/") or endpoint.startswith("admin."):
        return ADMIN_ONLY
    if endpoint.split(".")[0] in ("dashboard", "notify"):
        return DEPARTMENT
    return None


# ------------------------------------------------------------------------------------------- the world

@dataclass
class World:
    app: Any
    tokens: dict[str, str]
    user_ids: dict[str, int]
    session_keys: dict[str, str]
    params: dict[str, Any]
    sha: dict[str, str]
    filenames: dict[str, str]


ACTOR_EMAILS = {ADMIN: "admin@demo.bacgiang.vn", STAFF: "canbo@demo.bacgiang.vn",
                UNIT_OWN: f"donvi{OWN}@demo.bacgiang.vn", UNIT_OTHER: f"donvi{OTHER}@demo.bacgiang.vn"}


def blank_form_bytes(app: Any, unit_code: str, staff_token: str) -> bytes:
    """Return the unit's blank form as staff download it."""
    response = app.test_client().get(f"/plans/{PLAN}/units/{unit_code}/blank-form.xlsx",
                                     headers={"Authorization": f"Bearer {staff_token}"})
    assert response.status_code == 200, response.status_code
    return response.data


def make_version(app: Any, unit_code: str, number: int, content: bytes, *, value: float = 7.0) -> tuple[str, str]:
    """Store version ``number`` of the unit's return directly (file, one error, one value); return (sha, name)."""
    sha = hashlib.sha256(content + f"{unit_code}-{number}".encode()).hexdigest()
    filename = f"bao-cao-{unit_code}-v{number}.xlsx"
    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Plan).join(Unit)
                                       .where(Plan.code == PLAN, Unit.code == unit_code))
        version = ReturnVersion(assignment=assignment, version=number, form_code=assignment.form_code,
                                form_version=1, file_kind="xlsx", filename=filename, size=len(content),
                                sha256=sha, received_at=datetime(2024, 5, 8, 3, number, tzinfo=UTC),
                                complete=False, errors=1, warnings=0)
        version.file = ReturnFile(content=content)
        version.issues.append(ReturnIssue(severity="error", sheet="Bieu01", cell="E7", indicator="",
                                          message=f"Ô E7 phải là số nguyên không âm ({unit_code})"))
        db.session.add(version)
        db.session.flush()
        db.session.add(ReturnValue(version_id=version.id, sheet="Bieu01", indicator="x", period="base",
                                   breakdown="total", value=value, text=None))
        if number == 1:  # and the unit's signed report, for its download route
            pdf = b"%PDF-1.7 matrix " + unit_code.encode()
            db.session.add(SignedReport(assignment_id=assignment.id, version=1, filename="bao-cao-da-ky.pdf",
                                        size=len(pdf), sha256=hashlib.sha256(pdf).hexdigest(), pages=1,
                                        received_at=datetime(2024, 5, 8, 3, 30, tzinfo=UTC), content=pdf))
        db.session.commit()
    return sha, filename


def build_world(app: Any) -> World:
    from tests.conftest import wipe
    from tracker.accounts import hash_password, issue_token, reset_token
    from tracker.seed import seed, seed_demo

    with app.app_context():
        wipe(db)
        report = seed(Path(app.config["REPORT_FORMS_DIR"]))
        seed_demo(report, hash_password)
        db.session.commit()
        users = {actor: db.session.scalar(select(User).where(User.email == email))
                 for actor, email in ACTOR_EMAILS.items()}
        tokens = {actor: issue_token(user) for actor, user in users.items()}
        db.session.commit()
        user_ids = {actor: user.id for actor, user in users.items()}
        session_keys = {actor: user.get_id() for actor, user in users.items()}
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        # A message already written to the outbox, so its .eml download has something to serve.
        outbox = Path(app.config["OUTBOX_DIR"])
        outbox.mkdir(parents=True, exist_ok=True)
        eml = outbox / "matrix.eml"
        eml.write_bytes(b"Subject: =?utf-8?q?X=C3=A1c_nh=E1=BA=ADn?=\r\n\r\nDa nhan bao cao.\r\n")
        message = OutboundMessage(plan_id=plan.id, unit_key=OWN, kind="receipt", step="matrix",
                                  recipients=[f"donvi{OWN}@demo.bacgiang.vn"], cc=[], subject="Xác nhận",
                                  body_text="Đã nhận báo cáo.", status="sent", eml_path=str(eml),
                                  sent_at=datetime(2024, 5, 8, 4, 0, tzinfo=UTC))
        db.session.add(message)
        db.session.commit()
        message_id = message.id
        assignment_id = db.session.scalar(select(Assignment.id).where(Assignment.plan_id == plan.id).limit(1))
        reset = reset_token(users[STAFF], app.config["SECRET_KEY"])
    own_blank = blank_form_bytes(app, OWN, tokens[STAFF])
    other_blank = blank_form_bytes(app, OTHER, tokens[STAFF])
    sha, filenames = {}, {}
    sha[OWN], filenames[OWN] = make_version(app, OWN, 1, own_blank, value=4219)
    sha[OTHER], filenames[OTHER] = make_version(app, OTHER, 1, other_blank, value=4218)
    make_version(app, OTHER, 2, other_blank + b"", value=4218.5)
    params = {"plan_code": PLAN, "unit_code": OWN, "number": 1, "n": 1, "filename": "app.css",
              "token": reset, "message_id": message_id, "user_id": user_ids[UNIT_OTHER],
              "record_id": 1, "form_code": "PL03",
              "assignment_id": assignment_id}
    return World(app=app, tokens=tokens, user_ids=user_ids, session_keys=session_keys, params=params, sha=sha, filenames=filenames)


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    config = {"TESTING": True, "SECRET_KEY": secrets.token_hex(16), "SQLALCHEMY_DATABASE_URI": database_url,
              "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
              "OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")), "MAIL_SERVER": None,
              "PUBLIC_BASE_URL": "https://tracker.example.vn"}
    app = create_app(config)
    built = build_world(app)
    yield built
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def live(world: World) -> World:
    """The module's world, rebuilt if another module's test wiped the shared database in between."""
    from tracker.extensions import limiter

    limiter.enabled = False  # another module may have built a rate-limited app since
    with world.app.app_context():
        intact = db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 3 and \
            db.session.get(User, world.user_ids[STAFF]) is not None
    if not intact:
        fresh = build_world(world.app)
        world.__dict__.update(fresh.__dict__)
    return world


def client_for(world: World, actor: str, mode: str) -> tuple[Any, dict[str, str]]:
    """Return a test client and request headers that make the request as ``actor`` by session or token."""
    client = world.app.test_client()
    if actor == ANON:
        return client, ({"Authorization": "Bearer " + secrets.token_urlsafe(32)} if mode == "token" else {})
    if mode == "token":
        return client, {"Authorization": f"Bearer {world.tokens[actor]}"}
    with client.session_transaction() as session:
        session["_user_id"] = world.session_keys[actor]
        session["_fresh"] = True
    return client, {}


# ------------------------------------------------------------------------------------------- the routes

def _routes(method: str) -> list[tuple[str, str, tuple[str, ...]]]:
    # Collection needs the url_map before any fixture exists: an app over an in-memory database is enough.
    probe = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "RATELIMIT_ENABLED": False})
    return sorted((rule.endpoint, rule.rule, tuple(sorted(rule.arguments)))
                  for rule in probe.url_map.iter_rules() if method in (rule.methods or ()))


GET_ROUTES = _routes("GET")
POST_ROUTES = _routes("POST")


def fill(world: World, rule: str, arguments: tuple[str, ...], unit_code: str | None = None) -> str:
    missing = [name for name in arguments if name not in world.params]
    assert not missing, f"{rule}: add a value for {missing} to World.params"
    path = rule
    for name in arguments:
        value = unit_code if name == "unit_code" and unit_code else world.params[name]
        for converter in ("", "int:", "path:", "string:"):
            path = path.replace(f"<{converter}{name}>", quote(str(value), safe=""))
    assert "<" not in path, path
    return path


def expected_answer(endpoint: str, rule: str, actor: str) -> tuple[int, str | None]:
    """Return (status, Location prefix or None) the table expects for ``actor`` on a GET of this route."""
    if (endpoint, actor) in SPECIAL:
        return SPECIAL[(endpoint, actor)]
    access = classify(endpoint, rule)
    assert access is not None
    if actor in ALLOWED[access]:
        return 200, None
    if actor == ANON:
        return (401, None) if rule.startswith("/api/") else (302, "/login?next=")
    return 403, None


def assert_security_headers(response: Any) -> None:
    assert "default-src 'self'" in response.headers.get("Content-Security-Policy", "")
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def workbook_text(data: bytes) -> str:
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return "\n".join(str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                         for cell in row if isinstance(cell, str))
    finally:
        book.close()


def check_object(world: World, endpoint: str, actor: str, response: Any) -> None:
    """Assert a 200 answer carries the unit-219 object it was asked for, and nothing of unit 218."""
    body = response.data
    if endpoint in ("unit.home", "unit.version", "unit.values"):
        page = response.get_data(as_text=True)
        assert OWN_NAME in page and OTHER_NAME not in page
    if endpoint == "unit.version":
        page = response.get_data(as_text=True)
        assert world.filenames[OWN] in page and world.filenames[OTHER] not in page
    if endpoint == "unit.original":
        assert hashlib.sha256(body + f"{OWN}-1".encode()).hexdigest() == world.sha[OWN]
    if endpoint in ("unit.original", "unit.annotated", "unit.blank_form", "api_returns.blank_form"):
        assert response.headers["Content-Disposition"].startswith("attachment")
        text = workbook_text(body)
        assert OWN_NAME in text and OTHER_NAME not in text
    if endpoint == "api_reviewer.outliers":
        assert response.get_json()["plan"] == PLAN and isinstance(response.get_json()["items"], list)
    if endpoint == "api.status":
        codes = [unit["code"] for unit in response.get_json()["units"]]
        expected = {UNIT_OWN: [OWN], UNIT_OTHER: [OTHER]}.get(actor)
        if expected is not None:
            assert codes == expected
        else:
            assert len(codes) == 10
    if endpoint == "main.plan" and actor in (UNIT_OWN, UNIT_OTHER):
        page = response.get_data(as_text=True)
        mine = OWN if actor == UNIT_OWN else OTHER
        theirs = OTHER if actor == UNIT_OWN else OWN
        assert f"/units/{mine}" in page and f"/units/{theirs}\"" not in page


GET_CASES = [pytest.param(endpoint, rule, args, actor, mode, id=f"{endpoint}-{actor}-{mode}",
                          marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[(endpoint, actor)])]
                          if (endpoint, actor) in KNOWN_BROKEN else [])
             for endpoint, rule, args in GET_ROUTES for actor in ACTORS for mode in MODES]


def test_every_route_is_classified() -> None:
    unclassified = [f"{rule} ({endpoint})" for endpoint, rule, _ in GET_ROUTES + POST_ROUTES
                    if classify(endpoint, rule) is None]
    assert not unclassified, "add these routes to EXPECTED: " + ", ".join(unclassified)


def test_the_matrix_covers_the_known_routes() -> None:
    # A renamed or dropped endpoint must not silently leave the matrix.
    endpoints = {endpoint for endpoint, _, _ in GET_ROUTES + POST_ROUTES}
    assert set(EXPECTED) <= endpoints, set(EXPECTED) - endpoints
    assert {"admin.users", "admin.audit_log", "admin.copy_plan_form"} <= endpoints
    assert len(GET_ROUTES) >= 25 and len(POST_ROUTES) >= 10


@pytest.mark.parametrize(("endpoint", "rule", "args", "actor", "mode"), GET_CASES)
def test_get_matrix(live: World, endpoint: str, rule: str, args: tuple[str, ...], actor: str, mode: str) -> None:
    if classify(endpoint, rule) is None:
        pytest.fail(f"unclassified route {rule}")
    path = fill(live, rule, args)
    client, headers = client_for(live, actor, mode)
    response = client.get(path, headers=headers)
    response.get_data()
    response.close()  # static files hold an open file until then
    status, location = expected_answer(endpoint, rule, actor)
    assert response.status_code == status, (path, actor, mode, response.status_code,
                                            response.get_data(as_text=True)[:300])
    assert_security_headers(response)
    if location is not None:
        assert response.headers["Location"].startswith(location)
        if location.startswith("/login"):
            assert quote(path, safe="/") in response.headers["Location"] or path in response.headers["Location"]
    if status == 401:
        assert response.get_json()["error"]["code"] == "unauthorized"
    if status == 404 and endpoint == "api_reviewer.changes":
        assert response.get_json()["error"]["code"] == "no_previous_version"
    if status == 403 and not rule.startswith("/api/"):
        assert "Bạn không có quyền truy cập trang này" in response.get_data(as_text=True)
    if status == 200:
        check_object(live, endpoint, actor, response)


# ------------------------------------------------------------------------------------------- objects

UNIT_OBJECT_ROUTES = ["", "/blank-form.xlsx", "/versions/1", "/versions/1/original", "/versions/1/annotated.xlsx"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("suffix", UNIT_OBJECT_ROUTES + ["/versions/1/values", "/versions/2",
                                                         "/versions/2/original"])
def test_a_unit_never_reaches_another_units_objects(live: World, suffix: str, mode: str) -> None:
    client, headers = client_for(live, UNIT_OWN, mode)
    assert client.get(f"/plans/{PLAN}/units/{OTHER}{suffix}", headers=headers).status_code == 403


@pytest.mark.parametrize("suffix", ["/versions/2", "/versions/2/original", "/versions/2/annotated.xlsx",
                                    "/versions/99", "/versions/0/original"])
def test_version_numbers_are_looked_up_within_the_unit(live: World, suffix: str) -> None:
    # Unit 218 has a version 2; asking for it under unit 219's address finds nothing.
    for actor in (UNIT_OWN, STAFF):
        client, headers = client_for(live, actor, "session")
        response = client.get(f"/plans/{PLAN}/units/{OWN}{suffix}", headers=headers)
        assert response.status_code == 404, (actor, suffix)
        assert "Không có phiên bản" in response.get_data(as_text=True)


@pytest.mark.parametrize("mode", MODES)
def test_changes_of_another_units_versions_are_refused(live: World, mode: str) -> None:
    # Unit 218 has two versions; its changes are staff's to read and never unit 219's.
    path = f"/api/v1/plans/{PLAN}/units/{OTHER}/versions/2/changes"
    client, headers = client_for(live, UNIT_OWN, mode)
    assert client.get(path, headers=headers).status_code == 403
    client, headers = client_for(live, UNIT_OTHER, mode)
    body = client.get(path, headers=headers).get_json()
    assert [(c["old"], c["new"]) for c in body["changes"]] == [(4218, 4218.5)]
    client, headers = client_for(live, STAFF, mode)
    assert client.get(path, headers=headers).get_json()["since"] == 1


def test_department_gets_each_units_own_bytes(live: World) -> None:
    client, headers = client_for(live, STAFF, "token")
    for unit, name in ((OWN, OWN_NAME), (OTHER, OTHER_NAME)):
        original = client.get(f"/plans/{PLAN}/units/{unit}/versions/1/original", headers=headers)
        assert hashlib.sha256(original.data + f"{unit}-1".encode()).hexdigest() == live.sha[unit]
        assert name in workbook_text(original.data)


def test_values_page_shows_the_versions_own_numbers(live: World) -> None:
    client, headers = client_for(live, STAFF, "session")
    for unit, name in ((OWN, OWN_NAME), (OTHER, OTHER_NAME)):
        page = client.get(f"/plans/{PLAN}/units/{unit}/versions/1/values", headers=headers)
        assert page.status_code == 200 and name in page.get_data(as_text=True)


def test_unknown_objects_are_404_not_500(live: World) -> None:
    client, headers = client_for(live, ADMIN, "session")
    for path in (f"/plans/khong-co/units/{OWN}", f"/plans/{PLAN}/units/999", f"/plans/{PLAN}/units/24",
                 f"/plans/{PLAN}/units/223/blank-form.xlsx", "/plans/khong-co/export.xlsx",
                 "/api/v1/plans/khong-co/status", f"/api/v1/plans/{PLAN}/units/999/template"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path


def test_a_bearer_token_wins_over_the_session_cookie(live: World) -> None:
    client, _ = client_for(live, ADMIN, "session")
    assert client.get("/admin/users").status_code == 200
    as_unit = client.get("/admin/users", headers={"Authorization": f"Bearer {live.tokens[UNIT_OTHER]}"})
    assert as_unit.status_code == 403
    forged = client.get("/admin/users", headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 302 and forged.headers["Location"].startswith("/login")
    own_page = client.get(f"/plans/{PLAN}/units/{OWN}", headers={"Authorization": f"Bearer {live.tokens[UNIT_OTHER]}"})
    assert own_page.status_code == 403


# ------------------------------------------------------------------------------------------- POST denials

def snapshot(world: World) -> tuple[int, ...]:
    with world.app.app_context():
        counts = tuple(db.session.scalar(select(func.count()).select_from(model))
                       for model in (ReturnVersion, Review, User, Plan, Contact, OutboundMessage, OutlierBound,
                                     OutlierVerification))
        inactive = db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(False)))
        revoked = db.session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_not(None)))
        return counts + (inactive, revoked)


POST_DENIALS = [pytest.param(endpoint, rule, args, actor, mode, id=f"{endpoint}-{actor}-{mode}")
                for endpoint, rule, args in POST_ROUTES if classify(endpoint, rule) not in (PUBLIC, None)
                for actor in ACTORS if actor not in ALLOWED[classify(endpoint, rule) or PUBLIC]
                for mode in MODES]


@pytest.mark.parametrize(("endpoint", "rule", "args", "actor", "mode"), POST_DENIALS)
def test_post_is_refused_and_changes_nothing(live: World, endpoint: str, rule: str, args: tuple[str, ...],
                                             actor: str, mode: str) -> None:
    before = snapshot(live)
    path = fill(live, rule, args)
    client, headers = client_for(live, actor, mode)
    data = {"file": (io.BytesIO(b"PK\x03\x04 not a workbook"), "bao-cao.xlsx"), "reason": "Thiếu số liệu",
            "email": "moi@example.vn", "role": "admin", "password": "mat-khau-moi", "emails": "a@b.vn",
            "source": PLAN, "code": "copy-x", "deadline": "2025-05-10T00:00", "plan": PLAN}
    response = client.post(path, data=data, headers=headers)
    if actor == ANON:
        if rule.startswith("/api/"):
            assert response.status_code == 401
        else:
            assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    else:
        assert response.status_code == 403, (path, actor, response.status_code)
    assert snapshot(live) == before
