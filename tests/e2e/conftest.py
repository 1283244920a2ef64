"""Browser fixtures: the app served by a real server thread, driven by Debian's headless Chromium.

No browser is downloaded: Playwright drives the ``chromium`` found on the PATH, with a fresh profile
folder for the run. Where Chromium (or the playwright package) is missing the tests skip with the
reason, unless TRACKER_REQUIRE_SERVICES=1 (CI), where a missing browser is a failure.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from e2e_support import ARTIFACTS, DESKTOP, PASSWORD, launch


def _unavailable(reason: str) -> None:
    if os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (TRACKER_REQUIRE_SERVICES=1: the browser journeys must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Return the path of Debian's Chromium; skip (or fail under TRACKER_REQUIRE_SERVICES=1) without it."""
    path = shutil.which("chromium")
    if path is None:
        _unavailable("Chromium is not on PATH (Debian: apt-get install chromium): the browser journeys cannot run")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements-test.txt)")
    return str(path)


@pytest.fixture(scope="session")
def playwright_driver(chromium_path: str) -> Iterator[Any]:
    """The one Playwright driver of the run (a second sync driver cannot start inside the first)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser_context(playwright_driver: Any, chromium_path: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the run, on a fresh profile folder, accepting downloads."""
    context = launch(playwright_driver, chromium_path, tmp_path_factory.mktemp("chromium-profile"), "vi-VN",
                     "Asia/Ho_Chi_Minh")
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """The root test settings, with CSRF on: a real browser posts real forms with their tokens."""
    return {**app_config, "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": False}


class QuietHandler(WSGIRequestHandler):
    # One log line per request would bury a failing assertion under hundreds of GETs.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` from a thread on a free loopback port; yield its base URL."""
    server = make_server(host="127.0.0.1", port=0, app=app, threaded=True,
                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser_context: Any, live_server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new tab with no cookies, at desktop size; on failure its last screen goes to artifacts/."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.set_viewport_size(DESKTOP)
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed and not tab.is_closed():
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
        tab.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # The page fixture reads the call's outcome to decide whether to keep a screenshot.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def login(page: Any, live_server: str) -> Callable[[str], None]:
    """Log the browser in through the login form: ``login("donvi219@demo.bacgiang.vn")``."""

    def _login(email: str, password: str = PASSWORD) -> None:
        page.goto(f"{live_server}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Mật khẩu").fill(password)
        page.get_by_role("button", name="Đăng nhập").click()
        page.wait_for_load_state()
        assert "/login" not in page.url, f"login as {email} failed: {page.locator('main').inner_text()[:300]}"

    return _login


@pytest.fixture
def logout(page: Any) -> Callable[[], None]:
    """Press «Đăng xuất» in the top bar and wait for the login page."""

    def _logout() -> None:
        page.get_by_role("button", name="Đăng xuất").click()
        page.wait_for_url("**/login")

    return _logout


@pytest.fixture
def shoot(page: Any) -> Callable[..., Path]:
    """Save a PNG of the page to artifacts/; with ``publish`` also to TRACKER_SCREENSHOTS_DIR when set."""

    def _shoot(name: str, full_page: bool = True, publish: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        published = os.environ.get("TRACKER_SCREENSHOTS_DIR")
        if publish and published:
            target = Path(published)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
        return path

    return _shoot
