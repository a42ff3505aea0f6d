"""What a new user meets first (issue 18): the notifier URL discoverable from the API, the web
console's files at /, `attune serve --detach`, and a warning when ATTUNE_BOOTSTRAP_ADMIN cannot
set the password of an identity that already exists."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import requests
import websocket

from attune_e2e import Server, wait_for

pytestmark = pytest.mark.restart


def test_health_detailed_names_the_notifier_url_a_client_can_connect_to(server):
    body = requests.get(f"{server.api_url}/health/detailed", timeout=5).json()
    assert body["status"] == "ok"
    ws_port = int(server.ws_url.rsplit(":", 1)[1])
    assert body["websocket_url"] == f"ws://127.0.0.1:{ws_port}/ws"
    # The host part follows the name the client used for the API (a browser on another name).
    by_name = requests.get(f"{server.api_url}/health/detailed", timeout=5,
                           headers={"Host": f"localhost:{server.api_url.rsplit(':', 1)[1]}"}).json()
    assert by_name["websocket_url"] == f"ws://localhost:{ws_port}/ws"
    token = server.admin_client().token
    ws = websocket.create_connection(body["websocket_url"], timeout=5,
                                     header=[f"Authorization: Bearer {token}"])
    try:
        assert json.loads(ws.recv())["type"] == "welcome"
    finally:
        ws.close()


def test_public_ws_url_is_reported_as_configured_and_the_console_is_served(attune_binary, tmp_path):
    console = tmp_path / "console"
    (console / "assets").mkdir(parents=True)
    (console / "index.html").write_text("<!doctype html><title>Attune console</title>")
    (console / "assets" / "app.js").write_text("console.log('attune');")
    (console / "assets" / "app.css").write_text("body{}")
    srv = Server(attune_binary, tmp_path / "data", tmp_path / "attune.log",
                 extra_env={"ATTUNE_PUBLIC_WS_URL": "wss://attune.example.com/notifier/ws",
                            "ATTUNE_CONSOLE_DIR": str(console)})
    srv.start()
    try:
        body = requests.get(f"{srv.api_url}/health/detailed", timeout=5).json()
        assert body["websocket_url"] == "wss://attune.example.com/notifier/ws"
        for path in ("/", "/index.html"):
            r = requests.get(srv.api_url + path, timeout=5)
            assert r.status_code == 200 and "Attune console" in r.text
            assert r.headers["Content-Type"].startswith("text/html")
        js = requests.get(f"{srv.api_url}/assets/app.js", timeout=5)
        assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
        css = requests.get(f"{srv.api_url}/assets/app.css", timeout=5)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
        missing = requests.get(f"{srv.api_url}/assets/nope.js", timeout=5)
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
        escape = requests.get(f"{srv.api_url}/assets/..%2Findex.html", timeout=5)
        assert escape.status_code == 404
    finally:
        srv.stop()


def test_without_a_built_console_the_root_says_how_to_build_it(attune_binary, tmp_path):
    srv = Server(attune_binary, tmp_path / "data", tmp_path / "attune.log",
                 extra_env={"ATTUNE_CONSOLE_DIR": str(tmp_path / "no-console")})
    srv.start()
    try:
        r = requests.get(srv.api_url + "/", timeout=5)
        assert r.status_code == 404
        assert "not built" in r.text and "cmake/dev.sh build" in r.text
        # The API itself is unaffected.
        assert requests.get(f"{srv.api_url}/health", timeout=5).json() == {"status": "ok"}
    finally:
        srv.stop()


def _detach(binary: Path, data_dir: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "serve", "--data-dir", str(data_dir), "--listen",
                           "127.0.0.1:0", "--ws-listen", "127.0.0.1:0", "--detach"],
                          env=env, capture_output=True, text=True, timeout=90)


def test_detach_returns_once_ready_and_reports_a_second_server_on_the_same_data_dir(
        attune_binary, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE")}
    data = tmp_path / "data"
    first = _detach(attune_binary, data, env)
    assert first.returncode == 0, first.stderr + first.stdout
    ready = re.search(r"attune: ready api=(http://\S+) ws=", first.stdout)
    assert ready, first.stdout
    assert "created administrator 'admin'" in first.stdout  # the password line is shown
    pid = int((data / "serve.pid").read_text())
    try:
        # Ready means ready: the API answers at once, and the generated password logs in.
        login, password = (data / "admin-password").read_text().strip().split(":", 1)
        r = requests.post(f"{ready.group(1)}/auth/login", json={"login": login, "password": password},
                          timeout=5)
        assert r.status_code == 200, r.text
        second = _detach(attune_binary, data, env)
        assert second.returncode == 1
        assert "exited before it was ready" in second.stderr
        assert "another attune serve" in second.stderr
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                 "zombie" in Path(f"/proc/{pid}/status").read_text().lower(),
                 timeout=30, desc="detached server to exit")
    assert "attune: ready" in (data / "serve.log").read_text()


def test_bootstrap_admin_ignored_for_an_existing_identity_is_warned_about(attune_binary, tmp_path):
    srv = Server(attune_binary, tmp_path / "data", tmp_path / "attune.log",
                 admin_login="ops", admin_password="first-password-1")
    srv.start()
    srv.stop()
    srv.admin_password = "second-password-2"
    srv.start()
    try:
        log = srv.log_path.read_text()
        assert re.search(r"\[err\] attune: warning: ATTUNE_BOOTSTRAP_ADMIN is ignored for the "
                         r"password: identity 'ops' already exists", log), log[-2000:]
        # Unchanged indeed: the first password still logs in, the second does not.
        ok = requests.post(f"{srv.api_url}/auth/login", timeout=5,
                           json={"login": "ops", "password": "first-password-1"})
        assert ok.status_code == 200
        bad = requests.post(f"{srv.api_url}/auth/login", timeout=5,
                            json={"login": "ops", "password": "second-password-2"})
        assert bad.status_code == 401
    finally:
        srv.stop()
    # The same password as before: nothing to warn about.
    srv.admin_password = "first-password-1"
    before = srv.log_path.read_text().count("is ignored for the password")
    srv.start()
    srv.stop()
    assert srv.log_path.read_text().count("is ignored for the password") == before
