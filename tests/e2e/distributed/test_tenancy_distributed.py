"""Tenant isolation across API instances (issue 15, API.md §16.3): with two API processes on one
Kafka cluster, every instance enforces the same rights from the definitions table — a tenant's
pack, action and executions made through one instance are invisible (404, unlisted, not counted)
to another tenant and to a core.admin holder on the other instance, and rights granted on one
instance hold on the other at once."""
from __future__ import annotations

import threading
import time

import pytest

from attune_e2e import attune_bin, expect, parse_ts, random_password, uid
from dist import MockBroker, RoleServer
from tenants import assign, register, total


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist-tenancy")
    broker = MockBroker(base / "mock_kafka.log").start()
    jwt, password = random_password(48), random_password()
    procs = {}

    def role(name, roles, node_id):
        srv = RoleServer(attune_bin(), base / name, broker.bootstrap, roles, node_id, jwt, password)
        procs[name] = srv
        return srv

    role("api1", "api", 1).start()
    api_url = procs["api1"].api_url
    starters = [role("api2", "api", 2), role("core", "rules,executor", 3),
                RoleServer(attune_bin(), base / "worker", broker.bootstrap, "worker", 4, jwt, password,
                           extra_args=["--api-url", api_url])]
    procs["worker"] = starters[-1]
    threads = [threading.Thread(target=s.start) for s in starters]
    [t.start() for t in threads]
    [t.join() for t in threads]
    yield procs["api1"], procs["api2"]
    for srv in procs.values():
        if srv.running():
            srv.stop(grace=10)
    broker.stop()


def eventually(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_every_api_instance_enforces_the_same_rights(two_apis):
    api1, api2 = two_apis
    admin1, admin2 = api1.admin_client(), api2.admin_client()
    alice = register(api1, "alice")
    assign(admin1, alice, "core.editor")
    bob = register(api2, "bob")
    assign(admin2, bob, "core.viewer")
    ref = f"dt_{uid()}"
    alice.create_pack(ref)
    action = alice.create_action(f"{ref}.hi", "echo hi")
    ex = alice.wait_execution(alice.execute(action["ref"], {})["id"], timeout=60)
    assert ex["status"] == "completed", ex

    # Alice's own token on the other instance sees it once the instance has caught up...
    alice2 = api2.client(alice.token)
    eventually(lambda: expect(alice2.get(f"/api/v1/executions/{ex['id']}"), 200))
    eventually(lambda: expect(alice2.get(f"/api/v1/packs/{ref}"), 200))
    # ...while Bob and the administrator on that instance see nothing of it.
    bob2 = api2.client(bob.token)
    for who in (bob2, admin2):
        expect(who.get(f"/api/v1/packs/{ref}"), 404)
        expect(who.get(f"/api/v1/actions/{action['ref']}"), 404)
        expect(who.get(f"/api/v1/executions/{ex['id']}"), 404)
        expect(who.post("/api/v1/executions/execute", json={"action_ref": action["ref"]}), 404)
        assert ref not in {p["ref"] for p in who.items("/api/v1/packs", page_size=100)}
        assert total(who, "/api/v1/executions", pack_ref=ref) == 0
    assert total(bob2, "/api/v1/executions") == 0

    # A grant naming the pack, made on instance 1, opens it to Bob on instance 2.
    set_ref = f"see_{uid()}"
    expect(admin1.post("/api/v1/permissions/sets", json={
        "ref": set_ref, "grants": [
            {"resource": "executions", "actions": ["read"], "constraints": {"pack_refs": [ref]}}]}), 201)
    assign(admin1, bob, set_ref)
    eventually(lambda: expect(bob2.get(f"/api/v1/executions/{ex['id']}"), 200))
    assert total(bob2, "/api/v1/executions", pack_ref=ref) == 1
    # Visible now, but a viewer may not run it: 403, not 404.
    expect(bob2.post("/api/v1/executions/execute", json={"action_ref": action["ref"]}), 403)


def test_inquiries_across_api_instances_and_the_executor_process(two_apis):
    """API.md §13 on Kafka: an inquiry created through one API instance is answered through the other
    (each waits for its own projection: read-your-writes), another times out on time by the executor
    process's punctuation, and a tenant without the pack sees neither."""
    api1, api2 = two_apis
    admin1 = api1.admin_client()
    ref = f"dq_{uid()}"
    admin1.create_pack(ref)
    action = admin1.create_action(f"{ref}.hi", "echo hi")
    ex = admin1.wait_execution(admin1.execute(action["ref"], {})["id"], timeout=60)
    q = expect(admin1.post("/api/v1/inquiries", json={
        "execution": ex["id"], "prompt": "Ship?",
        "response_schema": {"approved": {"type": "boolean", "required": True}}}), 201)["data"]["inquiry"]
    t = expect(admin1.post("/api/v1/inquiries", json={"execution": ex["id"], "prompt": "Soon?",
                                                     "timeout_seconds": 2}), 201)["data"]["inquiry"]
    admin2 = api2.client(admin1.token)
    eventually(lambda: expect(admin2.get(f"/api/v1/inquiries/{q['id']}"), 200))
    expect(admin2.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": "no"}}), 400)
    done = expect(admin2.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}),
                  200)["data"]
    assert done["status"] == "responded"
    expect(admin2.post(f"/api/v1/inquiries/{q['id']}/respond", json={"response": {"approved": True}}), 409)

    def responded_on_api1():
        row = expect(admin1.get(f"/api/v1/inquiries/{q['id']}"), 200)["data"]
        assert row["status"] == "responded", row
    eventually(responded_on_api1)

    def timed_out():
        row = expect(admin1.get(f"/api/v1/inquiries/{t['id']}"), 200)["data"]
        assert row["status"] == "timeout", row
        return row
    row = eventually(timed_out, timeout=15)
    lag = (parse_ts(row["updated"]) - parse_ts(row["timeout_at"])).total_seconds()
    assert 0 <= lag < 1.0, row

    outsider = register(api1, "outsider")
    assign(admin1, outsider, "core.viewer")
    for c in (outsider, api2.client(outsider.token)):
        eventually(lambda: expect(c.get(f"/api/v1/inquiries/{q['id']}"), 404))
        assert expect(c.get("/api/v1/inquiries", params={"execution": ex["id"]}), 200)["items"] == []
