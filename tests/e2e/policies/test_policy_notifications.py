"""Status notifications of held executions (API.md §11.1: "Each change publishes
`execution_status_changed`"; §17.4): an execution queued by a concurrency policy announces `scheduling`
and then, when the slot comes, `scheduled`, `running`, `completed` — in order, each frame's
`old_status` the previous frame's `status`; one cancelled in the queue announces `cancelled`, and one
rejected by method cancel too."""
from __future__ import annotations

from policy_util import Watch, concurrency, create_policy, states
from tenants import Notifier


def _statuses(n, exec_id):
    return [(f["payload"]["old_status"], f["payload"]["status"]) for f in n.about("execution", exec_id)
            if f["notification_type"] == "execution_status_changed"]


def _chain(pairs):
    """The statuses announced are a chain: each old_status is the previous status."""
    return all(pairs[i][0] == pairs[i - 1][1] for i in range(1, len(pairs)))


def test_queued_execution_notifications(server, api, pack, gated, rec):
    create_policy(api, pack, "one", action_ref=gated, concurrency=concurrency(1))
    with Notifier(server, api.token) as n:
        n.accept("entity_type:execution")
        a = api.execute(gated, rec.params("n1"))["id"]
        b = api.execute(gated, rec.params("n2"))["id"]
        c = api.execute(gated, rec.params("n3"))["id"]
        w = Watch(api, gated, limit=1)
        w.until(lambda s: states(s, [a, b, c]) == ["running", "scheduling", "scheduling"], desc="n2, n3 queued")
        n.wait(lambda f: f["entity_id"] == b and f["payload"].get("status") == "scheduling",
               desc="n2 announced scheduling")
        api.post(f"/api/v1/executions/{c}/cancel", json={})
        n.wait(lambda f: f["entity_id"] == c and f["payload"].get("status") == "cancelled",
               desc="n3 announced cancelled")
        rec.open("n1", "n2")
        n.wait(lambda f: f["entity_id"] == b and f["payload"].get("status") == "completed", desc="n2 completed")
        seq = _statuses(n, b)
        got = [s for _, s in seq]
        assert _chain(seq), f"n2's notifications do not chain: {seq}"
        for need in ("scheduling", "scheduled", "running", "completed"):
            assert need in got, f"n2 never announced {need}: {seq}"
        assert got.index("scheduling") < got.index("scheduled") < got.index("running") < got.index("completed"), seq
        seq_c = _statuses(n, c)
        assert "running" not in [s for _, s in seq_c] and seq_c[-1][1] == "cancelled", seq_c
        assert _chain(seq_c), seq_c


def test_rejected_execution_notifications(server, api, pack, gated, rec):
    create_policy(api, pack, "reject", action_ref=gated, concurrency=concurrency(1, "cancel"))
    with Notifier(server, api.token) as n:
        n.accept("entity_type:execution")
        a = api.execute(gated, rec.params("r1"))["id"]
        api.wait_execution(a, statuses={"running"})
        b = api.execute(gated, rec.params("r2"))["id"]
        n.wait(lambda f: f["entity_id"] == b and f["payload"].get("status") == "cancelled",
               desc="the rejected execution announced cancelled")
        seq = _statuses(n, b)
        assert _chain(seq) and "running" not in [s for _, s in seq], seq
        rec.open_all()
        n.wait(lambda f: f["entity_id"] == a and f["payload"].get("status") == "completed", desc="r1 completed")
