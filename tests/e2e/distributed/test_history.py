"""History retention and stage lag on Kafka (issue 13): a mock-cluster broker process, an API
process started with `--history-keep 5` and one process running rules, executor and worker. The
API prunes its own projections exactly as on the embedded log."""
from __future__ import annotations

import pytest

from attune_e2e import TERMINAL, expect, wait_for
from dist import Cluster


def metrics_text(api) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain"), r.status_code
    return r.text


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dist-history"))
    c.broker.start()
    try:
        api = c.role("api", "api", 1)
        api.extra_args += ["--history-keep", "5"]
        api.start()
        c.role("work", "rules,executor,worker", 2).start()
        yield c
    finally:
        c.stop()


def test_a_history_limit_prunes_old_executions_from_lists_and_totals(small_cluster):
    api = small_cluster.procs["api"].admin_client()
    flow = api.webhook_flow("true")
    events = [api.fire(flow.key, {"i": i})["event_id"] for i in range(12)]

    # Every event was enforced and executed once (an enforcement is kept while its execution is),
    # and the executions left of the rule are the newest five, all ended.
    def settled():
        body = expect(api.get("/api/v1/executions",
                              params={"rule_ref": flow.rule_ref, "page_size": 100}), 200)
        items = body["items"]
        if body["pagination"]["total_items"] != 5 or len(items) != 5:
            return None
        return items if all(e["status"] in TERMINAL for e in items) else None
    kept = wait_for(settled, timeout=90, interval=0.25, desc="5 terminal executions of the rule")
    ids = sorted(e["id"] for e in kept)
    assert all(e["status"] == "completed" for e in kept), kept
    body = expect(api.get("/api/v1/executions", params={"page_size": 100}), 200)
    assert body["pagination"]["total_items"] == 5
    assert sorted(e["id"] for e in body["items"]) == ids
    assert expect(api.get("/api/v1/executions/stats"), 200)["data"]["total"] == 5
    # Newest by creation: every execution created after the oldest kept one is kept.
    oldest = min(e["created"] for e in kept)
    after = expect(api.get("/api/v1/executions",
                           params={"created_after": oldest, "page_size": 100}), 200)
    assert after["pagination"]["total_items"] == 5
    # Events and enforcements nothing references follow after their settle time.
    def followed():
        enfs = expect(api.get("/api/v1/enforcements", params={"rule_ref": flow.rule_ref}), 200)
        evs = expect(api.get("/api/v1/events", params={"trigger_ref": flow.trigger_ref}), 200)
        n = (enfs["pagination"]["total_items"], evs["pagination"]["total_items"])
        return n if n == (5, 5) else None
    wait_for(followed, timeout=40, interval=0.5, desc="5 enforcements and 5 events left")
    gone = [e for e in events if api.get(f"/api/v1/events/{e}").status_code == 404]
    assert len(gone) == 7, gone

    # The API process reports its own stages' consumer lag (Kafka: cached watermarks).
    text = metrics_text(api)
    for topic in ("attune.events", "attune.enforcements", "attune.executions"):
        for metric in ("attune_stage_lag_records", "attune_stage_lag_seconds"):
            prefix = f'{metric}{{stage="api",topic="{topic}"}} '
            assert any(ln.startswith(prefix) for ln in text.splitlines()), f"no {prefix!r}"
