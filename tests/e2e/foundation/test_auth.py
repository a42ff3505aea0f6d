"""Authentication (API.md §4, §5, §19)."""
from __future__ import annotations

import time

import pytest

from attune_e2e import (describe, expect, expect_error, is_id, jwt_claims, jwt_header, mint_jwt,
                        random_password, uid)


def _assert_token_response(data, login):
    assert set(("access_token", "refresh_token", "token_type", "expires_in", "user")) <= set(data), data
    assert data["token_type"] == "Bearer"
    assert isinstance(data["access_token"], str) and data["access_token"].count(".") == 2
    assert isinstance(data["refresh_token"], str) and data["refresh_token"].count(".") == 2
    assert isinstance(data["expires_in"], int) and data["expires_in"] == 3600, data
    user = data["user"]
    assert is_id(user["id"]), user
    assert user["login"] == login
    assert "display_name" in user
    return user


def test_health_unauthenticated(anon):
    resp = anon.get("/health")
    assert expect(resp, 200) == {"status": "ok"}


def test_health_variants(anon):
    assert anon.get("/health/live").status_code == 200
    assert anon.get("/health/ready").status_code == 200
    detailed = expect(anon.get("/health/detailed"), 200)
    assert detailed["status"] == "ok", detailed
    assert detailed["database"] == "ok", detailed
    assert isinstance(detailed["version"], str) and detailed["version"], detailed


def test_login_ok(server, anon):
    body = expect(anon.post("/auth/login", json={"login": server.admin_login, "password": server.admin_password}),
                  200)
    user = _assert_token_response(body["data"], server.admin_login)

    access = body["data"]["access_token"]
    assert jwt_header(access)["alg"] == "HS256"
    claims = jwt_claims(access)
    assert claims["sub"] == str(user["id"]), "sub is the identity id as a string"
    assert claims["login"] == server.admin_login
    assert claims["token_type"] == "access"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 120
    refresh_claims = jwt_claims(body["data"]["refresh_token"])
    assert refresh_claims["token_type"] == "refresh"
    assert refresh_claims["sub"] == str(user["id"])
    assert refresh_claims["exp"] - refresh_claims["iat"] == 7 * 24 * 3600


def test_bad_password_401(server, anon):
    resp = anon.post("/auth/login", json={"login": server.admin_login, "password": "definitely-wrong"})
    expect_error(resp, 401, "UNAUTHORIZED")
    assert "access_token" not in resp.text


def test_unknown_login_401(anon):
    expect_error(anon.post("/auth/login", json={"login": f"nobody_{uid()}", "password": "whatever123"}),
                 401, "UNAUTHORIZED")


@pytest.mark.parametrize("path", ["/api/v1/packs", "/api/v1/actions", "/api/v1/executions", "/api/v1/events",
                                  "/api/v1/packs/core", "/auth/me"])
def test_no_token_401(anon, path):
    expect_error(anon.get(path), 401, "UNAUTHORIZED")


def test_no_token_on_writes_401_and_nothing_written(api, anon):
    ref = f"e2e_{uid()}"
    expect_error(anon.post("/api/v1/packs", json={"ref": ref, "label": "x", "version": "1"}), 401, "UNAUTHORIZED")
    expect_error(api.get(f"/api/v1/packs/{ref}"), 404, "NOT_FOUND")
    expect_error(anon.post("/api/v1/executions/execute", json={"action_ref": "core.noop"}), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("header", [
    "Bearer garbage",
    "Bearer ",
    "Bearer a.b.c",
    "Basic YWRtaW46YWRtaW4=",
    "garbage",
])
def test_garbage_token_401(anon, header):
    expect_error(anon.get("/api/v1/packs", headers={"Authorization": header}), 401, "UNAUTHORIZED")


def test_tampered_token_401(api):
    head, body, sig = api.token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    expect_error(api.get("/api/v1/packs", headers={"Authorization": f"Bearer {head}.{body}.{flipped}"}),
                 401, "UNAUTHORIZED")


def test_externally_minted_token_accepted(server, api):
    now = int(time.time())
    user_id = api.user["id"]
    good = mint_jwt(server.jwt_secret, {"sub": str(user_id), "login": server.admin_login,
                                        "token_type": "access", "iat": now, "exp": now + 600})
    expect(api.get("/api/v1/packs", headers={"Authorization": f"Bearer {good}"}), 200)


@pytest.mark.parametrize("case", ["wrong-secret", "expired", "refresh-type", "unknown-sub", "numeric-sub-missing"])
def test_invalid_minted_tokens_401(server, api, case):
    now = int(time.time())
    claims = {"sub": str(api.user["id"]), "login": server.admin_login, "token_type": "access",
              "iat": now, "exp": now + 600}
    secret = server.jwt_secret
    if case == "wrong-secret":
        secret = secret + "x"
    elif case == "expired":
        claims.update(iat=now - 7200, exp=now - 3600)
    elif case == "refresh-type":
        claims["token_type"] = "refresh"
    elif case == "unknown-sub":
        claims["sub"] = str(2**52 + 12345)
    elif case == "numeric-sub-missing":
        del claims["sub"]
    token = mint_jwt(secret, claims)
    expect_error(api.get("/api/v1/packs", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHORIZED")


def test_refresh(server, anon):
    tokens = expect(anon.post("/auth/login", json={"login": server.admin_login,
                                                   "password": server.admin_password}), 200)["data"]
    refreshed = expect(anon.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 200)["data"]
    _assert_token_response(refreshed, server.admin_login)
    assert jwt_claims(refreshed["access_token"])["token_type"] == "access"
    expect(anon.get("/api/v1/packs", headers={"Authorization": f"Bearer {refreshed['access_token']}"}), 200)

    # A refresh token is not an access token ...
    expect_error(anon.get("/api/v1/packs", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}),
                 401, "UNAUTHORIZED")
    # ... and an access token is not a refresh token.
    expect_error(anon.post("/auth/refresh", json={"refresh_token": tokens["access_token"]}), 401, "UNAUTHORIZED")
    expect_error(anon.post("/auth/refresh", json={"refresh_token": "garbage"}), 401, "UNAUTHORIZED")


def test_register_me_and_login(anon):
    login = f"user_{uid()}"
    password = random_password(16)
    body = expect(anon.post("/auth/register", json={"login": login, "password": password,
                                                    "display_name": "E2E User"}), 200)
    user = _assert_token_response(body["data"], login)
    assert user["display_name"] == "E2E User"

    me = expect(anon.get("/auth/me", headers={"Authorization": f"Bearer {body['data']['access_token']}"}), 200)
    me = me["data"]
    assert me["id"] == user["id"]
    assert me["login"] == login
    assert me["display_name"] == "E2E User"
    assert me["auth_provider"] == "local"
    assert me["is_local"] is True
    assert isinstance(me["can_change_password"], bool)
    assert isinstance(me["effective_permissions"], list)
    assert isinstance(me["assigned_permission_set_refs"], list)
    assert not {"password", "password_hash"} & set(me), "never password material"

    again = expect(anon.post("/auth/login", json={"login": login, "password": password}), 200)["data"]
    assert again["user"]["id"] == user["id"]
    expect_error(anon.post("/auth/login", json={"login": login, "password": password + "x"}), 401, "UNAUTHORIZED")


def test_new_user_sees_core_pack(anon):
    login = f"user_{uid()}"
    tok = expect(anon.post("/auth/register", json={"login": login, "password": random_password(12)}),
                 200)["data"]["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    packs = expect(anon.get("/api/v1/packs", headers=h, params={"page_size": 100}), 200)["items"]
    assert "core" in [p["ref"] for p in packs]
    expect(anon.get("/api/v1/packs/core", headers=h), 200)
    expect(anon.get("/api/v1/actions/core.echo", headers=h), 200)


def test_me_admin(server, api):
    me = api.get_data("/auth/me")
    assert me["login"] == server.admin_login
    assert "core.admin" in me["assigned_permission_set_refs"], me
    assert me["effective_permissions"], me
    by_resource = {e["resource"]: set(e["actions"]) for e in me["effective_permissions"]
                   if "constraints" not in e}
    assert {"read", "manage"} <= by_resource.get("permissions", set()), me  # core.admin's rights
    assert "decrypt" in by_resource.get("keys", set()), me


def test_register_duplicate_login_409(server, anon):
    login = f"user_{uid()}"
    expect(anon.post("/auth/register", json={"login": login, "password": random_password(12)}), 200)
    expect_error(anon.post("/auth/register", json={"login": login, "password": random_password(12)}),
                 409, "CONFLICT")
    expect_error(anon.post("/auth/register", json={"login": server.admin_login, "password": random_password(12)}),
                 409, "CONFLICT")


@pytest.mark.parametrize("body,field", [
    ({"password": "short"}, "password"),
    ({"password": "x" * 129}, "password"),
    ({"login": "ab"}, "login"),
    ({"login": "a" * 256}, "login"),
])
def test_register_validation_422(anon, body, field):
    doc = {"login": f"user_{uid()}", "password": random_password(12)}
    doc.update(body)
    err = expect_error(anon.post("/auth/register", json=doc), 422, "VALIDATION_ERROR")
    assert field in err["details"]["fields"], err
    # Nothing written: the login does not exist.
    expect_error(anon.post("/auth/login", json={"login": doc["login"], "password": doc["password"]}),
                 401, "UNAUTHORIZED")


def test_register_missing_fields_422(anon):
    err = expect_error(anon.post("/auth/register", json={"login": f"user_{uid()}"}), 422, "VALIDATION_ERROR")
    assert "password" in err["details"]["fields"], err


def test_register_malformed_json_400(anon):
    resp = anon.post("/auth/register", data=b'{"login": "x"', headers={"Content-Type": "application/json"})
    expect_error(resp, 400, "BAD_REQUEST")


def test_short_password_boundaries(anon):
    # 8 is the minimum and is accepted.
    expect(anon.post("/auth/register", json={"login": f"user_{uid()}", "password": "12345678"}), 200)
    resp = anon.post("/auth/register", json={"login": f"user_{uid()}", "password": "1234567"})
    assert resp.status_code == 422, describe(resp)
