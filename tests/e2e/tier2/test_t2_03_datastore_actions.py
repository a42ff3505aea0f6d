"""T2.3 — Datastore writes from actions (SCENARIOS.md), API.md §4.2, §11.4, §14, §16.2, §17: an
action writes with its execution token and another reads; two rules communicate through a key (no
workflow); the token's scope and lifetime on REST and on the notifier WebSocket."""
from __future__ import annotations

import hashlib
import json
import time

import websocket

from attune_e2e import expect, expect_error, jwt_claims, mint_jwt, uid
from datastore_util import files_containing, secret_value

CURL = 'curl -sS -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json"'

# The body goes through a pipe (printf is a shell builtin): the value never enters an argv.
WRITER = """printf '%s' "{\\"local_ref\\": \\"$name\\", \\"value\\": \\"$value\\", \\"owner_type\\": \\"$owner_type\\", \
\\"owner_pack_ref\\": \\"$ATTUNE_PACK_REF\\", \\"encrypted\\": $encrypted}" | """ + CURL + \
    """ -o /dev/null -w '%{http_code}' -X POST "$ATTUNE_API_URL/api/v1/keys" --data-binary @-"""
WRITER_SCHEMA = {"name": {"type": "string"}, "value": {"type": "string", "secret": True}}

# Prints the value's SHA-256: a pack key read back is also injected into the reader (it belongs to
# the reader's pack), so its plaintext would rightly be redacted from the stored output.
READER = CURL + """ "$ATTUNE_API_URL/api/v1/keys/$ref" | /usr/bin/python3 -c \
  'import hashlib, json, sys; print(json.dumps({"sha256": hashlib.sha256(json.load(sys.stdin)["data"]["value"].encode()).hexdigest()}))'"""


def test_action_writes_and_another_action_reads(server, api):
    pack = api.create_pack()
    p = pack["ref"]
    writer = api.create_action(f"{p}.writer", WRITER, param_schema=WRITER_SCHEMA)
    reader = api.create_action(f"{p}.reader", READER, output_format="json")
    secret = secret_value("from-action")
    for owner_type, ref_of in (("system", lambda n: n), ("pack", lambda n: f"pack.{p}.{n}")):
        name = f"w_{uid(8)}"
        ex = api.wait_execution(api.execute(writer["ref"], {"name": name, "value": secret,
                                                            "owner_type": owner_type,
                                                            "encrypted": "true"})["id"])
        assert ex["status"] == "completed" and ex["result"]["stdout"] == "201", ex
        # The API sees it (encrypted at rest) ...
        got = api.get_data(f"/api/v1/keys/{ref_of(name)}")
        assert got["value"] == secret and got["encrypted"] is True
        # ... and another action reads it back, decrypted, with its own token.
        ex = api.wait_execution(api.execute(reader["ref"], {"ref": ref_of(name)})["id"])
        assert ex["status"] == "completed", ex
        assert ex["result"]["data"]["sha256"] == hashlib.sha256(secret.encode()).hexdigest(), ex["result"]
    assert files_containing(server.data_dir, secret) == []


def test_execution_token_scope_and_lifetime(server, api, tmp_path):
    pack, other = api.create_pack(), api.create_pack()
    p = pack["ref"]
    expect(api.post("/api/v1/keys", json={"local_ref": "mine", "value": "ok", "owner_type": "pack",
                                          "owner_pack_ref": p}), 201)
    expect(api.post("/api/v1/keys", json={"local_ref": "theirs", "value": "no", "owner_type": "pack",
                                          "owner_pack_ref": other["ref"]}), 201)
    # Another execution, visible to the admin who starts it: the token must not read it.
    other_exec = api.wait_execution(api.execute("core.noop", {})["id"])
    token_file = tmp_path / f"token-{uid()}"
    script = f'''printf %s "$ATTUNE_API_TOKEN" > {token_file}
code() {{ {CURL} -o /dev/null -w '%{{http_code}}' "$@"; echo; }}
echo "own_exec=$(code "$ATTUNE_API_URL/api/v1/executions/$ATTUNE_EXEC_ID")"
echo "own_pack_key=$(code "$ATTUNE_API_URL/api/v1/keys/pack.$ATTUNE_PACK_REF.mine")"
echo "other_pack_key=$(code "$ATTUNE_API_URL/api/v1/keys/pack.{other['ref']}.theirs")"
echo "other_exec=$(code "$ATTUNE_API_URL/api/v1/executions/{other_exec['id']}")"
echo "exec_list=$(code "$ATTUNE_API_URL/api/v1/executions")"
echo "key_list=$(code "$ATTUNE_API_URL/api/v1/keys")"
echo "packs=$(code "$ATTUNE_API_URL/api/v1/packs")"
echo "exec_total=$({CURL} "$ATTUNE_API_URL/api/v1/executions" | grep -o '"total_items":[0-9]*' | cut -d: -f2)"
echo "pack_total=$({CURL} "$ATTUNE_API_URL/api/v1/packs" | grep -o '"total_items":[0-9]*' | cut -d: -f2)"
echo "execute=$(code -X POST "$ATTUNE_API_URL/api/v1/executions/execute" -d '{{"action_ref":"core.noop"}}')"
echo "identity_key=$(code -X POST "$ATTUNE_API_URL/api/v1/keys" -d '{{"local_ref":"x","value":1,"owner_type":"identity"}}')"
echo "foreign_write=$(code -X POST "$ATTUNE_API_URL/api/v1/keys" -d '{{"local_ref":"x","value":1,"owner_type":"pack","owner_pack_ref":"{other['ref']}"}}')"
'''
    act = api.create_action(f"{p}.probe", script)
    ex = api.wait_execution(api.execute(act["ref"], {})["id"])
    assert ex["status"] == "completed", ex
    seen = dict(line.split("=", 1) for line in ex["result"]["stdout"].split())
    # API.md §16.2: the token reads its own execution, action and pack (lists answer 200 with only
    # what it may read) and its pack's keys; it cannot run anything or write outside its scope.
    assert seen == {"own_exec": "200", "own_pack_key": "200", "other_pack_key": "404", "other_exec": "404",
                    "exec_list": "200", "key_list": "200", "packs": "200", "execute": "403",
                    "exec_total": "0", "pack_total": "2",  # none of the admin's runs; core + its pack
                    "identity_key": "403", "foreign_write": "403"}, seen

    token = token_file.read_text()
    claims = jwt_claims(token)
    assert claims["token_type"] == "execution"
    assert claims["login"] == f"execution:{ex['id']}"
    assert claims["metadata"]["execution_id"] == ex["id"]
    assert claims["metadata"]["action_ref"] == act["ref"]
    assert claims["exp"] > time.time()
    # The execution has finished: its token is refused although `exp` is still ahead.
    c = server.client(token)
    expect_error(c.get(f"/api/v1/keys/pack.{p}.mine"), 401, "UNAUTHORIZED")
    expect_error(c.get("/api/v1/keys"), 401, "UNAUTHORIZED")
    expect_error(c.get(f"/api/v1/executions/{ex['id']}"), 401, "UNAUTHORIZED")
    expect_error(c.get(f"/api/v1/executions/{other_exec['id']}"), 401, "UNAUTHORIZED")
    # Expired and refresh tokens are refused too.
    expired = dict(claims, exp=int(time.time()) - 10, iat=int(time.time()) - 100)
    expect_error(server.client(mint_jwt(server.jwt_secret, expired)).get("/api/v1/keys"), 401)
    expect_error(server.client(api.refresh_token).get("/api/v1/keys"), 401)


def test_two_rules_communicate_through_a_key(api):
    """Rule A's action stores the webhook's value in a key; rule B's parameters read it back through
    the `keystore` template root."""
    pack = api.create_pack()
    p = pack["ref"]
    local = f"chain_{uid(8)}"
    producer = api.webhook_flow(WRITER, pack_ref=p, action_fields={"param_schema": WRITER_SCHEMA}, action_params={
        "name": local, "value": "{{ event.payload.value }}", "owner_type": "system", "encrypted": "false"})
    consumer = api.webhook_flow('echo "got=$got pack=$packval"', pack_ref=p, action_params={
        "got": "{{ keystore." + local + " }}", "packval": "{{ keystore.pack." + p + ".note | default('none') }}"})
    expect(api.post("/api/v1/keys", json={"local_ref": "note", "value": "pack-note", "owner_type": "pack",
                                          "owner_pack_ref": p, "encrypted": False}), 201)
    api.fire(producer.key, {"value": "hello-from-rule-a"})
    (ex,) = api.wait_rule_executions(producer.rule_ref, 1)
    assert ex["status"] == "completed" and ex["result"]["stdout"] == "201", ex
    api.fire(consumer.key, {})
    (ex,) = api.wait_rule_executions(consumer.rule_ref, 1)
    assert ex["status"] == "completed", ex
    assert ex["result"]["stdout"].strip() == "got=hello-from-rule-a pack=pack-note"
    assert ex["config"] == {"got": "hello-from-rule-a", "packval": "pack-note"}


def test_encrypted_key_in_a_template_stays_sealed(server, api):
    secret = secret_value("tmpl")
    local = f"enc_{uid(8)}"
    expect(api.post("/api/v1/keys", json={"local_ref": local, "value": secret}), 201)
    flow = api.webhook_flow('echo "len=${#token} token=$token"; printenv | grep -c "$token" || true',
                            action_params={"token": "{{ keystore.system." + local + " }}", "plain": "x"})
    api.fire(flow.key, {})
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "completed", ex
    out = ex["result"]["stdout"].split("\n")
    assert out[0] == f"len={len(secret)} token=***", ex["result"]
    assert out[1] == "0", "the secret is not in the environment"
    marker = {"$attune_secret": True, "redacted": True}
    assert ex["config"] == {"token": marker, "plain": "x"}
    enf = api.get_data(f"/api/v1/enforcements/{ex['enforcement']}")
    assert enf["config"] == {"token": marker, "plain": "x"}
    full = api.get_data(f"/api/v1/executions/{ex['id']}", include_secret_values="true")
    assert full["config"] == {"token": secret, "plain": "x"}
    assert files_containing(server.data_dir, secret) == []


# ------------------------------------------------------------------ execution tokens on the notifier

def ws_connect(server, token: str) -> websocket.WebSocket:
    ws = websocket.create_connection(server.ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                     timeout=20)
    assert json.loads(ws.recv())["type"] == "welcome"
    return ws


def ws_subscribe_all(ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"type": "subscribe", "filter": "all"}))
    # Client messages are handled in order and only errors are answered: this one's error proves
    # the subscription is in place.
    ws.send(json.dumps({"type": "sync"}))
    assert json.loads(ws.recv()) == {"type": "error", "message": "Unknown message type 'sync'"}


def ws_frames_until(ws: websocket.WebSocket, done) -> tuple[list[dict], tuple[int, str] | None]:
    """Notification frames until `done(frame)` holds or the server closes; returns them and the
    close (code, reason), if the server closed."""
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames, (int.from_bytes(data[:2], "big"), data[2:].decode())
        if opcode != websocket.ABNF.OPCODE_TEXT:
            continue
        frame = json.loads(data)
        frames.append(frame)
        if done(frame):
            return frames, None


def ws_upgrade_status(server, token: str) -> int:
    try:
        ws_connect(server, token).close()
        return 101
    except websocket.WebSocketBadStatusException as e:
        return e.status_code


def test_execution_token_on_the_notifier(server, api, tmp_path):
    """API.md §17.1, §16.2: an execution token is accepted by the notifier while its execution runs,
    receives notifications about that execution only (even subscribed to `all`), and is closed with
    4401 when the execution finishes; afterwards the upgrade is refused with 401, as are refresh
    tokens."""
    pack = api.create_pack()
    token_file, release = tmp_path / f"token-{uid()}", tmp_path / f"release-{uid()}"
    waiter = api.create_action(f"{pack['ref']}.waiter", f"""printf %s "$ATTUNE_API_TOKEN" > {token_file}.tmp
mv {token_file}.tmp {token_file}
i=0; while [ ! -e {release} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo released""")
    ex_id = api.execute(waiter["ref"], {})["id"]
    api.wait_for(token_file.exists, desc="the action wrote its token")
    token = token_file.read_text()
    api.wait_execution(ex_id, statuses={"running"})

    scoped = ws_connect(server, token)
    watcher = ws_connect(server, api.token)  # an admin's access token: sees everything
    try:
        ws_subscribe_all(scoped)
        ws_subscribe_all(watcher)
        # Another execution runs to completion meanwhile; the admin sees it, the token must not.
        other = api.wait_execution(api.execute("core.noop", {})["id"])
        assert other["status"] == "completed", other
        seen, _ = ws_frames_until(watcher, lambda f: f.get("entity_id") == other["id"]
                                  and f["payload"].get("status") == "completed")
        assert any(f["entity_id"] == other["id"] for f in seen)

        release.touch()
        done = api.wait_execution(ex_id)
        assert done["status"] == "completed", done
        frames, closed = ws_frames_until(scoped, lambda f: False)  # read until the server closes
        assert closed == (4401, "token expired"), (closed, frames)
        about = {(f["entity_type"], f["entity_id"]) for f in frames}
        assert about <= {("execution", ex_id), ("workflow_execution", ex_id)}, frames
        statuses = [f["payload"]["status"] for f in frames if f["entity_type"] == "execution"]
        assert statuses and statuses[-1] == "completed", frames
    finally:
        scoped.close()
        watcher.close()

    # The execution has finished: its token is refused at the upgrade, like on REST.
    assert ws_upgrade_status(server, token) == 401
    expect_error(server.client(token).get("/api/v1/keys"), 401, "UNAUTHORIZED")
    # A refresh token and an expired execution token are refused too; the admin's access token is not.
    assert ws_upgrade_status(server, api.refresh_token) == 401
    claims = jwt_claims(token)
    expired = dict(claims, exp=int(time.time()) - 10, iat=int(time.time()) - 100)
    assert ws_upgrade_status(server, mint_jwt(server.jwt_secret, expired)) == 401
    assert ws_upgrade_status(server, api.token) == 101


def test_execution_token_of_an_unknown_execution_is_refused(server, api):
    """A token minted with the shared secret for an execution that does not exist is refused by
    REST and the notifier alike (API.md §4.3: stateless validation, plus the execution scope)."""
    me = api.get_data("/auth/me")
    claims = {"sub": str(me["id"]), "login": "execution:1", "token_type": "execution",
              "iat": int(time.time()), "exp": int(time.time()) + 600,
              "metadata": {"execution_id": 1, "action_ref": "core.noop", "permission_set_refs": [],
                           "standard_access_action_refs": [], "standard_access_pack_refs": []}}
    token = mint_jwt(server.jwt_secret, claims)
    expect_error(server.client(token).get("/api/v1/keys"), 401, "UNAUTHORIZED")
    assert ws_upgrade_status(server, token) == 401
