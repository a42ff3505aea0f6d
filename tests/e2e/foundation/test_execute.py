"""Manual execution: POST /api/v1/executions/execute (API.md §11)."""
from __future__ import annotations

import json

import pytest

from attune_e2e import (ALL_STATUSES, assert_timestamps, expect, expect_error, is_id, now_mark, uid)


def test_execute_core_echo(api):
    mark = now_mark()
    resp = api.post("/api/v1/executions/execute", json={"action_ref": "core.echo", "parameters": {"message": "hi"}})
    ex = expect(resp, 201)["data"]
    assert is_id(ex["id"])
    assert ex["status"] in ALL_STATUSES
    assert ex["action_ref"] == "core.echo"
    assert ex["config"] == {"message": "hi"} or ex["config"].get("message") == "hi", ex
    assert ex["enforcement"] is None
    assert_timestamps(ex)

    # Read-your-writes: visible to GET and to lists at once.
    got = expect(api.get(f"/api/v1/executions/{ex['id']}"), 200)["data"]
    assert got["id"] == ex["id"]
    listed = api.items("/api/v1/executions", action_ref="core.echo", created_after=mark)
    assert ex["id"] in [e["id"] for e in listed]

    done = api.wait_execution(ex["id"])
    assert done["status"] == "completed", done
    assert done["result"]["stdout"].strip() == "hi", done["result"]
    assert done["result"]["exit_code"] == 0
    assert_timestamps(done, ("created", "updated", "started_at"))


def test_execute_core_noop(api):
    ex = api.wait_execution(api.execute("core.noop", {})["id"])
    assert ex["status"] == "completed", ex


def test_execute_core_noop_without_parameters(api):
    resp = api.post("/api/v1/executions/execute", json={"action_ref": "core.noop"})
    ex = expect(resp, 201)["data"]
    assert api.wait_execution(ex["id"])["status"] == "completed"


def test_execute_core_sleep(api):
    action = api.get_data("/api/v1/actions/core.sleep")
    schema = action.get("param_schema") or {}
    props = schema.get("properties", schema) if isinstance(schema, dict) else {}
    params = {"seconds": 1} if "seconds" in props else {}
    ex = api.wait_execution(api.execute("core.sleep", params)["id"], timeout=30)
    assert ex["status"] == "completed", ex
    if params:
        assert ex["result"]["duration_ms"] >= 900, ex["result"]


def test_execute_inline_shell_sees_params_env_and_stdin(server, api):
    pack = api.create_pack()
    script = (
        'echo "msg=$message"\n'
        'echo "action=$ATTUNE_ACTION"\n'
        'echo "exec=$ATTUNE_EXEC_ID"\n'
        'echo "api=$ATTUNE_API_URL"\n'
        'echo "exported=$(printenv message)"\n'
        'echo "stdin=$(cat)"\n'
    )
    act = api.create_action(f"{pack['ref']}.env", script)
    params = {"message": "hello world", "n": 7}
    ex = api.wait_execution(api.execute(act["ref"], params)["id"])
    assert ex["status"] == "completed", ex
    lines = dict(line.split("=", 1) for line in ex["result"]["stdout"].splitlines() if "=" in line)
    assert lines["msg"] == "hello world"
    assert lines["action"] == act["ref"]
    assert lines["exec"] == str(ex["id"])
    assert lines["api"].startswith("http"), lines
    assert not lines["api"].rstrip("/").endswith("/api/v1"), "ATTUNE_API_URL has no /api/v1"
    assert lines["exported"] == "", "parameters are non-exported shell variables"
    assert json.loads(lines["stdin"]) == params
    assert ex["config"] == params


def test_execute_unknown_action_404(api):
    mark = now_mark()
    expect_error(api.post("/api/v1/executions/execute", json={"action_ref": f"nosuch_{uid()}.act"}),
                 404, "NOT_FOUND")
    expect_error(api.post("/api/v1/executions/execute", json={"action_ref": "core.doesnotexist"}),
                 404, "NOT_FOUND")
    assert api.items("/api/v1/executions", created_after=mark) == []


def test_execute_disabled_action_400(api):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.off", "echo should-not-run", enabled=False)
    assert act["enabled"] is False
    expect_error(api.post("/api/v1/executions/execute", json={"action_ref": act["ref"]}), 400, "BAD_REQUEST")
    assert api.items("/api/v1/executions", action_ref=act["ref"]) == []
    # Re-enabled it runs.
    expect(api.put(f"/api/v1/actions/{act['ref']}", json={"enabled": True}), 200)
    ex = api.wait_execution(api.execute(act["ref"], {})["id"])
    assert ex["status"] == "completed"


def test_execute_missing_action_ref_422(api):
    mark = now_mark()
    err = expect_error(api.post("/api/v1/executions/execute", json={"parameters": {"message": "x"}}),
                       422, "VALIDATION_ERROR")
    assert "action_ref" in err["details"]["fields"], err
    assert api.items("/api/v1/executions", created_after=mark) == []


@pytest.mark.parametrize("body", [
    {"action_ref": 5},
    {"action_ref": "core.echo", "parameters": "not an object"},
    {"action_ref": "core.echo", "parameters": [1, 2]},
])
def test_execute_wrong_types_422(api, body):
    mark = now_mark()
    err = expect_error(api.post("/api/v1/executions/execute", json=body), 422, "VALIDATION_ERROR")
    assert isinstance(err["details"]["fields"], dict) and err["details"]["fields"], err
    assert api.items("/api/v1/executions", created_after=mark) == []


def test_execute_malformed_json_400(api):
    mark = now_mark()
    resp = api.post("/api/v1/executions/execute", data=b'{"action_ref": "core.echo",',
                    headers={"Content-Type": "application/json"})
    expect_error(resp, 400, "BAD_REQUEST")
    assert api.items("/api/v1/executions", created_after=mark) == []


def test_execute_param_schema_validation(api):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.typed", 'echo "$count $mode"', param_schema={
        "count": {"type": "integer", "required": True},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
    })
    for params, field in (({}, "count"), ({"count": "abc"}, "count"), ({"count": 1, "mode": "medium"}, "mode")):
        err = expect_error(api.post("/api/v1/executions/execute",
                                    json={"action_ref": act["ref"], "parameters": params}), 422, "VALIDATION_ERROR")
        assert field in err["details"]["fields"], err
    assert api.items("/api/v1/executions", action_ref=act["ref"]) == []

    ex = api.wait_execution(api.execute(act["ref"], {"count": 2, "extra": "passed"})["id"])
    assert ex["status"] == "completed", ex
    assert ex["config"] == {"count": 2, "mode": "fast", "extra": "passed"}, "defaults filled, extras passed"
    assert ex["result"]["stdout"].strip() == "2 fast"


def test_execution_progresses_through_statuses(api):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.slow", "sleep 1; echo done")
    ex = api.execute(act["ref"], {})
    assert ex["status"] in ("requested", "scheduling", "scheduled", "running"), ex
    running = api.wait_execution(ex["id"], statuses={"running"}, timeout=10)
    assert_timestamps(running, ("started_at",))
    done = api.wait_execution(ex["id"])
    assert done["status"] == "completed"
    assert done["started_at"] == running["started_at"]
    assert done["result"]["stdout"].strip() == "done"
