"""Identities and roles (API.md §16.1, part of issue 15): CRUD without password material in any
answer, freeze/unfreeze (a frozen identity's tokens stop working at once), roles on identities and
on permission sets granting the set's rights, and the identities/permissions rights they need."""
from __future__ import annotations

from attune_e2e import expect, expect_error, random_password, uid


def test_identity_crud_and_freeze(server, api, anon):
    login = f"ident_{uid()}"
    password = random_password(16)
    created = expect(api.post("/api/v1/identities", json={"login": login, "password": password,
                                                          "display_name": "Ident", "attributes": {"team": "a"}}),
                     201)["data"]
    assert created["login"] == login and created["attributes"] == {"team": "a"}
    assert not any("password" in k for k in created), created
    expect_error(api.post("/api/v1/identities", json={"login": login, "password": password}), 409)
    expect_error(api.post("/api/v1/identities", json={"login": "x"}), 422)
    for path in (f"/api/v1/identities/{created['id']}", f"/api/v1/identities/{login}"):
        got = api.get_data(path)
        assert got["id"] == created["id"] and "password_hash" not in got
    listed = api.items("/api/v1/identities", page_size=200)
    assert created["id"] in [i["id"] for i in listed]
    assert all("password_hash" not in i for i in listed)

    user = server.client()
    user.login(login, password)
    expect(user.get("/auth/me"), 200)
    expect_error(user.get("/api/v1/identities"), 403)  # no identities:read

    expect(api.put(f"/api/v1/identities/{created['id']}", json={"frozen": True}), 200)
    expect_error(user.get("/auth/me"), 401)  # the token stops working at once
    expect_error(anon.post("/auth/login", json={"login": login, "password": password}), 401)
    expect(api.put(f"/api/v1/identities/{created['id']}", json={"frozen": False}), 200)
    expect(user.get("/auth/me"), 200)

    me = api.get_data("/auth/me")
    expect_error(api.delete(f"/api/v1/identities/{me['id']}"), 400)
    expect(api.delete(f"/api/v1/identities/{created['id']}"), 200)
    expect_error(api.get(f"/api/v1/identities/{created['id']}"), 404)
    expect_error(user.get("/auth/me"), 401)


def test_roles_grant_the_sets_bound_to_them(server, api):
    login, password = f"role_{uid()}", random_password(16)
    ident = expect(api.post("/api/v1/identities", json={"login": login, "password": password}), 201)["data"]
    user = server.client()
    user.login(login, password)
    role = f"auditor-{uid(6)}"
    set_ref = f"audit_{uid()}"
    expect(api.post("/api/v1/permissions/sets",
                    json={"ref": set_ref, "grants": [{"resource": "identities", "actions": ["read"]}]}), 201)
    expect(api.post(f"/api/v1/permissions/sets/{set_ref}/roles", json={"role": role}), 200)
    expect_error(user.get("/api/v1/identities"), 403)
    with_role = expect(api.post(f"/api/v1/identities/{ident['id']}/roles", json={"role": role}), 200)["data"]
    assert with_role["roles"] == [role]
    assert user.items("/api/v1/identities", page_size=5)  # identities:read through the role
    assert {"resource": "identities", "actions": ["read"]} in user.get_data("/auth/me")["effective_permissions"]
    expect(api.delete(f"/api/v1/identities/{ident['id']}/roles/{role}"), 200)
    expect_error(user.get("/api/v1/identities"), 403)
    expect_error(api.delete(f"/api/v1/identities/{ident['id']}/roles/{role}"), 404)
    expect_error(api.post(f"/api/v1/identities/{ident['id']}/roles", json={"role": "bad role!"}), 422)
    expect_error(user.post(f"/api/v1/identities/{ident['id']}/roles", json={"role": role}), 403)
