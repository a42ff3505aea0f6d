"""T3.20 — Secret injection security (SCENARIOS.md), API.md §11.3, §11.4, §16.4: secret parameters
and the pack's keys reach the action through stdin (and non-exported shell variables) only — never
the environment, argv, files, logs, results or API responses."""
from __future__ import annotations

import json
import os
from pathlib import Path

from attune_e2e import expect, expect_error, uid, wait_for
from datastore_util import files_containing, new_user, secret_value

MARKER = {"$attune_secret": True, "redacted": True}


def reader_of(server, api, resource: str, pack_ref: str):
    """A new identity allowed to read `resource` of the admin's pack (which it could not even see
    otherwise, API.md §16.3), without the decrypt right."""
    set_ref = f"read_{resource}_{uid(8)}"
    expect(api.post("/api/v1/permissions/sets", json={"ref": set_ref, "grants": [
        {"resource": resource, "actions": ["read"], "constraints": {"pack_refs": [pack_ref]}}]}), 201)
    return new_user(server, api, set_ref)

SCRIPT = r'''echo $$ > "$pidfile"
i=0; while [ ! -e "$release" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
INPUT=$(cat)
echo "message=$message"
echo "password=$password"
echo "api_key=${api_key}"
case "$INPUT" in *"$api_key"*) echo "stdin_has_key=yes";; *) echo "stdin_has_key=no";; esac
case "$INPUT" in *"$password"*) echo "stdin_has_password=yes";; *) echo "stdin_has_password=no";; esac
printenv > "$envfile"
'''


def test_secrets_reach_the_action_by_stdin_only(server, api, tmp_path):
    pack = api.create_pack()
    p = pack["ref"]
    key_secret, password = secret_value("pack-key"), secret_value("param")
    expect(api.post("/api/v1/keys", json={"local_ref": "api_key", "value": key_secret, "owner_type": "pack",
                                          "owner_pack_ref": p}), 201)
    act = api.create_action(f"{p}.inject", SCRIPT, param_schema={
        "message": {"type": "string", "required": True},
        "password": {"type": "string", "secret": True},
    })
    files = {n: str(tmp_path / f"{n}-{uid(6)}") for n in ("pidfile", "release", "envfile")}
    ex = api.execute(act["ref"], {"message": "hello", "password": password, **files})
    # The stored and returned config hides the secret parameter.
    assert ex["config"]["password"] == MARKER and ex["config"]["message"] == "hello"

    # While the action runs: its environment and command line hold no secret.
    pid = int(wait_for(lambda: Path(files["pidfile"]).read_text().strip()
                       if Path(files["pidfile"]).exists() and Path(files["pidfile"]).read_text().strip() else None,
                       timeout=20, desc="the action's pid"))
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    for s in (key_secret, password):
        assert s.encode() not in environ
        assert s.encode() not in cmdline
    assert b"ATTUNE_API_TOKEN=" in environ and b"ATTUNE_EXEC_ID=" in environ
    Path(files["release"]).touch()

    ex = api.wait_execution(ex["id"])
    assert ex["status"] == "completed", ex
    lines = dict(l.split("=", 1) for l in ex["result"]["stdout"].splitlines())
    assert lines["message"] == "hello"
    # Readable as (non-exported) shell variables and on stdin; redacted in the stored output.
    assert lines["password"] == "***" and lines["api_key"] == "***", lines
    assert lines["stdin_has_key"] == "yes" and lines["stdin_has_password"] == "yes", lines
    env_text = Path(files["envfile"]).read_text()
    assert key_secret not in env_text and password not in env_text
    assert "api_key=" not in env_text and "password=" not in env_text

    # Nowhere in responses, the data directory or the server's log.
    raw = api.get(f"/api/v1/executions/{ex['id']}").text + api.get("/api/v1/executions",
                                                                    params={"action_ref": act["ref"]}).text
    for s in (key_secret, password):
        assert s not in raw
        assert files_containing(server.data_dir, s) == []
        assert s not in server.log_path.read_text(errors="replace")
    # Only a caller with the decrypt right sees the parameter, on request.
    full = api.get_data(f"/api/v1/executions/{ex['id']}", include_secret_values="true")
    assert full["config"]["password"] == password
    assert key_secret not in json.dumps(full), "pack keys never enter the execution's config"
    viewer = reader_of(server, api, "executions", p)  # sees the pack's executions, no decrypt right
    expect_error(viewer.get(f"/api/v1/executions/{ex['id']}", params={"include_secret_values": "true"}), 403)


def test_same_named_parameter_wins_and_file_delivery_leaves_nothing(server, api, tmp_path):
    pack = api.create_pack()
    p = pack["ref"]
    expect(api.post("/api/v1/keys", json={"local_ref": "region", "value": "from-key", "owner_type": "pack",
                                          "owner_pack_ref": p, "encrypted": False}), 201)
    expect(api.post("/api/v1/keys", json={"local_ref": "token", "value": "tok-" + uid(), "owner_type": "pack",
                                          "owner_pack_ref": p}), 201)
    act = api.create_action(f"{p}.file", 'cat "$ATTUNE_PARAMETER_FILE"; echo "file=$ATTUNE_PARAMETER_FILE"',
                            parameter_delivery="file", output_format="text")
    ex = api.wait_execution(api.execute(act["ref"], {"region": "from-param"})["id"])
    assert ex["status"] == "completed", ex
    doc_line, file_line = [l for l in ex["result"]["stdout"].splitlines() if l]
    doc = json.loads(doc_line)
    assert doc["region"] == "from-param", "a same-named parameter wins over a key"
    assert doc["token"] == "***", "the injected key is in the document and redacted in the output"
    path = file_line.split("=", 1)[1]
    assert not os.path.exists(path), "the parameter file is removed afterwards"


def test_secret_payload_fields_are_redacted_in_events_and_enforcements(server, api):
    """Payload fields the trigger's schema marks secret read as the marker; include_secret_values reveals
    them on the event (decrypt right only), never on the enforcement's payload copy (API.md §16.4)."""
    pack = api.create_pack()
    p = pack["ref"]
    token = secret_value("hook")
    act = api.create_action(f"{p}.noop", "true")
    trigger = api.create_trigger(f"{p}.hook_{uid(6)}", out_schema={"token": {"type": "string", "secret": True},
                                                                 "n": {"type": "integer"}})
    key = api.enable_webhook(trigger["ref"])
    rule = api.create_rule(f"{p}.rule_{uid(6)}", trigger["ref"], act["ref"], action_params={"n": "{{ event.payload.n }}"})
    event_id = api.fire(key, {"token": token, "n": 7})["event_id"]
    event = api.get_data(f"/api/v1/events/{event_id}")
    assert event["payload"] == {"token": MARKER, "n": 7}, event
    assert token not in api.get("/api/v1/events", params={"trigger_ref": trigger["ref"]}).text
    assert api.get_data(f"/api/v1/events/{event_id}", include_secret_values="true")["payload"]["token"] == token
    expect_error(reader_of(server, api, "events", p).get(f"/api/v1/events/{event_id}",
                                                         params={"include_secret_values": "1"}), 403)
    (enf,) = api.wait_enforcements(rule["ref"], 1)
    assert enf["payload"] == {"token": MARKER, "n": 7}, enf
    full = api.get_data(f"/api/v1/enforcements/{enf['id']}", include_secret_values="true")
    assert full["payload"]["token"] == MARKER and full["config"] == {"n": 7}
    expect_error(api.get(f"/api/v1/events/{event_id}", params={"include_secret_values": "maybe"}), 400)
