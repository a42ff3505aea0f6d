"""Permission sets and assignments (API.md §16.1, first part of issue 15): the built-in core.* sets,
custom sets with validated grants, assignments to identities, and /auth/me's effective
permissions; reading needs permissions:read, changing permissions:manage."""
from __future__ import annotations

from attune_e2e import expect, expect_error, random_password, uid


def new_user(server, anon):
    login = f"perm_{uid()}"
    data = expect(anon.post("/auth/register", json={"login": login, "password": random_password(16)}), 200)["data"]
    return server.client(data["access_token"]), data["user"]["id"]


def test_builtin_sets_come_first_and_cannot_change(api):
    sets = api.items("/api/v1/permissions/sets", page_size=100)
    assert [s["ref"] for s in sets[:4]] == ["core.admin", "core.editor", "core.executor", "core.viewer"]
    viewer = api.get_data("/api/v1/permissions/sets/core.viewer")
    assert all(g["actions"] == ["read"] for g in viewer["grants"]), viewer
    assert api.get_data(f"/api/v1/permissions/sets/{viewer['id']}")["ref"] == "core.viewer"
    expect_error(api.put("/api/v1/permissions/sets/core.viewer", json={"label": "x"}), 400)
    expect_error(api.delete("/api/v1/permissions/sets/core.admin"), 400)
    expect_error(api.post("/api/v1/permissions/sets", json={"ref": "core.mine", "grants": []}), 422)


def test_custom_set_assignment_and_effective_permissions(server, api, anon):
    user, user_id = new_user(server, anon)
    me = user.get_data("/auth/me")
    assert me["effective_permissions"] == [] and me["assigned_permission_set_refs"] == []
    expect_error(user.get("/api/v1/permissions/sets"), 403)
    expect_error(user.post("/api/v1/permissions/sets", json={"ref": f"s_{uid()}", "grants": []}), 403)

    ref = f"auditors_{uid()}"
    grants = [{"resource": "permissions", "actions": ["read"]},
              {"resource": "keys", "actions": ["read"], "constraints": {"owner_types": ["pack"]}}]
    created = expect(api.post("/api/v1/permissions/sets",
                              json={"ref": ref, "label": "Auditors", "grants": grants}), 201)["data"]
    assert created["grants"][1]["constraints"] == {"owner_types": ["pack"]}
    assert created["pack_ref"] is None  # an ownerless set: pack filters and pack deletes skip it
    assert ref not in [s["ref"] for s in api.items("/api/v1/permissions/sets", pack_ref="core", page_size=100)]
    other = api.create_pack()
    expect(api.delete(f"/api/v1/packs/{other['ref']}"), 200)
    assert api.get_data(f"/api/v1/permissions/sets/{ref}")["id"] == created["id"]
    expect_error(api.post("/api/v1/permissions/sets", json={"ref": ref, "grants": []}), 409)
    bad = expect_error(api.post("/api/v1/permissions/sets",
                                json={"ref": f"b_{uid()}", "grants": [{"resource": "packs", "actions": "read"}]}), 422)
    assert "grants[0].actions" in str(bad["details"]), bad

    assignment = expect(api.post("/api/v1/permissions/assignments",
                                 json={"identity_id": user_id, "permission_set_ref": ref}), 201)["data"]
    expect_error(api.post("/api/v1/permissions/assignments",
                          json={"identity_id": user_id, "permission_set_ref": ref}), 409)
    expect_error(api.post("/api/v1/permissions/assignments",
                          json={"identity_id": user_id, "permission_set_ref": "nope.none"}), 404)
    me = user.get_data("/auth/me")
    assert me["assigned_permission_set_refs"] == [ref], me
    assert {"resource": "permissions", "actions": ["read"]} in me["effective_permissions"], me
    assert user.items("/api/v1/permissions/sets", page_size=100)  # permissions:read now
    listed = api.items("/api/v1/permissions/assignments", identity_id=user_id)
    assert [a["id"] for a in listed] == [assignment["id"]]

    # A changed set changes what its holders may do at once.
    expect(api.put(f"/api/v1/permissions/sets/{ref}", json={"grants": [{"resource": "events", "actions": ["read"]}]}), 200)
    assert user.get_data("/auth/me")["effective_permissions"] == [{"resource": "events", "actions": ["read"]}]
    expect_error(user.get("/api/v1/permissions/sets"), 403)

    expect(api.delete(f"/api/v1/permissions/assignments/{assignment['id']}"), 200)
    assert user.get_data("/auth/me")["effective_permissions"] == []
    expect(api.post("/api/v1/permissions/assignments", json={"identity_id": user_id, "permission_set_ref": ref}), 201)
    expect(api.delete(f"/api/v1/permissions/sets/{ref}"), 200)  # its assignments go with it
    assert api.items("/api/v1/permissions/assignments", identity_id=user_id) == []
    expect_error(api.get(f"/api/v1/permissions/sets/{ref}"), 404)
