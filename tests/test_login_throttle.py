"""Issue 13: login throttling per account as well as per address; failed attempts only; expiring."""
from __future__ import annotations

import time
from typing import Any

import pytest

from test_security import OFFICER, PASSWORD, STAFF
from tracker import create_app
from tracker.extensions import limiter


@pytest.fixture(autouse=True)
def _limiter_follows_the_app(app: Any) -> Any:
    yield
    limiter.enabled = False


def throttled(app_config: dict[str, Any], per_address: str, per_account: str) -> Any:
    return create_app(dict(app_config, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN=per_address,
                           RATELIMIT_LOGIN_ACCOUNT=per_account, RATELIMIT_STORAGE_URI="memory://"))


def attempt(app: Any, email: str, password: str, address: str) -> Any:
    return app.test_client().post("/login", data={"email": email, "password": password},
                                  environ_base={"REMOTE_ADDR": address})


def test_per_account_throttling_holds_across_source_addresses(app_config, app):
    strict = throttled(app_config, "100 per minute", "5 per 15 minutes")
    for n in range(5):
        assert attempt(strict, OFFICER, "sai-mat-khau", f"10.0.0.{n + 1}").status_code == 401
    blocked = attempt(strict, OFFICER, PASSWORD, "10.0.0.99")  # a new address, even the right password
    assert blocked.status_code == 429
    page = blocked.get_data(as_text=True)
    assert "Tài khoản này vừa bị nhập sai mật khẩu nhiều lần" in page
    # Case and spaces do not make a new account; other accounts are not affected.
    assert attempt(strict, "  " + OFFICER.upper(), PASSWORD, "10.0.0.98").status_code == 429
    assert attempt(strict, STAFF, PASSWORD, "10.0.0.99").status_code == 302


def test_successful_logins_do_not_count_against_the_address(app_config, app):
    strict = throttled(app_config, "3 per minute", "3 per minute")
    for _ in range(6):
        assert attempt(strict, STAFF, PASSWORD, "10.1.1.1").status_code == 302
    for _ in range(3):
        assert attempt(strict, "khongco@demo.bacgiang.vn", "x", "10.1.1.1").status_code == 401
    blocked = attempt(strict, STAFF, PASSWORD, "10.1.1.1")
    assert blocked.status_code == 429
    assert "Bạn đã thử quá nhiều lần" in blocked.get_data(as_text=True)


def test_the_throttle_expires(app_config, app):
    strict = throttled(app_config, "100 per minute", "2 per 2 seconds")
    for _ in range(2):
        assert attempt(strict, OFFICER, "sai", "10.2.2.2").status_code == 401
    assert attempt(strict, OFFICER, PASSWORD, "10.2.2.3").status_code == 429
    time.sleep(2.2)
    assert attempt(strict, OFFICER, PASSWORD, "10.2.2.3").status_code == 302
