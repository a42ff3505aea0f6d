"""Distributed mode on Kafka (issue 5): a mock-cluster broker process, separate api, rules,
executor and two worker processes. Scenarios: T1.4 across processes, T3.12 worker crash
recovery, kill -9 + restart of executor and rules mid-load, Kafka producers (SCENARIOS.md)."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter

import pytest

from attune_e2e import TERMINAL, Flood, expect, wait_for
from dist import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dist")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def dapi(cluster):
    return cluster.procs["api"].admin_client()


def fire_all(api, key, n, tag):
    return [api.fire(key, {"n": i, "tag": tag})["event_id"] for i in range(n)]


def check_exactly_once(api, flow, event_ids, timeout=90):
    """Every event: one enforcement, one execution, terminal — by natural keys."""
    def done():
        ex = api.items("/api/v1/executions", rule_ref=flow.rule_ref, page_size=100)
        if len(ex) >= len(event_ids) and all(e["status"] in TERMINAL for e in ex):
            return ex
        return None
    execs = wait_for(done, timeout=timeout, interval=0.25, desc="all executions terminal")
    enfs = api.items("/api/v1/enforcements", rule_ref=flow.rule_ref, page_size=100)
    per_event = Counter(e["event"] for e in enfs)
    assert set(per_event) == set(event_ids), "an event has no enforcement"
    assert max(per_event.values()) == 1, f"doubled enforcements: {per_event.most_common(3)}"
    per_enf = Counter(e["enforcement"] for e in execs)
    assert set(per_enf) == {e["id"] for e in enfs}, "an enforcement has no execution"
    assert max(per_enf.values()) == 1, f"doubled executions: {per_enf.most_common(3)}"
    return execs


def test_t1_04_webhooks_complete_across_processes(cluster, dapi):
    flow = dapi.webhook_flow('echo "$message"', action_params={"message": "{{ event.payload.tag }}"})
    events = fire_all(dapi, flow.key, 12, "dist")
    execs = check_exactly_once(dapi, flow, events, timeout=60)
    assert all(e["status"] == "completed" for e in execs), [e["status"] for e in execs]
    # Both workers announced themselves and are listed as active.
    workers = wait_for(lambda: (lambda w: w if len(w) >= 2 else None)(
        dapi.items("/api/v1/workers", status="active")), timeout=20, desc="two active workers")
    names = {w["name"] for w in workers}
    # <host>-<node id>-<instance>: one identity per process start (issue 13).
    assert any(re.search(r"-4-[0-9a-z]{8}$", n) for n in names), names
    assert any(re.search(r"-5-[0-9a-z]{8}$", n) for n in names), names
    assert {w["meta"]["node_id"] for w in workers} >= {4, 5}, workers
    for w in workers:
        assert w["worker_role"] == "action" and w["last_heartbeat"], w
        one = expect(dapi.get(f"/api/v1/workers/{w['id']}"), 200)["data"]
        assert one["name"] == w["name"]
    assert expect(dapi.get("/api/v1/workers/12345"), 404)


def test_t3_20_secrets_and_execution_tokens_across_processes(cluster, dapi):
    """Issue 6 across processes: the API seals a secret parameter, a separate worker process opens
    it and injects the pack's encrypted key (shared encryption key), redacts both, and mints an
    execution token (shared JWT secret) with which the action writes a key through the API."""
    pack = dapi.create_pack()
    p = pack["ref"]
    expect(dapi.post("/api/v1/keys", json={"local_ref": "api_key", "value": "dist-key-4711",
                                           "owner_type": "pack", "owner_pack_ref": p}), 201)
    script = ('echo "pw=$password key=$api_key"; '
              'printf \'{"local_ref":"dist_out","value":"%s","owner_type":"pack","owner_pack_ref":"%s"}\' '
              '"$password" "$ATTUNE_PACK_REF" | curl -sS -o /dev/null -w "%{http_code}" '
              '-H "Authorization: Bearer $ATTUNE_API_TOKEN" -H "Content-Type: application/json" '
              '-X POST "$ATTUNE_API_URL/api/v1/keys" --data-binary @-')
    act = dapi.create_action(f"{p}.dist_secret", script,
                             param_schema={"password": {"type": "string", "secret": True}})
    ex = dapi.execute(act["ref"], {"password": "dist-pw-0815"})
    assert ex["config"]["password"] == {"$attune_secret": True, "redacted": True}
    ex = wait_for(lambda: (lambda e: e if e["status"] in TERMINAL else None)(
        dapi.get_data(f"/api/v1/executions/{ex['id']}")), timeout=60, desc="execution terminal")
    assert ex["status"] == "completed", json.dumps(ex["result"])
    assert ex["result"]["stdout"] == "pw=*** key=***\n201", ex["result"]
    assert dapi.get_data(f"/api/v1/keys/pack.{p}.dist_out")["value"] == "dist-pw-0815"


def test_t3_12_killed_worker_executions_end_abandoned(cluster, dapi):
    flow = dapi.webhook_flow("sleep 4; echo done")
    events = fire_all(dapi, flow.key, 8, "crash")
    victim = cluster.procs["worker-a"]
    victim_name = None

    def running_on_both():
        ex = dapi.items("/api/v1/executions", rule_ref=flow.rule_ref, status="running")
        return ex if ex else None
    running = wait_for(running_on_both, timeout=40, interval=0.1, desc="running executions")
    by_worker = Counter(e["worker"] for e in running)
    victim_name = next((n for n in by_worker if re.search(r"-4-[0-9a-z]{8}$", n)), None)
    if victim_name is None:  # worker-a got nothing: kill worker-b instead
        victim = cluster.procs["worker-b"]
        victim_name = next(iter(by_worker))
    victim.kill9()
    # Everything ends within the worker timeout (4 s) plus group failover; nothing stuck.
    execs = check_exactly_once(dapi, flow, events, timeout=60)
    statuses = Counter(e["status"] for e in execs)
    assert statuses["abandoned"] >= 1, statuses
    for e in execs:
        if e["status"] == "abandoned":
            assert e["worker"] == victim_name, e
        else:
            assert e["status"] == "completed", e
    # The victim is listed inactive; the survivor keeps going.
    wait_for(lambda: any(w["name"] == victim_name and w["status"] == "inactive"
                         for w in dapi.items("/api/v1/workers")), timeout=20, desc="victim inactive")
    later = fire_all(dapi, flow.key, 3, "after")
    wait_for(lambda: (lambda ex: ex if len(ex) >= 3 and all(e["status"] == "completed" for e in ex) else None)(
        [e for e in dapi.items("/api/v1/executions", rule_ref=flow.rule_ref, page_size=100)
         if e["created"] > max(x["created"] for x in execs)]), timeout=60, desc="survivor runs new work")
    victim.start()  # back for the next tests


def test_t3_12_killed_worker_executions_are_retried_by_policy(cluster, dapi):
    """T3.12 with a retry policy: the action's max_retries lets the executions of a kill -9'd
    worker run again as a new attempt on the surviving worker; all end completed, none stuck."""
    flow = dapi.webhook_flow('sleep 3; echo "done $ATTUNE_EXEC_ID"', action_fields={"max_retries": 2})
    assert flow.action["max_retries"] == 2, flow.action
    events = fire_all(dapi, flow.key, 6, "retry")
    running = wait_for(lambda: dapi.items("/api/v1/executions", rule_ref=flow.rule_ref,
                                          status="running") or None,
                       timeout=40, interval=0.1, desc="running executions")
    victim_name = running[0]["worker"]
    victim_key = next(k for k in ("worker-a", "worker-b")
                      if re.search(f"-{cluster.procs[k].node_id}-[0-9a-z]{{8}}$", victim_name))
    on_victim = {e["id"] for e in dapi.items("/api/v1/executions", rule_ref=flow.rule_ref,
                                             status="running") if e["worker"] == victim_name}
    assert on_victim
    cluster.procs[victim_key].kill9()
    execs = check_exactly_once(dapi, flow, events, timeout=90)
    assert all(e["status"] == "completed" for e in execs), Counter(e["status"] for e in execs)
    by_id = {e["id"]: dapi.get_data(f"/api/v1/executions/{e['id']}") for e in execs}
    for eid in on_victim:
        ex = by_id[eid]
        assert ex["worker"] != victim_name, ex
        assert ex["retry_count"] >= 1 and ex["max_retries"] == 2, ex
        assert victim_name in ex["retry_reason"], ex
        assert ex["result"]["stdout"] == f"done {eid}\n", ex
    for ex in by_id.values():
        assert ex["retry_count"] <= 2, ex
    cluster.procs[victim_key].start()  # back for the next tests


def test_kill9_restart_executor_and_rules_mid_load(cluster, dapi):
    flow = dapi.webhook_flow("echo ok")
    events: list = []

    def load():
        for i in range(40):
            events.append(dapi.fire(flow.key, {"n": i})["event_id"])
            time.sleep(0.02)
    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.3)
    cluster.procs["executor"].kill9()
    cluster.procs["rules"].kill9()
    time.sleep(0.5)
    # The executor comes back on a NEW data directory: its store is restored from the changelog.
    cluster.role("executor", "executor", 3).start()
    cluster.procs["rules"].start()
    t.join()
    execs = check_exactly_once(dapi, flow, events, timeout=90)
    assert all(e["status"] == "completed" for e in execs), Counter(e["status"] for e in execs)


def test_kafka_producer_webhook_and_deadletter(cluster, dapi):
    confluent_kafka = pytest.importorskip("confluent_kafka")  # Debian python3-confluent-kafka
    flow = dapi.webhook_flow('echo "$message"', action_params={"message": "{{ event.payload.tag }}"})
    p = confluent_kafka.Producer({"bootstrap.servers": cluster.broker.bootstrap})
    p.produce("attune.webhooks", key=flow.key, value=json.dumps({"payload": {"tag": "from-kafka"}}))
    p.produce("attune.webhooks", key=flow.key, value=b"{not json")
    p.produce("attune.webhooks", key="no-such-key", value=json.dumps({"payload": {}}))
    assert p.flush(10) == 0
    ex = wait_for(lambda: (lambda it: it[0] if it and it[0]["status"] in TERMINAL else None)(
        dapi.items("/api/v1/executions", rule_ref=flow.rule_ref)), timeout=60, desc="kafka execution")
    assert ex["status"] == "completed", ex
    assert "from-kafka" in json.dumps(ex["result"]), ex
    events = dapi.items("/api/v1/events", trigger_ref=flow.trigger_ref)
    assert len(events) == 1 and events[0]["source_ref"] == "webhook", events

    c = confluent_kafka.Consumer({"bootstrap.servers": cluster.broker.bootstrap, "group.id": "e2e-dl",
                                  "auto.offset.reset": "earliest"})
    c.subscribe(["attune.deadletter"])
    found = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(found) < 2:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        v = json.loads(m.value())
        if v.get("source_topic") == "attune.webhooks" and m.key() in (flow.key.encode(), b"no-such-key"):
            found[v["reason_code"]] = v
    c.close()
    assert set(found) == {"invalid_json", "unknown_webhook_key"}, found
    bad = found["invalid_json"]
    assert bad["http_status"] == 400 and bad["original_value"] == "{not json", bad
    assert bad["reason"].startswith("Invalid JSON payload"), bad
    metrics = dapi.get("/metrics").text
    assert 'attune_kafka_ingress_records_total{outcome="invalid_json",topic="attune.webhooks"}' in metrics \
        or 'outcome="invalid_json"' in metrics, metrics


def read_deadletters(cluster, keys: set, group: str, timeout: float = 30) -> dict:
    """attune.deadletter records whose key is in `keys`, by key."""
    import confluent_kafka
    c = confluent_kafka.Consumer({"bootstrap.servers": cluster.broker.bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest"})
    c.subscribe(["attune.deadletter"])
    found = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < len(keys):
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        if m.key() is not None and m.key().decode() in keys:
            found[m.key().decode()] = (json.loads(m.value()), dict(m.headers() or []))
    c.close()
    return found


def ingress_event_id(source: int, partition: int, offset: int) -> int:
    """API.md §18 / topology/core/ids.h: natural id of the record at (topic, partition, offset)."""
    return (1 << 52) | (1 << 51) | (source << 50) | (partition << 40) | offset


def test_kafka_producers_events_ingress_token_header_and_deadletter(cluster, dapi):
    """Kafka producers on attune.events.ingress: `api_token` in the body or an `authorization`
    header fire the trigger like POST /api/v1/events (the token is never stored); a bad token and a
    malformed value are dead-lettered with reason codes unauthorized / invalid_json."""
    confluent_kafka = pytest.importorskip("confluent_kafka")  # Debian python3-confluent-kafka
    flow = dapi.webhook_flow('echo "tag=$message"', action_params={"message": "{{ event.payload.tag }}"})
    token = dapi.token
    u = flow.rule_ref.rsplit("_", 1)[-1]
    delivered = {}

    def on_delivery(err, msg):
        assert err is None, err
        delivered[msg.key().decode()] = (msg.partition(), msg.offset())

    p = confluent_kafka.Producer({"bootstrap.servers": cluster.broker.bootstrap})
    topic = "attune.events.ingress"
    p.produce(topic, key=f"{u}-body", on_delivery=on_delivery,
              value=json.dumps({"trigger_ref": flow.trigger_ref, "payload": {"tag": "body-token"},
                                "api_token": token}))
    p.produce(topic, key=f"{u}-header", on_delivery=on_delivery,
              value=json.dumps({"trigger_ref": flow.trigger_ref, "payload": {"tag": "header-token"}}),
              headers=[("authorization", f"Bearer {token}")])
    p.produce(topic, key=f"{u}-badtoken", on_delivery=on_delivery,
              value=json.dumps({"trigger_ref": flow.trigger_ref, "payload": {"tag": "bad"},
                                "api_token": "not-a-valid-jwt"}))
    p.produce(topic, key=f"{u}-badjson", on_delivery=on_delivery, value=b"{not json",
              headers=[("authorization", f"Bearer {token}")])
    assert p.flush(10) == 0
    assert len(delivered) == 4, delivered

    def two_done():
        ex = dapi.items("/api/v1/executions", rule_ref=flow.rule_ref)
        return ex if len(ex) >= 2 and all(e["status"] in TERMINAL for e in ex) else None
    execs = wait_for(two_done, timeout=60, desc="two events.ingress executions")
    assert len(execs) == 2, execs
    assert all(e["status"] == "completed" for e in execs), execs
    outputs = sorted(dapi.get_data(f"/api/v1/executions/{e['id']}")["result"]["stdout"] for e in execs)
    assert outputs == ["tag=body-token\n", "tag=header-token\n"], outputs

    events = dapi.items("/api/v1/events", trigger_ref=flow.trigger_ref)
    assert len(events) == 2, events
    # Each event's id is derived from its record's position (source bit 1 = attune.events.ingress).
    expected_ids = {ingress_event_id(1, *delivered[f"{u}-body"]),
                    ingress_event_id(1, *delivered[f"{u}-header"])}
    assert {e["id"] for e in events} == expected_ids, (events, delivered)
    for e in events:
        full = dapi.get_data(f"/api/v1/events/{e['id']}")
        text = json.dumps(full)
        assert "api_token" not in text and token not in text, full
        assert full["payload"]["tag"] in ("body-token", "header-token"), full
    enfs = dapi.items("/api/v1/enforcements", rule_ref=flow.rule_ref)
    assert sorted(e["event"] for e in enfs) == sorted(expected_ids), enfs

    found = read_deadletters(cluster, {f"{u}-badtoken", f"{u}-badjson"}, group=f"e2e-dl-{u}")
    assert set(found) == {f"{u}-badtoken", f"{u}-badjson"}, found
    bad_token, _ = found[f"{u}-badtoken"]
    assert bad_token["reason_code"] == "unauthorized" and bad_token["http_status"] == 401, bad_token
    assert bad_token["source_topic"] == topic, bad_token
    assert (bad_token["partition"], bad_token["offset"]) == delivered[f"{u}-badtoken"], bad_token
    assert "api_token" not in bad_token["original_value"], bad_token
    assert json.loads(bad_token["original_value"])["payload"] == {"tag": "bad"}, bad_token
    bad_json, headers = found[f"{u}-badjson"]
    assert bad_json["reason_code"] == "invalid_json" and bad_json["http_status"] == 400, bad_json
    assert bad_json["original_value"] == "{not json", bad_json
    assert not any(k.lower() == "authorization" for k in headers), headers
    assert token not in json.dumps(bad_json), bad_json
    metrics = dapi.get("/metrics").text
    for outcome in ("accepted", "unauthorized", "invalid_json"):
        assert f'outcome="{outcome}",topic="{topic}"' in metrics, outcome


def test_overload_flood_across_processes(cluster, dapi):
    """Issue 12 on Kafka: webhooks as fast as 6 clients can send them to the API process for 6 s (the
    mock keeps ~5 MiB per partition, so the flood stays short): no process dies, every accepted webhook
    runs exactly once."""
    flow = dapi.webhook_flow("true")
    flood = Flood(f"{cluster.procs['api'].api_url}/api/v1/webhooks/{flow.key}", clients=6).start()
    time.sleep(6)
    flood.finish()
    assert not flood.failed and not flood.errors, (flood.failed + flood.errors)[:5]
    assert len(flood.accepted) >= 200, f"only {len(flood.accepted)} webhooks accepted"
    for name, srv in cluster.procs.items():
        assert srv.running(), f"{name} died under the flood\n{srv.log_tail()}"
    accepted = len(flood.accepted)

    def total(path, **filters):
        return dapi.list(path, page_size=1, **filters)["pagination"]["total_items"]

    wait_for(lambda: total("/api/v1/executions", rule_ref=flow.rule_ref, status="completed") >= accepted,
             timeout=120, interval=0.25, desc=f"{accepted} executions completed")
    assert total("/api/v1/events", trigger_ref=flow.trigger_ref) == accepted
    assert total("/api/v1/enforcements", rule_ref=flow.rule_ref) == accepted
    assert total("/api/v1/executions", rule_ref=flow.rule_ref) == accepted  # none doubled
