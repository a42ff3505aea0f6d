"""Helpers shared by the datastore scenarios (T1.6, T2.3, T3.20)."""
from __future__ import annotations

from pathlib import Path

from attune_e2e import Client, expect, random_password, uid


def new_user(server, admin: Client | None = None, *set_refs: str) -> Client:
    """A freshly self-registered identity with its own access token, holding no grants unless `admin`
    assigns it `set_refs` (e.g. "core.editor": self-registered identities may not create anything)."""
    anon = server.client()
    login = f"u{uid(8)}"
    data = expect(anon.post("/auth/register", json={"login": login, "password": random_password(16)}),
                  200)["data"]
    c = server.client(data["access_token"])
    c.user = data["user"]
    for ref in set_refs:
        expect(admin.post("/api/v1/permissions/assignments",
                          json={"identity_id": c.user["id"], "permission_set_ref": ref}), 201)
    return c


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under `root` whose bytes contain `needle` (UTF-8)."""
    hits = []
    raw = needle.encode()
    for p in Path(root).rglob("*"):
        if not p.is_file():
            continue
        try:
            if raw in p.read_bytes():
                hits.append(str(p))
        except OSError:
            continue
    return hits


def secret_value(prefix: str = "s3cr3t") -> str:
    return f"{prefix}-{uid(12)}-{uid(12)}"
