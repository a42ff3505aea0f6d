"""T2.3 — Datastore writes from actions (SCENARIOS.md), API.md §4.2, §11.4, §14, §16.2: an action
writes with its execution token and another reads; two rules communicate through a key (no
workflow); the token's scope and lifetime."""
from __future__ import annotations

import hashlib
import json
import time

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
    token_file = tmp_path / f"token-{uid()}"
    script = f'''printf %s "$ATTUNE_API_TOKEN" > {token_file}
code() {{ {CURL} -o /dev/null -w '%{{http_code}}' "$@"; echo; }}
echo "own_exec=$(code "$ATTUNE_API_URL/api/v1/executions/$ATTUNE_EXEC_ID")"
echo "own_pack_key=$(code "$ATTUNE_API_URL/api/v1/keys/pack.$ATTUNE_PACK_REF.mine")"
echo "other_pack_key=$(code "$ATTUNE_API_URL/api/v1/keys/pack.{other['ref']}.theirs")"
echo "other_exec=$(code "$ATTUNE_API_URL/api/v1/executions/1")"
echo "packs=$(code "$ATTUNE_API_URL/api/v1/packs")"
echo "execute=$(code -X POST "$ATTUNE_API_URL/api/v1/executions/execute" -d '{{"action_ref":"core.noop"}}')"
echo "identity_key=$(code -X POST "$ATTUNE_API_URL/api/v1/keys" -d '{{"local_ref":"x","value":1,"owner_type":"identity"}}')"
echo "foreign_write=$(code -X POST "$ATTUNE_API_URL/api/v1/keys" -d '{{"local_ref":"x","value":1,"owner_type":"pack","owner_pack_ref":"{other['ref']}"}}')"
'''
    act = api.create_action(f"{p}.probe", script)
    ex = api.wait_execution(api.execute(act["ref"], {})["id"])
    assert ex["status"] == "completed", ex
    seen = dict(line.split("=", 1) for line in ex["result"]["stdout"].split())
    assert seen == {"own_exec": "200", "own_pack_key": "200", "other_pack_key": "404", "other_exec": "404",
                    "packs": "403", "execute": "403", "identity_key": "403", "foreign_write": "403"}, seen

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
    expect_error(c.get(f"/api/v1/executions/{ex['id']}"), 401, "UNAUTHORIZED")
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
