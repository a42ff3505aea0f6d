"""Distributed hardening (issue 13) on librdkafka's mock cluster, as users deploy it: two API
instances, two workers started alike on one host with default flags, separate rules and executor
processes. Worker identity and liveness per process start (T3.12), exactly one winner per ref
across API instances, consistency tokens, node-id collisions refused."""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests

from attune_e2e import TERMINAL, expect, expect_error, uid, wait_for
from dist import Cluster, RoleServer

HEADER = "X-Attune-Consistency"


class HardeningCluster(Cluster):
    def start(self) -> "HardeningCluster":
        self.broker.start()
        self.role("api", "api", 1).start()
        self.role("api2", "api", 2).start()
        self.start_all([self.role("rules", "rules", 3), self.role("executor", "executor", 4),
                        # Default flags: same (default) node id, no --worker-name, same host.
                        self.role("worker-a", "worker", None), self.role("worker-b", "worker", None)])
        return self


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = HardeningCluster(tmp_path_factory.mktemp("hardening")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def api1(cluster):
    return cluster.procs["api"].admin_client()


@pytest.fixture(scope="module")
def api2(cluster):
    return cluster.procs["api2"].admin_client()


def test_t3_12_two_default_workers_on_one_host_kill9_one(cluster, api1):
    host = socket.gethostname()
    workers = wait_for(lambda: (lambda w: w if len(w) >= 2 else None)(
        api1.items("/api/v1/workers", status="active")), timeout=30, desc="two active workers")
    names = [w["name"] for w in workers]
    assert len(set(names)) == 2, names
    assert all(n.startswith(f"{host}-0-") for n in names), names  # host and node id, then instance
    assert len({w["id"] for w in workers}) == 2, workers
    pids = {w["name"]: w["meta"]["pid"] for w in workers}
    by_pid = {cluster.procs[k].proc.pid: k for k in ("worker-a", "worker-b")}
    assert set(pids.values()) == set(by_pid), (pids, by_pid)

    flow = api1.webhook_flow("sleep 5; echo done")
    events = [api1.fire(flow.key, {"n": i})["event_id"] for i in range(10)]
    running = wait_for(lambda: api1.items("/api/v1/executions", rule_ref=flow.rule_ref,
                                          status="running") or None,
                       timeout=40, interval=0.1, desc="running executions")
    victim_name = running[0]["worker"]
    survivor_name = next(n for n in names if n != victim_name)
    on_victim = {e["id"] for e in running if e["worker"] == victim_name}
    victim = cluster.procs[by_pid[pids[victim_name]]]
    victim.kill9()
    killed_at = time.monotonic()

    # Nothing stays running: the victim's executions end abandoned although the survivor, with
    # the same host and node id, keeps heartbeating; the rest complete on the survivor.
    def settled():
        ex = api1.items("/api/v1/executions", rule_ref=flow.rule_ref, page_size=100)
        return ex if len(ex) >= len(events) and all(e["status"] in TERMINAL for e in ex) else None
    execs = wait_for(settled, timeout=60, interval=0.25, desc="all executions terminal")
    settle_s = time.monotonic() - killed_at
    assert len(execs) == len(events), len(execs)
    assert len({e["enforcement"] for e in execs}) == len(events)
    statuses = Counter(e["status"] for e in execs)
    for e in execs:
        if e["id"] in on_victim:
            assert e["status"] == "abandoned" and e["worker"] == victim_name, e
            assert victim_name in e["result"]["error"], e
        elif e["status"] != "completed":
            assert e["status"] == "abandoned" and e["worker"] == victim_name, e
    assert statuses["abandoned"] >= len(on_victim), statuses
    print(f"victim's executions settled {settle_s:.1f}s after kill -9 ({dict(statuses)})")

    # GET /workers lists both: the dead one as inactive, the survivor active.
    def listed():
        w = {x["name"]: x for x in api1.items("/api/v1/workers")}
        ok = (w.get(victim_name, {}).get("status") == "inactive"
              and w.get(survivor_name, {}).get("status") == "active")
        return w if ok else None
    wait_for(listed, timeout=20, desc="victim inactive, survivor active")

    # A restarted worker is a new identity; the old one stays inactive.
    victim.start()
    def three():
        w = {x["name"]: x["status"] for x in api1.items("/api/v1/workers")}
        new = [n for n in w if n not in (victim_name, survivor_name)]
        return w if len(new) == 1 and w[new[0]] == "active" and w[victim_name] == "inactive" else None
    wait_for(three, timeout=30, desc="restarted worker listed as a new identity")


def race(fn_a, fn_b):
    out = {}
    barrier = threading.Barrier(2)

    def run(name, fn):
        barrier.wait()
        out[name] = fn()
    ts = [threading.Thread(target=run, args=("a", fn_a)), threading.Thread(target=run, args=("b", fn_b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out["a"], out["b"]


def test_two_api_instances_racing_for_refs_one_winner_each(api1, api2):
    refs = [f"race_{uid(6)}_{i}" for i in range(20)]
    outcomes = []
    for ref in refs:
        a, b = race(lambda: api1.post("/api/v1/packs", json={"ref": ref, "label": "from api1", "version": "1.0.0"}),
                    lambda: api2.post("/api/v1/packs", json={"ref": ref, "label": "from api2", "version": "1.0.0"}))
        outcomes.append(sorted([a.status_code, b.status_code]))
        winner = a if a.status_code == 201 else b
        loser = b if winner is a else a
        assert sorted([a.status_code, b.status_code]) == [201, 409], (ref, a.text, b.text)
        assert loser.json()["error"] == f"Pack '{ref}' already exists", loser.text
        won = winner.json()["data"]
        # Both instances agree on the winner (with the consistency token of the winner's answer).
        for api in (api1, api2):
            got = expect(api.get(f"/api/v1/packs/{ref}", headers={HEADER: winner.headers[HEADER]}), 200)
            assert got["data"]["id"] == won["id"] and got["data"]["label"] == won["label"], got
    assert outcomes == [[201, 409]] * len(refs)

    # The same for actions (pack-scoped refs), identity logins and datastore keys.
    pack = refs[0]
    for i in range(5):
        ref = f"{pack}.act{i}"
        body = {"ref": ref, "pack_ref": pack, "label": "a", "runtime_ref": "core.shell", "entrypoint": "true"}
        a, b = race(lambda: api1.post("/api/v1/actions", json=body),
                    lambda: api2.post("/api/v1/actions", json=body))
        assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)
        login = f"racer_{uid(6)}"
        reg = {"login": login, "password": "correct-horse-battery"}
        a, b = race(lambda: api1.post("/auth/register", json=reg, auth=False),
                    lambda: api2.post("/auth/register", json=reg, auth=False))
        assert sorted([a.status_code, b.status_code]) == [200, 409], (a.text, b.text)
        key = {"local_ref": f"race_key_{uid(6)}", "value": "v"}
        a, b = race(lambda: api1.post("/api/v1/keys", json={**key, "value": "a"}),
                    lambda: api2.post("/api/v1/keys", json={**key, "value": "b"}))
        assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)


def test_consistency_token_read_your_writes_on_another_instance(api1, api2):
    # A write on one instance, then a read on the other carrying the write's token.
    for i in range(10):
        ref = f"cons_{uid(6)}_{i}"
        r = api1.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1.0.0"})
        assert r.status_code == 201 and HEADER in r.headers, (r.text, r.headers)
        assert r.headers[HEADER].startswith("definitions="), r.headers[HEADER]
        got = api2.get(f"/api/v1/packs/{ref}", headers={HEADER: r.headers[HEADER]})
        assert got.status_code == 200, got.text
    # Executions: requested on one instance, visible on the other with the token.
    act = api1.create_action(f"{api1.create_pack()['ref']}.cons", "echo hi")
    r = api1.post("/api/v1/executions/execute", json={"action_ref": act["ref"], "parameters": {}})
    assert r.status_code in (200, 201), r.text
    ex_id = r.json()["data"]["id"]
    got = api2.get(f"/api/v1/executions/{ex_id}", headers={HEADER: r.headers[HEADER]})
    assert got.status_code == 200, got.text
    # Webhooks are answered once durable: the token names the event itself.
    flow = api1.webhook_flow("true")
    r = api1.post(f"/api/v1/webhooks/{flow.key}", json={"payload": {"x": 1}}, auth=False)
    assert r.status_code == 200, r.text
    ev = r.json()["data"]["event_id"]
    assert "events=" in r.headers[HEADER], r.headers[HEADER]
    got = api2.get(f"/api/v1/events/{ev}", headers={HEADER: r.headers[HEADER]})
    assert got.status_code == 200, got.text
    # A malformed token is the client's error; a position this instance cannot reach is a 503.
    expect_error(api2.get("/api/v1/packs", headers={HEADER: "events=x"}), 400)
    expect_error(api2.get("/api/v1/packs", headers={HEADER: "nosuchtopic=1"}), 400)
    far = api2.get("/api/v1/packs", headers={HEADER: "definitions=999999999"})
    assert far.status_code == 503 and far.headers.get("Retry-After") == "1", far.text


def test_same_node_id_as_a_live_process_refuses_to_start(cluster):
    rules = cluster.procs["rules"]
    dup = RoleServer(rules.binary, cluster.base / "dup-rules", cluster.broker.bootstrap, "rules",
                     rules.node_id, cluster.jwt, cluster.password)
    dup.data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(dup.command(), env=dup.env(), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    took = time.monotonic() - t0
    err = proc.stderr.decode()
    assert proc.returncode != 0, err[-2000:]
    assert f"node id {rules.node_id} is in use by a live process" in err, err[-2000:]
    assert "--node-id" in err
    assert took < 30, took
    # Processes that mint no ids (workers) may share a node id: the two workers above do.
