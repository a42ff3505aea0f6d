"""Tenants for the multi-tenancy and RBAC tests (API.md §16, §17): self-registered identities that the
bootstrap admin grants built-in or custom permission sets, and a small notifier WebSocket client.

A "tenant" is an identity that registered itself (POST /auth/register → 200, no grants) and was then
assigned sets by the admin (POST /api/v1/permissions/assignments → 201). Its packs are its own
(`owner_identity`), and nobody else — not even a `core.admin` holder — may see them (§16.3).
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Optional

import websocket

from attune_e2e import Client, expect, random_password, uid

LIST_ALL = {"page_size": 100}


def register(server, prefix: str = "tenant") -> Client:
    """A freshly self-registered identity with no grants; `client.user` = {id, login, display_name},
    `client.password` its password."""
    login = f"{prefix}_{uid(8)}"
    password = random_password(16)
    data = expect(server.client().post("/auth/register", json={"login": login, "password": password}),
                  200)["data"]
    c = server.client(data["access_token"])
    c.refresh_token = data["refresh_token"]
    c.user = data["user"]
    c.password = password
    return c


def assign(admin: Client, who: Client | int, *set_refs: str) -> list[dict]:
    """The admin assigns each set to the identity (→ 201); returns the assignments."""
    identity_id = who if isinstance(who, int) else who.user["id"]
    return [expect(admin.post("/api/v1/permissions/assignments",
                              json={"identity_id": identity_id, "permission_set_ref": ref}), 201)["data"]
            for ref in set_refs]


def tenant(server, admin: Client, *set_refs: str, prefix: str = "tenant") -> Client:
    """register() + assign(): a tenant holding `set_refs` (e.g. "core.editor")."""
    c = register(server, prefix)
    assign(admin, c, *set_refs)
    return c


def custom_set(admin: Client, grants: list[dict], prefix: str = "set") -> str:
    """Creates an ownerless permission set with `grants`; returns its ref."""
    ref = f"{prefix}_{uid(8)}"
    expect(admin.post("/api/v1/permissions/sets", json={"ref": ref, "label": ref, "grants": grants}), 201)
    return ref


def total(client: Client, path: str, **params) -> int:
    """pagination.total_items of a list as `client` sees it."""
    body = expect(client.get(path, params=params or None), 200)
    return body["pagination"]["total_items"]


def listed(client: Client, path: str, key: str = "id", **params) -> set:
    """The `key` of every row on the first page (page_size 100, newest first) of a list."""
    params.setdefault("page_size", 100)
    return {row[key] for row in client.items(path, **params)}


def assert_hidden_from_list(client: Client, path: str, ids: Iterable, key: str = "id", **params) -> None:
    """None of `ids` on the list (newest first, so rows just created would be on page 1), and the
    total counts only rows that are listed: invisible rows are absent from totals too."""
    params.setdefault("page_size", 100)
    body = expect(client.get(path, params=params), 200)
    rows = body["items"]
    got = {r[key] for r in rows}
    leaked = got & set(ids)
    assert not leaked, f"{path} {params} lists another tenant's rows {sorted(map(str, leaked))}"
    if len(rows) < params["page_size"]:
        assert body["pagination"]["total_items"] == len(rows), \
            f"{path} {params}: total_items {body['pagination']['total_items']} counts rows not listed ({len(rows)})"


# ------------------------------------------------------------------------------- notifier client

class Notifier:
    """One notifier WebSocket connection (API.md §17) authenticated with `token`."""

    def __init__(self, server, token: str, timeout: float = 20):
        self.ws = websocket.create_connection(server.ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                              timeout=timeout)
        welcome = json.loads(self.ws.recv())
        assert welcome["type"] == "welcome", welcome
        self.frames: list[dict] = []  # every notification received so far
        self.errors: list[dict] = []  # every error frame received so far

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, doc: dict) -> None:
        self.ws.send(json.dumps(doc))

    def _recv(self, timeout: float) -> Optional[dict]:
        self.ws.settimeout(timeout)
        try:
            frame = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        (self.errors if frame.get("type") == "error" else self.frames).append(frame)
        return frame

    def barrier(self) -> dict:
        """Client messages are handled in order and only problems are answered (§17.2): the answer to an
        unknown message type proves every earlier message (e.g. a subscribe) was handled. Returns the
        first error frame received since the call (normally the barrier's own)."""
        n = len(self.errors)
        self.send({"type": "sync"})
        deadline = time.monotonic() + 20
        while len(self.errors) == n:
            assert time.monotonic() < deadline, "no answer to an unknown message type within 20 s"
            self._recv(max(0.1, deadline - time.monotonic()))
        return self.errors[n]

    def subscribe(self, filter_: str) -> Optional[dict]:
        """Subscribes; returns the error frame the subscription produced, or None if it was accepted."""
        n = len(self.errors)
        self.send({"type": "subscribe", "filter": filter_})
        first = self.barrier()
        if first == {"type": "error", "message": "Unknown message type 'sync'"}:
            return None
        # The subscription's own error came first; consume the barrier's answer too.
        while len(self.errors) < n + 2:
            self._recv(5)
        return first

    def accept(self, filter_: str) -> None:
        """Subscribes and fails unless the subscription was accepted (no error frame)."""
        err = self.subscribe(filter_)
        if err is not None:
            raise AssertionError(f"subscribe {filter_!r} refused: {err}")

    def wait(self, pred: Callable[[dict], bool], timeout: float = 20, desc: str = "notification") -> dict:
        """The first notification (already received or arriving within `timeout`) satisfying `pred`."""
        for f in self.frames:
            if pred(f):
                return f
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self._recv(max(0.05, deadline - time.monotonic()))
            if f is not None and f.get("type") == "notification" and pred(f):
                return f
        raise AssertionError(f"no {desc} within {timeout}s; received {len(self.frames)} frames: "
                             f"{self.frames[-10:]}")

    def about(self, entity_type: str, entity_id: Any) -> list[dict]:
        return [f for f in self.frames if f.get("entity_type") == entity_type and f.get("entity_id") == entity_id]
