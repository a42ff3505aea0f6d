"""T2.3 — the workflow part of "datastore writes from actions" (SCENARIOS.md; API.md §11.4, §12.3, §14):
workflow tasks communicate through keys (one task writes with its execution token, the next reads it
through `keystore.*` in its input and through the API), secrets stay encrypted at rest (a workflow's
secret parameter and a decrypted key rendered into a child's input are sealed in the child's stored
parameters and in the executor's state, never written in plaintext), and children's parameters are
completed from their action's `param_schema` defaults or refused with the fields named."""
from __future__ import annotations

import hashlib
import json

from attune_e2e import expect, uid
from datastore_util import files_containing, secret_value
from tenants import custom_set
from wf_util import create_workflow, output, tasks_of

CURL = 'curl -sS -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json"'
# Writes pack key `name` = `value` (encrypted) with the execution token; prints the HTTP code. The body
# goes through a pipe (printf is a builtin), so the value never enters an argv.
WRITER = """printf '%s' "{\\"local_ref\\": \\"$name\\", \\"value\\": \\"$value\\", \\"owner_type\\": \\"pack\\", \
\\"owner_pack_ref\\": \\"$ATTUNE_PACK_REF\\", \\"encrypted\\": true}" | """ + CURL + \
    """ -o /dev/null -w '%{http_code}' -X POST "$ATTUNE_API_URL/api/v1/keys" --data-binary @-"""
WRITER_SCHEMA = {"name": {"type": "string", "required": True}, "value": {"type": "string", "secret": True}}
# Prints the SHA-256 of `value` (a secret parameter) and of the key read back through the API.
HASHER = """/usr/bin/python3 -c 'import hashlib, json, sys
doc = json.loads(sys.stdin.readline())
print(json.dumps({"param_sha": hashlib.sha256(doc["value"].encode()).hexdigest(), "label": doc["label"]}))'"""
HASHER_SCHEMA = {"value": {"type": "string", "secret": True}, "label": {"type": "string", "default": "dflt"}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_t2_3_tasks_communicate_through_keys(server, api):
    p = api.create_pack()["ref"]
    writer = api.create_action(f"{p}.writer", WRITER, param_schema=WRITER_SCHEMA)["ref"]
    hasher = api.create_action(f"{p}.hasher", HASHER, param_schema=HASHER_SCHEMA, output_format="json")["ref"]
    inert = custom_set(api, [{"resource": "runtimes", "actions": ["read"]}], prefix="inert")
    name = f"k_{uid(8)}"
    secret = secret_value("wf-key")
    ref = f"{p}.relay_{uid()}"
    create_workflow(api, ref, {"version": "1.0", "tasks": [
        {"name": "write", "action": writer, "input": {"name": name, "value": "{{ parameters.value }}"},
         "next": [{"when": "{{ succeeded() }}", "do": ["read"]}]},
        # keystore.pack.<pack>.<name>: the key the previous task wrote, decrypted into the input only.
        {"name": "read", "action": hasher,
         "input": {"value": f"{{{{ keystore.pack.{p}.{name} }}}}"}},
    ], "output_map": {"read": "{{ task.read.result.data.param_sha }}",
                      "label": "{{ task.read.result.data.label }}"}},
        param_schema={"value": {"type": "string", "secret": True, "required": True}})
    wf = api.execute(ref, {"value": secret}, permission_set_refs=[inert])
    done = api.wait_execution(wf["id"], timeout=60)
    assert done["status"] == "completed", done
    tasks = tasks_of(api, wf["id"])
    assert tasks["write"][0]["result"]["stdout"] == "201", tasks["write"][0]["result"]
    # The reading task got the key's plaintext (its hash matches) and its schema default.
    assert output(done) == {"read": sha(secret), "label": "dflt"}, done["result"]
    # The key is encrypted at rest and readable through the API.
    got = api.get_data(f"/api/v1/keys/pack.{p}.{name}")
    assert got["encrypted"] is True and got["value"] == secret
    # Children's stored parameters hold the redaction marker, not the value.
    for child in (tasks["write"][0], tasks["read"][0]):
        row = api.get_data(f"/api/v1/executions/{child['id']}")
        assert secret not in json.dumps(row), row["config"]
        assert row["config"]["value"].get("redacted") is True, row["config"]
    # Nothing under the data directory holds it in plaintext (log, stores, projections, outputs).
    assert files_containing(server.data_dir, secret) == []


def test_t2_3_child_parameters_meet_the_action_schema(api):
    p = api.create_pack()["ref"]
    typed = api.create_action(f"{p}.typed", 'printf "%s/%s" "$msg" "$count"',
                              param_schema={"msg": {"type": "string", "required": True},
                                            "count": {"type": "integer", "default": 3, "maximum": 5}})["ref"]
    ref = f"{p}.typed_{uid()}"
    create_workflow(api, ref, {"version": "1.0", "tasks": [
        {"name": "good", "action": typed, "input": {"msg": "hi"}, "next": [{"do": ["bad"]}]},
        {"name": "bad", "action": typed, "input": {"msg": "hi", "count": "{{ 2 * 5 }}"}},
    ]})
    done = api.wait_execution(api.execute(ref, {})["id"], timeout=60)
    assert done["status"] == "failed", done
    tasks = tasks_of(api, done["id"])
    assert tasks["good"][0]["result"]["stdout"] == "hi/3"  # default filled in
    bad = tasks["bad"][0]
    assert bad["status"] == "failed" and bad["worker"] is None, bad  # never dispatched
    assert bad["result"]["error"] == f"Invalid parameters for action '{typed}': count must be <= 5", bad["result"]
    assert "bad" in done["result"]["error"], done["result"]
