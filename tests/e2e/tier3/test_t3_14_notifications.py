"""T3.14 — Execution completion notifications (SCENARIOS.md), API.md §11.1 and §17: a notifier WebSocket
client subscribed before `execute` sees, for its execution, `execution_created` (status requested) and then
`execution_status_changed` through scheduled → running → completed, in order (each frame's `old_status` is
the previous frame's `status`), each soon after the change; for a workflow also the workflow execution's
`workflow_execution_status_changed` frames and every child's own sequence (`parent` = the workflow).

Latency. A background thread stamps every frame on arrival (wall clock, same machine as the server). The
delay of a frame is its arrival minus the time of the change it reports, taken from the record:
`payload.updated` (the record's change time, checked against the final record: created / started_at /
updated are the record's own), the process start (`started_at`, set by the worker) for `running`, and the
process end (`started_at + result.duration_ms`) for `completed`. The scenario's bound is 100 ms per
change; on a loaded 2-core CI machine a single frame can be late because the test process itself was not
scheduled, so the 100 ms bound is asserted on the median of all delays of a test and a loose 1 s bound on
the maximum."""
from __future__ import annotations

import json
import statistics
import threading
import time

import websocket

from attune_e2e import parse_ts, wait_for
from tenants import Notifier
from wf_util import children, create_workflow

ORDER = ["requested", "scheduling", "scheduled", "running", "completed"]
MEDIAN_BOUND = 0.100
MAX_BOUND = 1.0


class Recorder:
    """Reads a subscribed Notifier's frames on a thread, stamping each with its arrival time."""

    def __init__(self, notifier: Notifier):
        self.n = notifier
        self.frames: list = []  # (arrival epoch seconds, frame)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.n.ws.settimeout(0.2)
        while not self.stop.is_set():
            try:
                raw = self.n.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                return
            at = time.time()
            frame = json.loads(raw)
            if frame.get("type") == "notification":
                with self.lock:
                    self.frames.append((at, frame))

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.n.close()

    def about(self, entity_type: str, entity_id: int) -> list:
        with self.lock:
            return [(at, f) for at, f in self.frames
                    if f["entity_type"] == entity_type and f["entity_id"] == entity_id]

    def wait_status(self, entity_type: str, entity_id: int, status: str, timeout: float = 20) -> list:
        return wait_for(lambda: (lambda fs: fs if any(f["payload"]["status"] == status for _, f in fs) else None)(
            self.about(entity_type, entity_id)), timeout=timeout,
            desc=f"{entity_type} {entity_id} notification with status {status}")


def _subscribed(server, api, *filters) -> Recorder:
    n = Notifier(server, api.token)
    for f in filters:
        n.accept(f)  # in-order barrier: the subscription is active before we execute anything
    return Recorder(n)


def _check_sequence(frames: list, entity_type: str, created_type: str, changed_type: str) -> list:
    """The frames of one entity are one ordered walk requested → ... → completed; returns the statuses."""
    statuses = [f["payload"]["status"] for _, f in frames]
    assert frames, "no notification"
    first = frames[0][1]
    assert first["notification_type"] == created_type, [f["notification_type"] for _, f in frames]
    assert first["payload"]["status"] == "requested", first
    for _, f in frames[1:]:
        assert f["notification_type"] == changed_type, f
    for (_, prev), (_, cur) in zip(frames, frames[1:]):
        assert cur["payload"]["old_status"] == prev["payload"]["status"], f"not a chain: {statuses}"
    assert all(s in ORDER for s in statuses), statuses
    assert [ORDER.index(s) for s in statuses] == sorted(ORDER.index(s) for s in statuses), statuses
    assert len(set(statuses)) == len(statuses), f"a status was notified twice: {statuses}"
    for s in ("requested", "scheduled", "running", "completed"):
        assert s in statuses, f"{s} was not notified: {statuses}"
    for _, f in frames:
        assert f["entity_type"] == entity_type and f["payload"]["entity_type"] == entity_type, f
        assert f["payload"]["id"] == f["entity_id"], f
        assert "result" not in f["payload"], f  # payloads never carry results (§17.4)
    return statuses


def _delays(frames: list, record: dict) -> list:
    """Arrival delays of one execution's frames (see the module docstring); also checks that the payload
    timestamps are the record's."""
    by_status = {f["payload"]["status"]: (at, f) for at, f in frames}
    assert by_status["requested"][1]["payload"]["created"] == record["created"], (by_status["requested"], record)
    assert by_status["completed"][1]["payload"]["updated"] == record["updated"], (by_status["completed"], record)
    assert by_status["running"][1]["payload"]["started_at"] == record["started_at"], (by_status["running"], record)
    out = []
    for at, f in frames:
        changed = parse_ts(f["payload"]["updated"]).timestamp()
        assert at >= changed - 0.005, f"notification arrived before its change: {at} < {f['payload']['updated']}"
        out.append(at - changed)
    started = parse_ts(record["started_at"]).timestamp()
    out.append(by_status["running"][0] - started)
    if isinstance(record.get("result"), dict) and isinstance(record["result"].get("duration_ms"), int):
        out.append(by_status["completed"][0] - (started + record["result"]["duration_ms"] / 1000))
    return out


def _assert_prompt(delays: list, what: str):
    delays = sorted(delays)
    med = statistics.median(delays)
    assert med <= MEDIAN_BOUND, f"{what}: median notification delay {med * 1000:.0f} ms > 100 ms " \
                                f"(delays ms: {[round(d * 1000) for d in delays]})"
    assert delays[-1] <= MAX_BOUND, f"{what}: a notification came {delays[-1] * 1000:.0f} ms after its change " \
                                    f"(delays ms: {[round(d * 1000) for d in delays]})"


def test_execution_lifecycle_notifications_in_order_and_prompt(server, api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.work", "sleep 0.3; echo done")
    rec = _subscribed(server, api, "entity_type:execution")
    try:
        ex = api.execute(f"{pack}.work", {})
        done = api.wait_execution(ex["id"], timeout=20)
        assert done["status"] == "completed", done
        frames = rec.wait_status("execution", ex["id"], "completed")
    finally:
        rec.close()
    _check_sequence(frames, "execution", "execution_created", "execution_status_changed")
    for _, f in frames:
        assert f["payload"]["action_ref"] == f"{pack}.work" and f["payload"]["parent"] is None, f
    _assert_prompt(_delays(frames, done), "one execution")


def test_several_executions_each_notified_in_order(server, api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.work", 'sleep 0.2; echo "$n"')
    rec = _subscribed(server, api, f"entity_type:execution")
    try:
        ids = [api.execute(f"{pack}.work", {"n": i})["id"] for i in range(6)]
        records = {i: api.wait_execution(i, timeout=30) for i in ids}
        per = {i: rec.wait_status("execution", i, "completed") for i in ids}
    finally:
        rec.close()
    delays = []
    for i in ids:
        assert records[i]["status"] == "completed", records[i]
        _check_sequence(per[i], "execution", "execution_created", "execution_status_changed")
        delays += _delays(per[i], records[i])
    _assert_prompt(delays, "six executions")


def test_workflow_and_children_notifications(server, api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.step", 'sleep 0.2; printf "%s" "$msg"')
    create_workflow(api, f"{pack}.flow", {"version": "1", "tasks": [
        {"name": "first", "action": f"{pack}.step", "input": {"msg": "1"}, "on_success": "second"},
        {"name": "second", "action": f"{pack}.step", "input": {"msg": "2"}},
    ]})
    rec = _subscribed(server, api, "entity_type:execution", "entity_type:workflow_execution")
    try:
        wf = api.execute(f"{pack}.flow", {})
        done = api.wait_execution(wf["id"], timeout=30)
        assert done["status"] == "completed", done
        wf_frames = rec.wait_status("workflow_execution", wf["id"], "completed")
        ex_frames = rec.wait_status("execution", wf["id"], "completed")
        kids = {k["workflow_task"]["task_name"]: k for k in children(api, wf["id"])}
        assert set(kids) == {"first", "second"}, kids
        kid_frames = {name: rec.wait_status("execution", k["id"], "completed") for name, k in kids.items()}
        with rec.lock:
            arrival_order = [(f["entity_type"], f["entity_id"], f["payload"]["status"]) for _, f in rec.frames]
    finally:
        rec.close()

    # the workflow execution: workflow_execution_status_changed walks the same statuses as its execution frames
    wf_statuses = [f["payload"]["status"] for _, f in wf_frames]
    assert all(f["notification_type"] == "workflow_execution_status_changed" for _, f in wf_frames), wf_frames
    for (_, prev), (_, cur) in zip(wf_frames, wf_frames[1:]):
        assert cur["payload"]["old_status"] == prev["payload"]["status"], wf_statuses
    assert wf_statuses[-1] == "completed" and "running" in wf_statuses, wf_statuses
    assert [ORDER.index(s) for s in wf_statuses] == sorted(ORDER.index(s) for s in wf_statuses), wf_statuses
    for _, f in wf_frames:
        assert f["entity_type"] == "workflow_execution" and f["payload"]["action_ref"] == f"{pack}.flow", f
    ex_statuses = _check_sequence(ex_frames, "execution", "execution_created", "execution_status_changed")
    assert [s for s in ex_statuses if s != "requested"] == [s for s in wf_statuses if s != "requested"]

    # each child: its own ordered walk, pointing at the workflow
    delays = _delays(ex_frames, done)
    for name, frames in kid_frames.items():
        _check_sequence(frames, "execution", "execution_created", "execution_status_changed")
        for _, f in frames:
            assert f["payload"]["parent"] == wf["id"], f
            assert f["payload"]["workflow_task"]["task_name"] == name, f
        delays += _delays(frames, kids[name])
    # wf_frames share the execution's change times
    delays += [at - parse_ts(f["payload"]["updated"]).timestamp() for at, f in wf_frames]
    _assert_prompt(delays, "workflow and children")

    # order across entities: workflow running → first child → second child → workflow completed
    def pos(kind, eid, status):
        return arrival_order.index((kind, eid, status))
    assert pos("workflow_execution", wf["id"], "running") < pos("execution", kids["first"]["id"], "requested")
    assert pos("execution", kids["first"]["id"], "completed") < pos("execution", kids["second"]["id"], "requested")
    assert pos("execution", kids["second"]["id"], "completed") < pos("workflow_execution", wf["id"], "completed")


def test_failing_workflow_notifications(server, api):
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.boom", "echo boom; exit 3")
    create_workflow(api, f"{pack}.fails", {"version": "1", "tasks": [{"name": "bad", "action": f"{pack}.boom"}]})
    rec = _subscribed(server, api, "entity_type:execution", "entity_type:workflow_execution")
    try:
        wf = api.execute(f"{pack}.fails", {})
        done = api.wait_execution(wf["id"], timeout=30)
        assert done["status"] == "failed", done
        wf_frames = rec.wait_status("workflow_execution", wf["id"], "failed")
        [kid] = children(api, wf["id"])
        kid_frames = rec.wait_status("execution", kid["id"], "failed")
    finally:
        rec.close()
    assert [f["payload"]["status"] for _, f in kid_frames][-1] == "failed"
    assert kid_frames[0][1]["notification_type"] == "execution_created"
    statuses = [f["payload"]["status"] for _, f in wf_frames]
    assert statuses[-1] == "failed" and statuses[-2] == "running", statuses
    assert wf_frames[-1][1]["payload"]["updated"] == done["updated"]
    delays = [at - parse_ts(f["payload"]["updated"]).timestamp() for at, f in wf_frames + kid_frames]
    _assert_prompt(delays, "failing workflow")


def test_with_items_children_notified_as_they_are_released(server, api):
    # with_items rows exist up front (requested) and are dispatched one at a time (concurrency 1): each child
    # is notified created at once, and its dispatch (scheduling) only after the previous child completed.
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.step", 'sleep 0.2; printf "%s" "$msg"')
    create_workflow(api, f"{pack}.items", {"version": "1", "tasks": [
        {"name": "each", "action": f"{pack}.step", "with_items": "{{ ['a', 'b', 'c'] }}",
         "input": {"msg": "{{ item }}"}}]})
    rec = _subscribed(server, api, "entity_type:execution")
    try:
        wf = api.execute(f"{pack}.items", {})
        done = api.wait_execution(wf["id"], timeout=30)
        assert done["status"] == "completed", done
        kids = sorted(children(api, wf["id"]), key=lambda c: c["workflow_task"]["task_index"])
        assert len(kids) == 3, kids
        per = [rec.wait_status("execution", k["id"], "completed") for k in kids]
        with rec.lock:
            order = [(f["entity_id"], f["payload"]["status"]) for _, f in rec.frames]
    finally:
        rec.close()
    delays = []
    for k, frames in zip(kids, per):
        _check_sequence(frames, "execution", "execution_created", "execution_status_changed")
        delays += _delays(frames, k)
    created = [order.index((k["id"], "requested")) for k in kids]
    assert max(created) < order.index((kids[0]["id"], "completed")), "rows were not all created up front"
    for prev, nxt in zip(kids, kids[1:]):
        assert order.index((prev["id"], "completed")) < order.index((nxt["id"], "scheduling")), order
    _assert_prompt(delays, "with_items children")
