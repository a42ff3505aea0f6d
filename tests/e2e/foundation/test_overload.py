"""Overload (issue 12): webhooks arrive faster than actions run while log retention trims the log every
second — the pattern that aborted the server in RocksDB's memtable, during the flood and again when the
data directory was reopened. Nothing may crash, be lost or doubled; a WebSocket subscriber sees every
completion; a kill -9 in the middle of such a flood loses nothing either.

Latency and memory under a long flood are measured, not asserted: tests/bench/overload_bench.py.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import websocket

from attune_e2e import NON_TERMINAL, TERMINAL, Flood, wait_for

pytestmark = pytest.mark.restart

# Retention every second keeping 20 records per partition: trims interleave with appends all the time.
RETENTION = {"ATTUNE_LOG_RETENTION_INTERVAL": "1", "ATTUNE_LOG_KEEP_RECORDS": "20"}


class Subscriber:
    """A WebSocket client on entity_type:execution noting every execution it sees completed."""

    def __init__(self, srv, token: str):
        self.ws = websocket.create_connection(srv.ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                              timeout=30)
        assert json.loads(self.ws.recv())["type"] == "welcome"
        self.ws.send(json.dumps({"type": "subscribe", "filter": "entity_type:execution"}))
        self.ws.send(json.dumps({"type": "sync"}))  # answered with an error once subscribed
        assert json.loads(self.ws.recv())["type"] == "error"
        self.completed: set[int] = set()
        self.closed = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.closed = (int.from_bytes(data[:2], "big"), data[2:].decode())
                    return
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue
                frame = json.loads(data)
                if frame.get("type") == "notification" and frame["payload"].get("status") == "completed":
                    self.completed.add(frame["entity_id"])
        except (websocket.WebSocketException, OSError) as e:
            self.closed = ("error", repr(e))


def total(api, path: str, **filters) -> int:
    return api.list(path, page_size=1, **filters)["pagination"]["total_items"]


def metric_values(srv, name: str) -> dict[str, float]:
    """Samples of one metric from /metrics: {labels text: value}."""
    text = requests.get(f"{srv.api_url}/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name):].rpartition(" ")
            out[labels.strip()] = float(value)
    return out


def test_flood_with_retention_loses_nothing_and_notifies_everything(server_factory):
    srv = server_factory.start_new("overload", extra_env=RETENTION)
    api = srv.admin_client()
    flow = api.webhook_flow("true")
    sub = Subscriber(srv, api.token)

    flood = Flood(f"{srv.api_url}/api/v1/webhooks/{flow.key}").start()
    time.sleep(8)  # several retention passes during the flood
    flood.finish()
    assert not flood.failed and not flood.errors, (flood.failed + flood.errors)[:5]
    assert srv.running(), f"attune serve died during the flood\n{srv.log_tail()}"
    accepted = len(flood.accepted)
    assert accepted >= 500, f"only {accepted} webhooks accepted in 8 s"
    assert len(set(flood.accepted)) == accepted

    # The backlog drains: every accepted webhook ran exactly once, and was listed and notified.
    wait_for(lambda: total(api, "/api/v1/executions", rule_ref=flow.rule_ref, status="completed") == accepted,
             timeout=90, desc=f"{accepted} executions completed")
    assert total(api, "/api/v1/events", trigger_ref=flow.trigger_ref) == accepted
    assert total(api, "/api/v1/enforcements", rule_ref=flow.rule_ref) == accepted
    assert total(api, "/api/v1/executions", rule_ref=flow.rule_ref) == accepted
    wait_for(lambda: len(sub.completed) >= accepted, timeout=30,
             desc=f"{accepted} completion frames (have {len(sub.completed)})")
    assert sub.closed is None, f"the subscriber was closed: {sub.closed}"
    assert srv.running(), f"attune serve died\n{srv.log_tail()}"
    # Retention really ran under the flood, and every stage's backlog drained (it is visible).
    assert metric_values(srv, "attune_log_records_trimmed_total").get("", 0) > 0
    backlog = metric_values(srv, "attune_stage_backlog_records")
    assert {'{stage="api"}', '{stage="rules"}', '{stage="executor"}', '{stage="worker"}'} <= set(backlog)
    wait_for(lambda: not any(metric_values(srv, "attune_stage_backlog_records").values()),
             timeout=30, desc="every stage's backlog at 0")

    # The data directory reopens with everything (the crash also aborted the next start).
    rc = srv.stop(grace=10)
    assert rc == 0 and not srv.last_stop_needed_kill, srv.log_tail()
    srv.start()
    api = srv.admin_client()
    assert total(api, "/api/v1/executions", rule_ref=flow.rule_ref, status="completed") == accepted
    assert total(api, "/api/v1/events", trigger_ref=flow.trigger_ref) == accepted


def test_kill9_in_a_flood_with_retention_loses_and_doubles_nothing(server_factory):
    srv = server_factory.start_new("overload-kill", extra_env=RETENTION)
    api = srv.admin_client()
    flow = api.webhook_flow("true")

    flood = Flood(f"{srv.api_url}/api/v1/webhooks/{flow.key}").start()
    time.sleep(4)
    rc = srv.kill9()
    flood.finish()
    assert rc == -9, f"expected death by SIGKILL, got {rc}\n{srv.log_tail()}"
    assert not flood.failed, flood.failed[:5]
    acked = set(flood.accepted)
    assert len(acked) >= 200, f"only {len(acked)} webhooks accepted before the kill"

    srv.start()  # WAL replay of a log trimmed under load
    api = srv.admin_client()

    def settled():
        pending = total(api, "/api/v1/executions", rule_ref=flow.rule_ref, status=",".join(NON_TERMINAL))
        return pending == 0

    wait_for(settled, timeout=90, desc="every execution terminal after restart")
    events = total(api, "/api/v1/events", trigger_ref=flow.trigger_ref)
    executions = total(api, "/api/v1/executions", rule_ref=flow.rule_ref)
    assert events >= len(acked), f"{len(acked)} webhooks acknowledged, {events} events kept"
    assert total(api, "/api/v1/enforcements", rule_ref=flow.rule_ref) == events
    assert executions == events, f"{events} events but {executions} executions"
    terminal = sum(total(api, "/api/v1/executions", rule_ref=flow.rule_ref, status=s) for s in TERMINAL)
    assert terminal == executions
    # Acknowledged events are there by id (a sample: reading each one would take long).
    for event_id in sorted(acked)[:: max(1, len(acked) // 50)]:
        assert api.get(f"/api/v1/events/{event_id}").status_code == 200
