"""Web console UI tests: headless Chromium (Debian's chromium + chromium-driver + python3-selenium) against the
real `attune serve` serving the console build output.

Console build: $ATTUNE_CONSOLE_DIR, default `console/` next to the attune binary (where `bash cmake/dev.sh build`
puts it, and where `attune serve` looks by default) — or build it by hand with
    cd api/console && npm ci && node build.mjs OUT_DIR        (then ATTUNE_CONSOLE_DIR=OUT_DIR)
A missing build fails every test (never skips). Screenshots go to $ATTUNE_SCREENSHOT_DIR
(default <repo>/build/console-screenshots/).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import requests

from attune_e2e import REPO_ROOT, Server, attune_bin, uid, random_password, expect

sys.path.insert(0, str(REPO_ROOT / "tests" / "bench"))
import console_bench as cb  # noqa: E402

_SERVERS: list = []
_BROWSER: list = []


def console_dir() -> Path:
    return Path(os.environ.get("ATTUNE_CONSOLE_DIR") or attune_bin().parent / "console").resolve()


@pytest.fixture(scope="session")
def console_build() -> Path:
    d = console_dir()
    missing = [p for p in (d / "index.html", d / "assets" / "app.js", d / "assets" / "app.css") if not p.is_file()]
    if missing:
        pytest.fail(f"console build output missing ({', '.join(map(str, missing))}): build it with "
                    f"`cd api/console && npm ci && node build.mjs {d}` (or point ATTUNE_CONSOLE_DIR at a build)",
                    pytrace=False)
    return d


@pytest.fixture(scope="session")
def server(attune_binary, tmp_path_factory, console_build):
    """The session server, serving the console build (overrides the e2e `server` fixture)."""
    base = tmp_path_factory.mktemp("attune-console")
    srv = Server(attune_binary, base / "data", base / "attune.log",
                 extra_env={"ATTUNE_CONSOLE_DIR": str(console_build)})
    srv.start(timeout=60)
    _SERVERS.append(srv)
    yield srv
    _SERVERS.remove(srv)
    rc = srv.stop(grace=10)
    assert rc == 0, f"attune serve exited with code {rc} after SIGTERM\n{srv.log_tail()}"


@pytest.fixture(scope="session")
def admin_session(server) -> dict:
    """Overrides the e2e fixture as `server` does: pytest caches a session fixture once, so the
    root `admin_session` would still hold the tokens of the root server when other suites ran
    first in the same session (signed with another server's secret: every call 401)."""
    c = server.admin_client()
    return {"token": c.token, "refresh_token": c.refresh_token, "user": c.user}


@pytest.fixture(scope="session")
def console_url(server) -> str:
    """The console's URL (same origin as the API); checks that the server really serves it."""
    base = server.api_url
    r = requests.get(base + "/", timeout=10)
    assert r.status_code == 200 and "/assets/app.js" in r.text, (
        f"GET {base}/ did not serve the console index.html (status {r.status_code}); this attune binary "
        f"needs console serving (--console-dir / ATTUNE_CONSOLE_DIR)\n{r.text[:300]}")
    for asset, mime in (("app.js", "javascript"), ("app.css", "text/css")):
        a = requests.get(f"{base}/assets/{asset}", timeout=10)
        assert a.status_code == 200, f"GET /assets/{asset} -> {a.status_code}"
        assert mime in a.headers.get("Content-Type", ""), \
            f"/assets/{asset} served as {a.headers.get('Content-Type')!r}, expected *{mime}*"
    return base


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    d = Path(os.environ.get("ATTUNE_SCREENSHOT_DIR") or REPO_ROOT / "build" / "console-screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def _driver():
    try:
        drv = cb.make_driver()  # headless Chromium, the same set-up as the benchmark
    except cb.BenchError as e:
        pytest.fail(str(e), pytrace=False)
    drv.set_page_load_timeout(30)
    _BROWSER.append(drv)
    yield drv
    _BROWSER.clear()
    drv.quit()


class Console:
    """The browser on the console, with explicit waits and helpers."""

    def __init__(self, driver, base: str, shots: Path):
        self.d = driver
        self.base = base
        self.shots = shots

    # -- waiting
    def wait(self, cond, timeout: float = 15.0, desc: str = "condition"):
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: cond(d))
        except Exception as e:  # TimeoutException: say what we waited for, and where we were
            raise AssertionError(f"timed out after {timeout}s waiting for {desc} (at {self.d.current_url}); "
                                 f"page text: {self.text()[:800]!r}") from e

    def css(self, selector: str):
        return self.d.find_elements("css selector", selector)

    def el(self, selector: str, timeout: float = 15.0):
        """The first visible element matching `selector` (waits)."""
        def find(d):
            for e in d.find_elements("css selector", selector):
                if e.is_displayed():
                    return e
            return None
        return self.wait(find, timeout, f"visible {selector}")

    def gone(self, selector: str, timeout: float = 15.0):
        self.wait(lambda d: not d.find_elements("css selector", selector), timeout, f"no {selector}")

    def text(self) -> str:
        try:
            return self.d.find_element("tag name", "body").text
        except Exception:
            return ""

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    # -- navigation
    def goto(self, hash_path: str) -> None:
        """Navigates within the app (no reload)."""
        self.js("location.hash = arguments[0]", hash_path)
        self.wait(lambda d: d.execute_script("return location.hash") == hash_path, desc=f"hash {hash_path}")

    def open(self, hash_path: str = "") -> None:
        """A full page load (a get() differing only by the hash would not reload the page)."""
        self.d.get("about:blank")
        self.d.get(f"{self.base}/{hash_path and '#' + hash_path.lstrip('#')}")

    def use_session(self, session: dict) -> None:
        """Logs in by putting tokens where the console keeps them (sessionStorage), then loads the page."""
        self.d.get(self.base + "/assets/app.css")  # same origin, without starting the app
        doc = {"access_token": session["token"], "refresh_token": session["refresh_token"],
               "expires_at": int(time.time() * 1000) + 3_000_000, "lifetime": 3_600_000, "user": session["user"]}
        self.js("sessionStorage.setItem('attune.session', arguments[0])", json.dumps(doc))
        self.open("#/executions")
        self.el("#executions-table")

    def reset(self) -> None:
        """No session and no running app: the next test starts from a fresh page load."""
        if self.d.current_url.startswith(self.base):
            self.js("sessionStorage.clear()")
        self.d.get("about:blank")

    def login_ui(self, login: str, password: str) -> None:
        self.el("#login-user").clear()
        self.el("#login-user").send_keys(login)
        self.el("#login-password").clear()
        self.el("#login-password").send_keys(password)
        self.el("#login-submit").click()

    def ws_open(self, timeout: float = 15.0) -> None:
        self.wait(lambda d: d.execute_script(
            "var e = document.getElementById('ws-status'); return e && e.dataset.state === 'open'"),
            timeout, "#ws-status data-state=open")

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.d.save_screenshot(str(path))
        assert path.stat().st_size > 1000, f"empty screenshot {path}"
        return path

    def js_errors(self) -> list[str]:
        try:
            logs = self.d.get_log("browser")
        except Exception:
            return []
        return [l["message"] for l in logs if l.get("level") == "SEVERE"
                and "Failed to load resource" not in l["message"] and "/blocked" not in l["message"]]


@pytest.fixture
def ui(_driver, console_url, screenshot_dir):
    """The shared browser (blank page, no session, desktop size); fails the test on uncaught JS errors."""
    _driver.set_window_size(1280, 900)
    c = Console(_driver, console_url, screenshot_dir)
    c.reset()
    c.js_errors()  # drain
    yield c
    errors = c.js_errors()
    assert not errors, f"JavaScript errors in the console: {errors}"


@pytest.fixture
def admin_ui(ui, admin_session):
    """The browser logged in as the bootstrap admin (tokens injected; the UI login has its own test)."""
    ui.use_session(admin_session)
    return ui


@pytest.fixture
def viewer(server, api):
    """A fresh identity holding only core.viewer: {login, password, id}."""
    login = f"viewer_{uid(8)}"
    password = random_password(16)
    ident = expect(api.post("/api/v1/identities", json={"login": login, "password": password}), 201)["data"]
    expect(api.post("/api/v1/permissions/assignments",
                    json={"identity_id": ident["id"], "permission_set_ref": "core.viewer"}), 201)
    return {"login": login, "password": password, "id": ident["id"]}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure: the console server's log tail and the browser's console messages."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for srv in _SERVERS:
        rep.sections.append((f"console attune log ({srv.log_path})", srv.log_tail(60)))
    for drv in _BROWSER:
        try:
            logs = drv.get_log("browser")
            rep.sections.append(("browser console", "\n".join(f"{l['level']} {l['message']}" for l in logs[-40:])))
        except Exception:
            pass
