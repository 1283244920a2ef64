"""Issue 13: one safe-redirect helper, overflow inputs, Cache-Control, and CSRF only skipped for a valid token."""
from __future__ import annotations

import pytest

from tracker.redirects import safe_next

PLAN = "bacgiang-2024"


@pytest.mark.parametrize("target", [
    "/\t/evil.example", "/%09/evil.example", "/%2509/evil.example", "/%0a/evil.example", "/%5Cevil.example",
    "//evil.example", "/%2F/evil.example", "https://evil.example", "/\\evil.example", " /x", "evil.example",
])
def test_safe_next_refuses_every_way_off_site(target):
    assert safe_next(target) is None


def test_safe_next_keeps_our_own_paths():
    assert safe_next("/plans/bacgiang-2024/units/219") == "/plans/bacgiang-2024/units/219"
    assert safe_next("/plans/x/dashboard?status=overdue&q=Lục%20Nam") == "/plans/x/dashboard?status=overdue&q=Lục%20Nam"


def test_contacts_form_next_with_a_tab_does_not_leave_the_site(client, login_as):
    login_as("admin")
    response = client.post("/admin/units/219/contacts?next=/%09/evil.example",
                           data={"emails": "a@example.vn", "next": "/\t/evil.example"})
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/admin/units/219/contacts"
    response = client.post("/admin/units/219/contacts", data={"emails": "a@example.vn", "next": "/plans/" + PLAN})
    assert response.headers["Location"] == "/plans/" + PLAN


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00"])
def test_out_of_range_as_of_is_400_not_500(client, login_as, token_for, as_of):
    login_as("staff")
    assert client.get(f"/plans/{PLAN}/dashboard", query_string={"as_of": as_of}).status_code == 400
    assert client.get(f"/plans/{PLAN}/schedule", query_string={"as_of": as_of}).status_code == 400
    api = client.get(f"/api/v1/plans/{PLAN}/status", query_string={"as_of": as_of},
                     headers={"Authorization": f"Bearer {token_for('staff')}"})
    assert api.status_code == 400
    assert api.get_json()["error"]["code"] == "invalid_as_of"


@pytest.mark.parametrize("number", ["99999999999999999999999", "2147483648", "9223372036854775808"])
def test_huge_ids_are_404_not_500(client, login_as, number):
    login_as("admin")
    assert client.get(f"/plans/{PLAN}/units/219/versions/{number}").status_code == 404
    assert client.get(f"/plans/{PLAN}/units/219/versions/{number}/original").status_code == 404
    assert client.get(f"/mail-log/{number}").status_code == 404
    assert client.post(f"/admin/users/{number}/deactivate").status_code == 404


def test_no_store_on_signed_in_pages_downloads_and_the_api(client, login_as, token_for):
    assert "no-store" not in (client.get("/login").headers.get("Cache-Control") or "")
    static = client.get("/static/app.css")
    static.close()  # a file response: close it, or its open file is reported
    assert "no-store" not in (static.headers.get("Cache-Control") or "")
    login_as("unit", "219")
    for path in (f"/plans/{PLAN}/units/219", f"/plans/{PLAN}/units/219/blank-form.xlsx"):
        answer = client.get(path)
        answer.close()
        assert answer.headers["Cache-Control"] == "no-store", path
    api = client.get("/api/v1/plans", headers={"Authorization": f"Bearer {token_for('staff')}"})
    assert api.headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/plans").headers["Cache-Control"] == "no-store"  # even the 401


def test_a_bogus_bearer_header_does_not_skip_csrf(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/login", headers={"Authorization": "Bearer x"},
                           data={"email": "canbo@demo.bacgiang.vn", "password": "demo-2024"})
    assert response.status_code == 400  # CSRF refused: a made-up token is no token
    api = client.post(f"/api/v1/plans/{PLAN}/units/219/returns", headers={"Authorization": "Bearer x"})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"


def test_a_valid_token_still_needs_no_csrf(app, client, token_for):
    app.config["WTF_CSRF_ENABLED"] = True
    token = token_for("unit", "219")
    api = client.post(f"/api/v1/plans/{PLAN}/units/219/returns", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "no_file"
