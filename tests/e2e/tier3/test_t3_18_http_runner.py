"""T3.18 — HTTP runner (README "Runners", issue 14): core.http_request and pack actions with
`runner_type: http` call a local HTTP server; the answer becomes the result (status_code, headers,
body, json, elapsed_ms, url, success, error); status >= 400 fails the execution; credentials never
appear in results or API answers; the execution timeout applies to the request."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from attune_e2e import expect, uid
from packs_util import upload_pack

MARKER = {"$attune_secret": True, "redacted": True}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json", extra: dict = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", "t3-18")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        seen = {"method": self.command, "path": url.path, "query": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        _Handler.seen.append(seen)
        if url.path == "/echo":
            self._answer(200, json.dumps(seen).encode())
        elif url.path.startswith("/status/"):
            self._answer(int(url.path.rsplit("/", 1)[1]), b"nothing here", "text/plain")
        elif url.path == "/redirect":
            self._answer(302, b"", "text/plain", {"Location": "/echo?from=redirect"})
        elif url.path == "/hang":
            # No answer: wait until the client goes away (the runner is killed).
            self.connection.settimeout(60)
            try:
                self.rfile.read(1)
            except OSError:
                pass
        else:
            self._answer(200, b"plain words", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


@pytest.fixture(scope="module")
def web():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base
    httpd.shutdown()
    httpd.server_close()


def run(api, params: dict, action: str = "core.http_request", **fields) -> dict:
    ex = api.execute(action, params, **fields)
    return api.wait_execution(ex["id"], timeout=30)


def test_get_with_query_params(api, web):
    ex = run(api, {"url": f"{web}/echo", "query_params": {"q": "a b", "n": 2}})
    assert ex["status"] == "completed", ex
    r = ex["result"]
    assert r["status_code"] == 200 and r["success"] is True and r["error"] is None, r
    assert r["json"]["method"] == "GET"
    assert r["json"]["query"] == "n=2&q=a%20b"
    assert r["url"] == f"{web}/echo?n=2&q=a%20b"
    assert r["headers"]["X-Served-By"] == "t3-18"
    assert json.loads(r["body"]) == r["json"]
    assert isinstance(r["elapsed_ms"], int) and isinstance(r["duration_ms"], int)


def test_post_json_body(api, web):
    payload = {"name": "attune", "items": [1, 2, {"k": None}]}
    ex = run(api, {"url": f"{web}/echo", "method": "POST", "json_body": payload,
                   "headers": {"X-Trace": "t-1"}})
    assert ex["status"] == "completed", ex
    seen = ex["result"]["json"]
    assert seen["method"] == "POST"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-trace"] == "t-1"
    assert json.loads(seen["body"]) == payload


def test_redirect_is_followed(api, web):
    ex = run(api, {"url": f"{web}/redirect"})
    assert ex["status"] == "completed", ex
    assert ex["result"]["url"] == f"{web}/echo?from=redirect"
    assert ex["result"]["json"]["query"] == "from=redirect"


def _assert_hidden(api, ex: dict, *secrets: str):
    """No secret anywhere in the execution as stored and answered."""
    full = expect(api.get(f"/api/v1/executions/{ex['id']}"), 200)["data"]
    text = json.dumps(full)
    for s in secrets:
        assert s not in text, f"{s!r} leaked: {text}"
    return full


def test_basic_auth_and_the_password_never_shows(api, web):
    password = f"pw-{uid(12)}"
    ex = run(api, {"url": f"{web}/echo", "auth_type": "basic", "auth_username": "alice",
                   "auth_password": password})
    assert ex["status"] == "completed", ex
    # The server got the credentials; the result (which echoes them) shows them redacted.
    import base64
    encoded = base64.b64encode(f"alice:{password}".encode()).decode()
    assert _Handler.seen[-1]["headers"]["authorization"] == f"Basic {encoded}"
    full = _assert_hidden(api, ex, password, encoded)
    assert full["result"]["json"]["headers"]["authorization"] == "Basic ***"
    assert full["config"]["auth_password"] == MARKER


def test_bearer_auth_and_the_token_never_shows(api, web):
    token = f"tok-{uid(16)}"
    ex = run(api, {"url": f"{web}/echo", "auth_type": "bearer", "auth_token": token})
    assert ex["status"] == "completed", ex
    assert _Handler.seen[-1]["headers"]["authorization"] == f"Bearer {token}"
    full = _assert_hidden(api, ex, token)
    assert full["result"]["json"]["headers"]["authorization"] == "Bearer ***"
    assert full["config"]["auth_token"] == MARKER


def test_404_fails_with_the_status(api, web):
    ex = run(api, {"url": f"{web}/status/404"})
    assert ex["status"] == "failed", ex
    r = ex["result"]
    assert r["status_code"] == 404 and r["success"] is False
    assert r["error"] == "HTTP 404 Not Found"
    assert r["body"] == "nothing here"
    assert "json" not in r


def test_connection_refused_fails_with_the_error(api):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        ex = run(api, {"url": f"http://127.0.0.1:{port}/"})
    assert ex["status"] == "failed", ex
    assert ex["result"]["status_code"] == 0
    assert ex["result"]["error"].startswith("request failed"), ex["result"]


def test_bad_parameters_fail_clearly(api):
    ex = run(api, {"url": "file:///etc/passwd"})
    assert ex["status"] == "failed", ex
    assert "http:// or https://" in ex["result"]["error"]
    resp = api.post("/api/v1/executions/execute", json={"action_ref": "core.http_request",
                                                         "parameters": {"url": "http://x/", "method": "FETCH"}})
    assert resp.status_code == 422, resp.text  # enum of the core action's schema


def test_execution_timeout_stops_the_request(api, web):
    ex = run(api, {"url": f"{web}/hang", "timeout": 60}, timeout_seconds=1)
    assert ex["status"] == "timeout", ex
    assert "timed out" in ex["result"]["error"]


def test_pack_action_with_runner_type_http(api, web):
    ref = f"e2e_http_{uid(6)}"
    upload_pack(api, {
        "pack.yaml": f"ref: {ref}\nlabel: HTTP pack\nversion: 1.0.0\n",
        "actions/ping.yaml": (
            "name: ping\n"
            "runner_type: http\n"
            "description: GET the echo endpoint\n"
            "parameters:\n"
            "  url:\n    type: string\n    required: true\n"
            "  method:\n    type: string\n    default: POST\n"
            "  body:\n    type: string\n    default: hello from a pack\n"
            "  auth_token:\n    type: string\n    secret: true\n"
        ),
    })
    token = f"tok-{uid(16)}"
    ex = run(api, {"url": f"{web}/echo", "auth_type": "bearer", "auth_token": token},
             action=f"{ref}.ping")
    assert ex["status"] == "completed", ex
    seen = ex["result"]["json"]
    assert seen["method"] == "POST" and seen["body"] == "hello from a pack"
    _assert_hidden(api, ex, token)
    assert ex["result"]["json"]["headers"]["authorization"] == "Bearer ***"


def test_http_action_over_the_api_needs_no_entrypoint(api, web):
    p = api.create_pack()["ref"]
    act = expect(api.post("/api/v1/actions", json={"ref": "get", "pack_ref": p, "label": "get",
                                                   "runtime_ref": "http"}), 201)["data"]
    assert act["runtime_ref"] == "core.http" and act["entrypoint"] == ""
    ex = run(api, {"url": f"{web}/text"}, action=f"{p}.get")
    assert ex["status"] == "completed", ex
    assert ex["result"]["body"] == "plain words" and "json" not in ex["result"]
