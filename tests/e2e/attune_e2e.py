"""Helpers for Attune's end-to-end tests: a real `attune serve` process and a tiny HTTP client.

Everything here talks to the server the way a user would: over HTTP only.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import string
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Optional

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "build" / "api" / "cli" / "attune"

READY_RE = re.compile(r"attune: ready api=(http://\S+) ws=(ws://\S+)")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

ALL_STATUSES = (
    "requested", "scheduling", "scheduled", "running", "completed",
    "failed", "canceling", "cancelled", "timeout", "abandoned",
)
TERMINAL = frozenset({"completed", "failed", "timeout", "cancelled", "abandoned"})
NON_TERMINAL = frozenset({"requested", "scheduling", "scheduled", "running", "canceling"})
PAGINATION_FIELDS = ("page", "page_size", "total_items", "total_pages", "has_previous", "has_next")


def attune_bin() -> Path:
    return Path(os.environ.get("ATTUNE_BIN") or DEFAULT_BIN)


def uid(n: int = 10) -> str:
    """A short lowercase unique suffix usable in pack refs and names."""
    return uuid.uuid4().hex[:n]


def random_password(n: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def rfc3339(dt: Optional[datetime] = None) -> str:
    dt = dt or datetime.now(timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_mark(gap: float = 0.03) -> str:
    """A timestamp strictly separated (by `gap` seconds on both sides) from anything around it."""
    time.sleep(gap)
    mark = rfc3339()
    time.sleep(gap)
    return mark


def parse_ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**53


def wait_for(fn: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, desc: str = "condition"):
    """Poll `fn` every `interval` seconds until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except AssertionError as e:  # allow fn to assert while the system converges
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {desc}"
            if last_exc is not None:
                msg += f" (last assertion: {last_exc})"
            raise AssertionError(msg)
        time.sleep(interval)


def describe(resp: requests.Response) -> str:
    body = resp.text
    if len(body) > 2000:
        body = body[:2000] + "...(truncated)"
    return f"{resp.request.method} {resp.request.url} -> {resp.status_code} {body}"


def expect(resp: requests.Response, status: int) -> Any:
    """Assert the status code and return the decoded JSON body."""
    assert resp.status_code == status, f"expected {status}: {describe(resp)}"
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(f"response is not JSON: {describe(resp)}")


def expect_error(resp: requests.Response, status: int, code: Optional[str] = None,
                 message: Optional[str] = None, message_contains: Optional[str] = None) -> dict:
    """Assert an API.md §3 error body: {"error": str, "code": str, "details"?: any}."""
    body = expect(resp, status)
    assert isinstance(body, dict), describe(resp)
    assert isinstance(body.get("error"), str) and body["error"], f"no 'error' message: {describe(resp)}"
    assert isinstance(body.get("code"), str), f"no 'code': {describe(resp)}"
    if code is not None:
        assert body["code"] == code, f"expected code {code}: {describe(resp)}"
    if message is not None:
        assert body["error"] == message, f"expected error {message!r}: {describe(resp)}"
    if message_contains is not None:
        assert message_contains in body["error"], f"expected error containing {message_contains!r}: {describe(resp)}"
    return body


# --------------------------------------------------------------------------------------------- JWT

def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint_jwt(secret: str, claims: dict) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


def jwt_claims(token: str) -> dict:
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWT: {token!r}"
    pad = "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(parts[1] + pad))


def jwt_header(token: str) -> dict:
    parts = token.split(".")
    pad = "=" * (-len(parts[0]) % 4)
    return json.loads(base64.urlsafe_b64decode(parts[0] + pad))


# ------------------------------------------------------------------------------------------ Server

class Server:
    """One `attune serve` process on a data directory; can be stopped and started again on the same dir."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, *, admin_login: str = "admin",
                 admin_password: Optional[str] = None, jwt_secret: Optional[str] = None,
                 extra_env: Optional[dict] = None):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.admin_login = admin_login
        self.admin_password = admin_password or random_password()
        self.jwt_secret = jwt_secret or random_password(48)
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.api_url: Optional[str] = None
        self.ws_url: Optional[str] = None
        self.starts = 0
        self.last_exit: Optional[int] = None
        self.last_stop_needed_kill = False
        self._threads: list[threading.Thread] = []
        self._log_lock = threading.Lock()
        self._log = None

    # -- environment / command
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("ATTUNE_") or k.startswith("ATTUNE__") or k == "JWT_SECRET")}
        env["ATTUNE_BOOTSTRAP_ADMIN"] = f"{self.admin_login}:{self.admin_password}"
        env["ATTUNE__SECURITY__JWT_SECRET"] = self.jwt_secret
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [str(self.binary), "serve", "--data-dir", str(self.data_dir),
                "--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"]

    def _write_log(self, stream: str, line: str) -> None:
        with self._log_lock:
            if self._log is not None and not self._log.closed:
                self._log.write(f"[{stream}] {line}" if line.endswith("\n") else f"[{stream}] {line}\n")
                self._log.flush()

    def _pump(self, pipe, stream: str, ready: Optional[dict], ready_evt: Optional[threading.Event]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace")
                self._write_log(stream, line)
                if ready is not None and not ready_evt.is_set():
                    stripped = line.strip()
                    m = READY_RE.fullmatch(stripped)
                    if m:
                        ready["api"], ready["ws"] = m.group(1), m.group(2)
                        ready_evt.set()
                    elif "attune: ready" in stripped:
                        ready["malformed"] = stripped
                        ready_evt.set()
        finally:
            try:
                pipe.close()
            except Exception:
                pass
            if ready_evt is not None:
                ready_evt.set()  # EOF: wake the waiter (it checks the result)

    def start(self, timeout: float = 60.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        if not self.binary.exists():
            raise AssertionError(
                f"attune binary not found at {self.binary} (set ATTUNE_BIN or build the project first)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._write_log("e2e", f"=== start #{self.starts}: {' '.join(self.command())}")
        self.proc = subprocess.Popen(self.command(), env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(self.data_dir.parent))
        ready: dict = {}
        evt = threading.Event()
        t_out = threading.Thread(target=self._pump, args=(self.proc.stdout, "out", ready, evt), daemon=True)
        t_err = threading.Thread(target=self._pump, args=(self.proc.stderr, "err", None, None), daemon=True)
        t_out.start()
        t_err.start()
        self._threads = [t_out, t_err]
        deadline = time.monotonic() + timeout
        while not evt.wait(0.1):
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError(f"attune serve printed no ready line within {timeout}s\n{self.log_tail()}")
        if "malformed" in ready:
            self.kill9()
            raise AssertionError(f"malformed ready line {ready['malformed']!r}; expected "
                                 f"'attune: ready api=http://HOST:PORT ws=ws://HOST:PORT'\n{self.log_tail()}")
        if "api" not in ready:
            rc = self.proc.wait(5)
            raise AssertionError(f"attune serve exited (code {rc}) before it was ready\n{self.log_tail()}")
        self.api_url, self.ws_url = ready["api"].rstrip("/"), ready["ws"].rstrip("/")
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _finish(self) -> None:
        for t in self._threads:
            t.join(5)
        with self._log_lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return self.last_exit if self.last_exit is not None else 0
        self.last_stop_needed_kill = False
        if self.proc.poll() is None:
            self._write_log("e2e", "=== SIGTERM")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.last_stop_needed_kill = True
                self._write_log("e2e", f"=== no exit {grace}s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait(10)
        self.last_exit = self.proc.returncode
        self._write_log("e2e", f"=== exited with code {self.last_exit}")
        self._finish()
        self.proc = None
        return self.last_exit

    def kill9(self) -> int:
        if self.proc is None:
            return self.last_exit if self.last_exit is not None else 0
        if self.proc.poll() is None:
            self._write_log("e2e", "=== SIGKILL")
            self.proc.kill()
        self.proc.wait(10)
        self.last_exit = self.proc.returncode
        self._write_log("e2e", f"=== exited with code {self.last_exit}")
        self._finish()
        self.proc = None
        return self.last_exit

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])

    def client(self, token: Optional[str] = None) -> "Client":
        assert self.api_url, "server not started"
        return Client(self.api_url, token=token)

    def admin_client(self) -> "Client":
        c = self.client()
        c.login(self.admin_login, self.admin_password)
        return c


# ------------------------------------------------------------------------------------------ Client

class Client:
    """A minimal Attune REST client returning raw `requests.Response` objects plus checked helpers."""

    def __init__(self, base_url: str, token: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.refresh_token: Optional[str] = None
        self.user: Optional[dict] = None
        self.session = requests.Session()

    # -- raw HTTP
    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if not path.startswith("/"):
            path = "/" + path
        if not (path.startswith("/api/") or path.startswith("/auth/") or path.startswith("/health")
                or path.startswith("/metrics")):
            path = "/api/v1" + path
        return self.base_url + path

    def request(self, method: str, path: str, *, auth: bool = True, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", None) or {})
        if auth and self.token and not any(h.lower() == "authorization" for h in headers):
            headers["Authorization"] = f"Bearer {self.token}"
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), headers=headers, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- auth
    def login(self, login: str, password: str) -> dict:
        body = expect(self.post("/auth/login", json={"login": login, "password": password}, auth=False), 200)
        data = body["data"]
        self.token = data["access_token"]
        self.refresh_token = data["refresh_token"]
        self.user = data["user"]
        return data

    def with_token(self, token: Optional[str]) -> "Client":
        return Client(self.base_url, token=token)

    # -- checked reads
    def get_data(self, path: str, **params) -> Any:
        return expect(self.get(path, params=params or None), 200)["data"]

    def list(self, path: str, **params) -> dict:
        body = expect(self.get(path, params=params or None), 200)
        assert isinstance(body.get("items"), list), f"list without items: {body}"
        return body

    def items(self, path: str, **params) -> list:
        params.setdefault("page_size", 100)
        return self.list(path, **params)["items"]

    # -- definitions
    def create_pack(self, ref: Optional[str] = None, **fields) -> dict:
        ref = ref or f"e2e_{uid()}"
        body = {"ref": ref, "label": f"E2E pack {ref}", "version": "1.0.0"}
        body.update(fields)
        return expect(self.post("/api/v1/packs", json=body), 201)["data"]

    def create_action(self, ref: str, entrypoint: str, runtime_ref: str = "core.shell", **fields) -> dict:
        pack_ref, _, name = ref.partition(".")
        body = {"ref": ref, "pack_ref": fields.pop("pack_ref", pack_ref), "label": name or ref,
                "entrypoint": entrypoint, "runtime_ref": runtime_ref}
        body.update(fields)
        return expect(self.post("/api/v1/actions", json=body), 201)["data"]

    def create_trigger(self, ref: str, **fields) -> dict:
        pack_ref, _, name = ref.partition(".")
        body = {"ref": ref, "pack_ref": fields.pop("pack_ref", pack_ref), "label": name or ref}
        body.update(fields)
        return expect(self.post("/api/v1/triggers", json=body), 201)["data"]

    def enable_webhook(self, trigger_ref: str) -> str:
        data = expect(self.post(f"/api/v1/triggers/{trigger_ref}/webhooks/enable"), 200)["data"]
        assert data["webhook_enabled"] is True, data
        key = data["webhook_key"]
        assert isinstance(key, str) and len(key) >= 32, data
        return key

    def create_rule(self, ref: str, trigger_ref: str, action_ref: str, action_params: Any = None,
                    conditions: Any = None, **fields) -> dict:
        pack_ref, _, name = ref.partition(".")
        body = {"ref": ref, "pack_ref": fields.pop("pack_ref", pack_ref), "label": name or ref,
                "trigger_ref": trigger_ref, "action_ref": action_ref}
        if action_params is not None:
            body["action_params"] = action_params
        if conditions is not None:
            body["conditions"] = conditions
        body.update(fields)
        return expect(self.post("/api/v1/rules", json=body), 201)["data"]

    def fire_webhook(self, key: str, payload: Any = None, *, body: Any = ..., data: Any = None,
                     **kw) -> requests.Response:
        """POST /api/v1/webhooks/{key} without any Authorization header."""
        headers = dict(kw.pop("headers", None) or {})
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
            return requests.post(self.url(f"/api/v1/webhooks/{key}"), data=data, headers=headers,
                                 timeout=kw.pop("timeout", 30), **kw)
        doc = {"payload": payload} if body is ... else body
        return requests.post(self.url(f"/api/v1/webhooks/{key}"), json=doc, headers=headers,
                             timeout=kw.pop("timeout", 30), **kw)

    def fire(self, key: str, payload: Any) -> dict:
        """Fire a webhook and return the receipt's data (event_id, trigger_ref, received_at, message)."""
        return expect(self.fire_webhook(key, payload), 200)["data"]

    def execute(self, action_ref: str, parameters: Optional[dict] = None, **fields) -> dict:
        body = {"action_ref": action_ref}
        if parameters is not None:
            body["parameters"] = parameters
        body.update(fields)
        return expect(self.post("/api/v1/executions/execute", json=body), 201)["data"]

    # -- waiting
    def wait_execution(self, exec_id: int, statuses: Iterable[str] = TERMINAL, timeout: float = 20.0) -> dict:
        statuses = set(statuses)
        seen = {}

        def check():
            r = self.get(f"/api/v1/executions/{exec_id}")
            if r.status_code != 200:
                seen["resp"] = describe(r)
                return None
            ex = r.json()["data"]
            seen["last"] = ex
            return ex if ex["status"] in statuses else None

        try:
            return wait_for(check, timeout=timeout, desc=f"execution {exec_id} in {sorted(statuses)}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen: {seen.get('last') or seen.get('resp')}") from None

    def wait_for(self, fn: Callable[[], Any], timeout: float = 20.0, desc: str = "condition"):
        return wait_for(fn, timeout=timeout, desc=desc)

    def wait_enforcements(self, rule_ref: str, count: int, timeout: float = 20.0, **filters) -> list:
        return wait_for(lambda: (lambda it: it if len(it) >= count else None)(
            self.items("/api/v1/enforcements", rule_ref=rule_ref, **filters)),
            timeout=timeout, desc=f"{count} enforcements of {rule_ref}")

    def wait_rule_executions(self, rule_ref: str, count: int, statuses: Iterable[str] = TERMINAL,
                             timeout: float = 20.0) -> list:
        statuses = set(statuses)

        def check():
            it = self.items("/api/v1/executions", rule_ref=rule_ref)
            if len(it) >= count and all(e["status"] in statuses for e in it):
                return it
            return None
        return wait_for(check, timeout=timeout, desc=f"{count} executions of {rule_ref} in {sorted(statuses)}")

    def execution_for_enforcement(self, enf_id: int, timeout: float = 20.0) -> dict:
        items = wait_for(lambda: self.items("/api/v1/executions", enforcement=enf_id), timeout=timeout,
                         desc=f"an execution for enforcement {enf_id}")
        assert len(items) == 1, f"enforcement {enf_id} has {len(items)} executions: {items}"
        return items[0]

    # -- composite setup
    def webhook_flow(self, script: str, action_params: Any = None, conditions: Any = None,
                     prefix: str = "e2e", action_fields: Optional[dict] = None,
                     pack_ref: Optional[str] = None) -> SimpleNamespace:
        """pack + inline shell action + trigger with webhook enabled + rule; all with unique refs."""
        u = uid()
        pack = self.create_pack(pack_ref) if pack_ref is None else self.get_data(f"/api/v1/packs/{pack_ref}")
        p = pack["ref"]
        action = self.create_action(f"{p}.act_{u}", script, **(action_fields or {}))
        trigger = self.create_trigger(f"{p}.hook_{u}")
        key = self.enable_webhook(trigger["ref"])
        rule = self.create_rule(f"{p}.rule_{u}", trigger["ref"], action["ref"],
                                action_params=action_params, conditions=conditions)
        return SimpleNamespace(pack=pack, action=action, trigger=trigger, rule=rule, key=key,
                               pack_ref=p, action_ref=action["ref"], trigger_ref=trigger["ref"],
                               rule_ref=rule["ref"])


def assert_list_envelope(body: dict) -> None:
    assert isinstance(body, dict), body
    assert isinstance(body.get("items"), list), f"no items array: {body}"
    assert body.get("data") == body["items"], "list 'data' must be the same array as 'items'"
    pag = body.get("pagination")
    assert isinstance(pag, dict), f"no pagination object: {body}"
    for f in PAGINATION_FIELDS:
        assert f in pag, f"pagination lacks {f!r}: {pag}"
    for f in ("page", "page_size", "total_items", "total_pages"):
        assert isinstance(pag[f], int) and not isinstance(pag[f], bool), f"pagination.{f} not int: {pag}"
    for f in ("has_previous", "has_next"):
        assert isinstance(pag[f], bool), f"pagination.{f} not bool: {pag}"


def assert_timestamps(obj: dict, fields: Iterable[str] = ("created", "updated")) -> None:
    for f in fields:
        assert f in obj, f"{f!r} missing from {obj}"
        v = obj[f]
        assert isinstance(v, str) and TIMESTAMP_RE.match(v), f"{f}={v!r} is not RFC 3339 UTC with ms and Z"


class Flood:
    """`clients` threads, each posting the next webhook to `url` as soon as the previous one is answered
    (a closed-loop overload, as in issue 12). start(), then finish() to stop and join."""

    def __init__(self, url: str, clients: int = 8):
        self.url = url
        self.accepted: list[int] = []  # event ids of 200 answers
        self.failed: list[str] = []    # answers other than 200
        self.errors: list[str] = []    # no answer (connection refused or reset)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _run(self, client: int) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                r = session.post(self.url, json={"payload": {"client": client, "n": n}}, timeout=30)
            except requests.RequestException as e:
                with self.lock:
                    self.errors.append(repr(e))
                return
            with self.lock:
                if r.status_code == 200:
                    self.accepted.append(r.json()["data"]["event_id"])
                else:
                    self.failed.append(f"{r.status_code} {r.text[:200]}")

    def start(self) -> "Flood":
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)
