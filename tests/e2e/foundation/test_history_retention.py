"""Execution history retention and per-stage lag on /metrics (issue 13), on the embedded log.

`--history-keep N` keeps the newest N terminal executions (plus every running one); an age keeps
what was created within it; events and enforcements nothing references any more follow (after a
10 s settle time). What is pruned is gone from lists, filters, totals and GETs.
"""
from __future__ import annotations

import subprocess

from attune_e2e import TERMINAL, attune_bin, expect, wait_for


def metrics_text(api) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain"), r.status_code
    return r.text


def total(api, path, **params):
    body = expect(api.get(path, params={"page_size": 100, **params}), 200)
    return body["pagination"]["total_items"], body["items"]


def fire_in_order(api, flow, n):
    """Fires n webhooks one after the other, each once its execution has ended, so that creation
    order is firing order. Returns the event ids."""
    events = []

    def ended(event_id):
        enfs = api.items("/api/v1/enforcements", event=event_id)
        if not enfs:
            return None
        execs = api.items("/api/v1/executions", enforcement=enfs[0]["id"])
        return execs if execs and execs[0]["status"] in TERMINAL else None
    for i in range(n):
        events.append(api.fire(flow.key, {"i": i})["event_id"])
        wait_for(lambda: ended(events[-1]), desc=f"execution of event {i} ended")
    return events


def start_sleeper(api) -> dict:
    """A running execution (a 120 s sleep): history retention never prunes it."""
    pack = api.create_pack()
    sleeper = api.create_action(f"{pack['ref']}.sleeper", "sleep 120")
    running = api.execute(sleeper["ref"])
    api.wait_execution(running["id"], {"running"})
    return running


def test_history_keep_count_prunes_old_executions_from_lists_and_totals(server_factory):
    srv = server_factory.start_new(extra_env={"ATTUNE_HISTORY_KEEP": "5"})
    api = srv.admin_client()
    running = start_sleeper(api)  # older than everything else: never pruned

    flow = api.webhook_flow("true")
    events = fire_in_order(api, flow, 20)

    def pruned():
        n, items = total(api, "/api/v1/executions", rule_ref=flow.rule_ref)
        return items if n == 5 and len(items) == 5 else None
    kept = wait_for(pruned, timeout=20, desc="5 executions of the rule left")
    assert all(e["status"] == "completed" for e in kept), kept
    # The newest five by creation: those of the last five events.
    kept_events = {expect(api.get(f"/api/v1/enforcements/{e['enforcement']}"), 200)["data"]["event"]
                   for e in kept}
    assert kept_events == set(events[-5:])

    # Unfiltered: 5 terminal + the running one, in the list, the total and the stats.
    n, items = total(api, "/api/v1/executions")
    assert n == 6 and {e["id"] for e in items} == {e["id"] for e in kept} | {running["id"]}, items
    body = expect(api.get("/api/v1/executions", params={"page_size": 2, "page": 3}), 200)
    assert body["pagination"]["total_items"] == 6 and body["pagination"]["total_pages"] == 3
    assert len(body["items"]) == 2 and body["pagination"]["has_next"] is False
    assert total(api, "/api/v1/executions", status="completed")[0] == 5
    assert total(api, "/api/v1/executions", status="running")[0] == 1
    assert total(api, "/api/v1/executions", action_ref=flow.action_ref)[0] == 5
    stats = expect(api.get("/api/v1/executions/stats"), 200)["data"]
    assert stats["total"] == 6, stats

    # Events and enforcements nothing references follow once they have settled (10 s).
    def followed():
        enfs = total(api, "/api/v1/enforcements", rule_ref=flow.rule_ref)[0]
        evs = total(api, "/api/v1/events", trigger_ref=flow.trigger_ref)[0]
        return (enfs, evs) if (enfs, evs) == (5, 5) else None
    wait_for(followed, timeout=30, interval=0.5, desc="5 enforcements and 5 events left")
    for ev in events[:15]:
        assert api.get(f"/api/v1/events/{ev}").status_code == 404
        assert total(api, "/api/v1/enforcements", event=ev)[0] == 0
    for ev in events[15:]:
        assert api.get(f"/api/v1/events/{ev}").status_code == 200

    # Still pruned after a restart (which ends the sleeper: abandoned, then pruned as the oldest).
    assert srv.stop() == 0
    srv.start()
    api = srv.admin_client()
    assert total(api, "/api/v1/executions", rule_ref=flow.rule_ref)[0] == 5
    assert total(api, "/api/v1/events", trigger_ref=flow.trigger_ref)[0] == 5


def test_history_keep_by_age_from_yaml(server_factory, tmp_path):
    config = tmp_path / "attune.yaml"
    config.write_text("history_keep: 4s\n")
    srv = server_factory.start_new(extra_env={"ATTUNE_CONFIG": str(config)})
    api = srv.admin_client()
    running = start_sleeper(api)
    flow = api.webhook_flow("true")
    fire_in_order(api, flow, 5)
    done = [e["id"] for e in api.items("/api/v1/executions", rule_ref=flow.rule_ref)]
    assert len(done) <= 5
    wait_for(lambda: total(api, "/api/v1/executions", rule_ref=flow.rule_ref)[0] == 0, timeout=20,
             desc="executions older than 4 s pruned")
    for i in done:
        assert api.get(f"/api/v1/executions/{i}").status_code == 404
    # Older than 4 s too, but running: kept.
    n, items = total(api, "/api/v1/executions")
    assert n == 1 and items[0]["id"] == running["id"] and items[0]["status"] == "running", items


def test_bad_history_keep_is_refused_with_a_clear_message(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("history_keep: 12y\n")
    for args, env, shown in (
        (["--history-keep", "7x"], {}, "'7x'"),
        ([], {"ATTUNE_HISTORY_KEEP": "0"}, "at least 1"),
        (["--config", str(config)], {}, "'12y'"),
    ):
        proc = subprocess.run([str(attune_bin()), "serve", "--data-dir", str(tmp_path / "d"),
                               "--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0", *args],
                              env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode != 0, (args, env, proc.stdout, proc.stderr)
        assert "history" in proc.stderr and shown in proc.stderr, proc.stderr
        assert "30s, 15m, 12h, 7d" in proc.stderr, proc.stderr
        assert "ready" not in proc.stdout


def test_stage_lag_on_metrics(server_factory):
    srv = server_factory.start_new()
    api = srv.admin_client()
    flow = api.webhook_flow("true")
    fire_in_order(api, flow, 3)
    text = metrics_text(api)
    lines = text.splitlines()
    for stage, topic in (("rules", "attune.events"), ("executor", "attune.commands"),
                         ("executor", "attune.results"), ("worker", "attune.dispatch"),
                         ("api", "attune.executions")):
        for metric in ("attune_stage_lag_records", "attune_stage_lag_seconds"):
            prefix = f'{metric}{{stage="{stage}",topic="{topic}"}} '
            match = [ln for ln in lines if ln.startswith(prefix)]
            assert match, f"no {prefix!r} in /metrics"
            assert float(match[0].split()[-1]) >= 0
    assert any(ln.startswith('attune_stage_backlog_records{stage="rules"}') for ln in lines)
