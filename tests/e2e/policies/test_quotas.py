"""Quotas (API.md §15, §3): `executions_total` makes execute answer 429 (`TOO_MANY_REQUESTS`,
`Retry-After` set) once reached; a refused request creates nothing. (`running_executions` — a
concurrency limit — is in test_fifo_queue.py.)

The executions stay running (gated) while the quota is checked, so the test holds whether the quota
counts every execution of its scope or only those not yet terminal."""
from __future__ import annotations

from attune_e2e import expect_error
from policy_util import GATED, create_policy, executions_of


def _refused(api, action_ref, params):
    r = api.post("/api/v1/executions/execute", json={"action_ref": action_ref, "parameters": params})
    expect_error(r, 429, code="TOO_MANY_REQUESTS")
    assert r.headers.get("Retry-After"), f"429 without Retry-After: {dict(r.headers)}"


def test_executions_total_quota_answers_429(api, pack, gated, rec):
    create_policy(api, pack, "total2", action_ref=gated,
                  quotas=[{"quota_type": "executions_total", "limit": 2}])
    ids = [api.execute(gated, rec.params(t))["id"] for t in ("e1", "e2")]
    _refused(api, gated, rec.params("e3"))
    assert [e["id"] for e in executions_of(api, gated)] == ids, "a refused execute created an execution"
    # another action of the pack is not limited by an action-scoped quota
    other = f"{pack}.other"
    api.create_action(other, "echo ok")
    assert api.wait_execution(api.execute(other, {})["id"])["status"] == "completed"
    rec.open_all()
    for i in ids:
        assert api.wait_execution(i)["status"] == "completed"


def test_pack_scoped_executions_total_counts_the_pack(api, pack, rec):
    a, b = f"{pack}.qa", f"{pack}.qb"
    api.create_action(a, GATED, timeout_seconds=90)
    api.create_action(b, GATED, timeout_seconds=90)
    pol = create_policy(api, pack, "packtotal", quotas=[{"quota_type": "executions_total", "limit": 2}])
    assert (pol.get("scope") or {}).get("type") == "pack", pol
    x = api.execute(a, rec.params("p1"))["id"]
    y = api.execute(b, rec.params("p2"))["id"]
    _refused(api, a, rec.params("p3"))
    _refused(api, b, rec.params("p4"))
    rec.open_all()
    for i in (x, y):
        assert api.wait_execution(i)["status"] == "completed"
