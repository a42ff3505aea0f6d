"""T1.6 — Key-value store (SCENARIOS.md), API.md §14: read/write, nonexistent key, multiple values,
encrypted values (and encryption at rest), TTL expiry, update, complex JSON; identity keys stay with
their owner (T1.7)."""
from __future__ import annotations

import time

from attune_e2e import assert_list_envelope, assert_timestamps, expect, expect_error, parse_ts, uid
from datastore_util import files_containing, new_user, secret_value


def create_key(api, local_ref, value, **fields):
    body = {"local_ref": local_ref, "value": value}
    body.update(fields)
    return expect(api.post("/api/v1/keys", json=body), 201)["data"]


def test_basic_read_write(api):
    local = f"k_{uid()}"
    key = create_key(api, local, "hello", encrypted=False)
    assert key["ref"] == f"system.{local}"
    assert key["local_ref"] == local
    assert key["owner_type"] == "system"
    assert key["encrypted"] is False
    assert key["value"] == "hello"
    assert key["expires_at"] is None
    assert "value_sealed" not in key and "rev" not in key
    assert_timestamps(key)
    # By local ref (a segment without '.' means system.<segment>), canonical ref and id.
    for segment in (local, f"system.{local}", str(key["id"])):
        got = api.get_data(f"/api/v1/keys/{segment}")
        assert got["value"] == "hello", (segment, got)
        assert got["id"] == key["id"]


def test_nonexistent_key_is_404(api):
    expect_error(api.get(f"/api/v1/keys/nope_{uid()}"), 404, "NOT_FOUND")
    expect_error(api.get(f"/api/v1/keys/pack.nopack_{uid()}.x"), 404, "NOT_FOUND")
    expect_error(api.put(f"/api/v1/keys/nope_{uid()}", json={"value": 1}), 404, "NOT_FOUND")
    expect_error(api.delete(f"/api/v1/keys/nope_{uid()}"), 404, "NOT_FOUND")


def test_validation_and_duplicates(api):
    local = f"d_{uid()}"
    create_key(api, local, 1)
    expect_error(api.post("/api/v1/keys", json={"local_ref": local, "value": 2}), 409, "CONFLICT")
    for bad in ("Upper", "a.b", "", "x" * 64):
        expect_error(api.post("/api/v1/keys", json={"local_ref": bad, "value": 1}), 422, "VALIDATION_ERROR")
    expect_error(api.post("/api/v1/keys", json={"local_ref": f"v_{uid()}"}), 422, "VALIDATION_ERROR")
    expect_error(api.post("/api/v1/keys", json={"local_ref": f"t_{uid()}", "value": 1, "ttl_seconds": 0}),
                 422, "VALIDATION_ERROR")
    expect_error(api.post("/api/v1/keys", json={"local_ref": f"o_{uid()}", "value": 1, "owner_type": "team"}),
                 422, "VALIDATION_ERROR")
    expect_error(api.post("/api/v1/keys", json={"local_ref": f"p_{uid()}", "value": 1, "owner_type": "pack",
                                                "owner_pack_ref": f"missing_{uid()}"}), 404, "NOT_FOUND")


def test_multiple_values_and_lists(api):
    pack = api.create_pack()
    locals_ = [f"m{i}_{uid(6)}" for i in range(5)]
    for i, local in enumerate(locals_):
        create_key(api, local, {"i": i}, owner_type="pack", owner_pack_ref=pack["ref"])
    for i, local in enumerate(locals_):
        got = api.get_data(f"/api/v1/keys/pack.{pack['ref']}.{local}")
        assert got["value"] == {"i": i}
        assert got["owner_type"] == "pack" and got["owner"] == pack["ref"]
        assert got["owner_pack_ref"] == pack["ref"] and got["owner_pack"] == pack["id"]
    body = api.list("/api/v1/keys", owner_type="pack", owner=pack["ref"], page_size=2)
    assert_list_envelope(body)
    assert body["pagination"]["total_items"] == 5
    assert body["pagination"]["total_pages"] == 3
    assert len(body["items"]) == 2 and body["pagination"]["has_next"] is True
    rows = api.items("/api/v1/keys", owner_type="pack", owner=pack["ref"])
    assert sorted(r["local_ref"] for r in rows) == sorted(locals_)
    assert all("value" not in r for r in rows), "lists never include values"
    # Newest first by default; order=asc reverses.
    desc = [r["local_ref"] for r in rows]
    asc = [r["local_ref"] for r in api.items("/api/v1/keys", owner_type="pack", owner=pack["ref"], order="asc")]
    assert asc == list(reversed(desc))
    expect_error(api.get("/api/v1/keys", params={"owner_type": "team"}), 400, "BAD_REQUEST")
    # Action keys: owned by an action of the pack, listed under it, deleted with the action.
    act = api.create_action(f"{pack['ref']}.act", "true")
    akey = create_key(api, "token", "t", owner_type="action", owner_action_ref=act["ref"], encrypted=False)
    assert akey["ref"] == f"action.{act['ref']}.token"
    assert akey["owner_action"] == act["id"] and akey["owner_pack_ref"] == pack["ref"]
    assert [r["ref"] for r in api.items("/api/v1/keys", owner_type="action", owner=act["ref"])] == [akey["ref"]]
    expect(api.delete(f"/api/v1/actions/{act['ref']}"), 200)
    expect_error(api.get(f"/api/v1/keys/{akey['ref']}"), 404)
    # Deleting a pack removes its keys.
    expect(api.delete(f"/api/v1/packs/{pack['ref']}"), 200)
    expect_error(api.get(f"/api/v1/keys/pack.{pack['ref']}.{locals_[0]}"), 404)


def test_encrypted_values_at_rest_and_without_decrypt_right(server, api):
    secret = secret_value()
    local = f"enc_{uid()}"
    key = create_key(api, local, {"password": secret, "port": 5432})  # encrypted by default
    assert key["encrypted"] is True
    assert key["value"] == {"password": secret, "port": 5432}
    assert api.get_data(f"/api/v1/keys/{local}")["value"] == {"password": secret, "port": 5432}
    # Without keys:decrypt the value reads null; listing never shows it.
    other = new_user(server, api, "core.viewer")  # keys:read, no keys:decrypt
    got = other.get_data(f"/api/v1/keys/{local}")
    assert got["encrypted"] is True and got["value"] is None, got
    assert secret not in other.get(f"/api/v1/keys", params={"page_size": 100}).text
    # Nowhere in plaintext: not in any file of the data directory, not in the server's log.
    assert files_containing(server.data_dir, secret) == []
    assert secret not in server.log_path.read_text(errors="replace")
    # A plaintext key is stored as such (the search above can find things).
    plain = secret_value("plain")
    create_key(api, f"pl_{uid()}", plain, encrypted=False)
    assert files_containing(server.data_dir, plain) != []


def test_ttl_expiry(api):
    local = f"ttl_{uid()}"
    key = create_key(api, local, "short-lived", encrypted=False, ttl_seconds=2)
    deadline = parse_ts(key["expires_at"]).timestamp()
    assert abs(deadline - (parse_ts(key["created"]).timestamp() + 2)) < 0.01, key
    assert api.get_data(f"/api/v1/keys/{local}")["value"] == "short-lived"
    # Gone from GET and lists within one second of its deadline.
    while time.time() < deadline - 0.3:
        time.sleep(0.05)
    api.wait_for(lambda: api.get(f"/api/v1/keys/{local}").status_code == 404, timeout=deadline + 1.0 - time.time(),
                 desc="key gone within 1 s of its deadline")
    assert local not in {r["local_ref"] for r in api.items("/api/v1/keys", owner_type="system")}
    # The ref is reusable.
    again = create_key(api, local, "second life", encrypted=False)
    assert again["expires_at"] is None
    assert api.get_data(f"/api/v1/keys/{local}")["value"] == "second life"


def test_ttl_on_update(api):
    local = f"ttlu_{uid()}"
    create_key(api, local, 1, ttl_seconds=3600)
    got = expect(api.put(f"/api/v1/keys/{local}", json={"value": 2}), 200)["data"]
    assert got["expires_at"] is not None, "absence keeps the deadline"
    got = expect(api.put(f"/api/v1/keys/{local}", json={"ttl_seconds": None}), 200)["data"]
    assert got["expires_at"] is None, "null clears it"
    got = expect(api.put(f"/api/v1/keys/{local}", json={"ttl_seconds": 1}), 200)["data"]
    assert got["expires_at"] is not None
    api.wait_for(lambda: api.get(f"/api/v1/keys/{local}").status_code == 404, timeout=5,
                 desc="key expired after its TTL was set by an update")


def test_update(api):
    local = f"upd_{uid()}"
    create_key(api, local, "v1", encrypted=False, name="Original")
    got = expect(api.put(f"/api/v1/keys/{local}", json={"value": "v2", "name": "Renamed"}), 200)["data"]
    assert got["value"] == "v2" and got["name"] == "Renamed"
    assert api.get_data(f"/api/v1/keys/{local}")["value"] == "v2"
    # Turning encryption on keeps the value.
    got = expect(api.put(f"/api/v1/keys/{local}", json={"encrypted": True}), 200)["data"]
    assert got["encrypted"] is True and got["value"] == "v2"
    assert expect(api.delete(f"/api/v1/keys/{local}"), 200)["success"] is True
    expect_error(api.get(f"/api/v1/keys/{local}"), 404)


def test_complex_json_values(api):
    values = [
        {"nested": {"list": [1, 2.5, "three", None, True, {"deep": ["x"]}]}, "unicode": "héllo ✓"},
        [1, [2, [3]]],
        42,
        3.25,
        False,
        None,
        "",
        "multi\nline \"quoted\" 'text'",
    ]
    for i, v in enumerate(values):
        for encrypted in (False, True):
            local = f"cx{i}{int(encrypted)}_{uid(6)}"
            create_key(api, local, v, encrypted=encrypted)
            assert api.get_data(f"/api/v1/keys/{local}")["value"] == v, (v, encrypted)


def test_identity_keys_belong_to_their_owner(server, api):
    # alice reads her own encrypted key back: keys:decrypt, which among the built-in sets only core.admin
    # holds (and which reveals nobody else's keys, API.md §16.3).
    alice, bob = new_user(server, api, "core.admin"), new_user(server, api, "core.editor")
    secret = secret_value("alice")
    key = expect(alice.post("/api/v1/keys", json={"local_ref": "token", "value": secret,
                                                  "owner_type": "identity"}), 201)["data"]
    login = alice.user["login"]
    assert key["ref"] == f"identity.{login}.token"
    assert key["owner_identity"] == alice.user["id"]
    assert alice.get_data(f"/api/v1/keys/identity.{login}.token")["value"] == secret
    # Another tenant (and even the administrator) gets 404 and does not see it listed.
    for other in (bob, api):
        expect_error(other.get(f"/api/v1/keys/identity.{login}.token"), 404, "NOT_FOUND")
        expect_error(other.put(f"/api/v1/keys/identity.{login}.token", json={"value": 1}), 404)
        expect_error(other.delete(f"/api/v1/keys/identity.{login}.token"), 404)
        refs = {r["ref"] for r in other.items("/api/v1/keys", owner_type="identity")}
        assert f"identity.{login}.token" not in refs
    # Nobody creates identity keys for somebody else.
    expect_error(bob.post("/api/v1/keys", json={"local_ref": "x", "value": 1, "owner_type": "identity",
                                                "owner_identity_login": login}), 403)
    # Pack keys follow the pack's tenant.
    pack = alice.create_pack()
    expect(alice.post("/api/v1/keys", json={"local_ref": "cfg", "value": "a", "owner_type": "pack",
                                            "owner_pack_ref": pack["ref"]}), 201)
    assert alice.get_data(f"/api/v1/keys/pack.{pack['ref']}.cfg")["value"] == "a"
    expect_error(bob.get(f"/api/v1/keys/pack.{pack['ref']}.cfg"), 404)
