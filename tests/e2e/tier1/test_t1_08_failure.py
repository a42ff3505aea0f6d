"""T1.8 — Action failure handling (SCENARIOS.md), API.md §11.1 and §11.5."""
from __future__ import annotations

import pytest

from attune_e2e import expect, uid


def test_failing_action_is_failed_with_exit_code(api):
    flow = api.webhook_flow('echo "to stdout"; echo "to stderr" >&2; exit 3', action_params={"message": "x"})
    api.fire(flow.key, {"a": 1})
    (ex,) = api.wait_rule_executions(flow.rule_ref, 1)
    assert ex["status"] == "failed", ex
    r = ex["result"]
    assert r is not None
    assert r["exit_code"] == 3, r
    assert r["error"] == "Process exited with code 3", r
    assert r["stdout"].strip() == "to stdout", r
    assert r["stderr"].strip() == "to stderr", r
    assert isinstance(r["duration_ms"], (int, float)), r
    assert "timed out" not in r["error"], "ordinary failures never mention a timeout"


def test_failing_manual_execution(api):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.fail", "exit 3")
    ex = api.execute(act["ref"], {})
    ex = api.wait_execution(ex["id"])
    assert ex["status"] == "failed", ex
    assert ex["result"]["exit_code"] == 3
    assert ex["result"]["error"] == "Process exited with code 3"


def test_several_independent_failures(api):
    flow = api.webhook_flow("exit 3", action_params={"message": "x"})
    n = 5
    event_ids = [api.fire(flow.key, {"i": i})["event_id"] for i in range(n)]
    execs = api.wait_rule_executions(flow.rule_ref, n)
    assert len(execs) == n, execs
    assert len({e["id"] for e in execs}) == n
    assert len({e["enforcement"] for e in execs}) == n
    for ex in execs:
        assert ex["status"] == "failed", ex
        assert ex["result"]["exit_code"] == 3
        assert ex["result"]["error"] == "Process exited with code 3"
    enfs = api.items("/api/v1/enforcements", rule_ref=flow.rule_ref)
    assert sorted(e["event"] for e in enfs) == sorted(event_ids)


@pytest.mark.parametrize("code", [1, 2, 42, 127, 255])
def test_different_exit_codes(api, code):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.exit{code}", f"exit {code}")
    ex = api.wait_execution(api.execute(act["ref"], {})["id"])
    assert ex["status"] == "failed", ex
    assert ex["result"]["exit_code"] == code, ex["result"]
    assert ex["result"]["error"] == f"Process exited with code {code}", ex["result"]


def test_failure_and_success_side_by_side(api):
    """Two rules on one trigger: one failing, one succeeding; each ends on its own."""
    flow = api.webhook_flow("exit 4", action_params={"message": "x"})
    ok_action = api.create_action(f"{flow.pack_ref}.ok_{uid(6)}", 'echo "$message"')
    ok_rule = api.create_rule(f"{flow.pack_ref}.okrule_{uid(6)}", flow.trigger_ref, ok_action["ref"],
                              action_params={"message": "still fine"})
    api.fire(flow.key, {"a": 1})
    (bad,) = api.wait_rule_executions(flow.rule_ref, 1)
    (good,) = api.wait_rule_executions(ok_rule["ref"], 1)
    assert bad["status"] == "failed" and bad["result"]["exit_code"] == 4
    assert good["status"] == "completed" and good["result"]["stdout"].strip() == "still fine"


def test_system_healthy_after_failures(api, anon):
    pack = api.create_pack()
    act = api.create_action(f"{pack['ref']}.boom", "exit 9")
    ids = [api.execute(act["ref"], {})["id"] for _ in range(6)]
    for i in ids:
        assert api.wait_execution(i)["status"] == "failed"

    assert expect(anon.get("/health"), 200) == {"status": "ok"}
    ok = api.create_action(f"{pack['ref']}.ok", 'echo "$message"')
    ex = api.wait_execution(api.execute(ok["ref"], {"message": "alive"})["id"])
    assert ex["status"] == "completed", ex
    assert ex["result"]["stdout"].strip() == "alive"
    assert ex["result"]["exit_code"] == 0
    assert "error" not in ex["result"] or ex["result"]["error"] in (None, ""), ex["result"]

    stats = api.get_data("/api/v1/executions/stats", pack_ref=pack["ref"])
    assert stats["total"] == 7
    assert stats["by_status"]["failed"] == 6
    assert stats["by_status"]["completed"] == 1
    assert stats["active"] == 0
