"""Workflows in distributed mode (Kafka): the executor runs workflows in its own process; a kill -9
of the executor mid-workflow and a restart on a NEW data directory (store restored from the
changelog) resumes the run with every task run exactly once, delay timers included."""
from __future__ import annotations

import time

import pytest

from attune_e2e import wait_for
from dist import Cluster
from wf_util import children, create_workflow, output, tasks_of


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("distwf")).start()
    yield c
    c.stop()


def test_workflow_survives_executor_kill9_on_kafka(cluster):
    api = cluster.procs["api"].admin_client()
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.say", 'sleep "$nap"; printf "%s" "$msg"')
    create_workflow(api, f"{pack}.flow", {"version": "1", "tasks": [
        {"name": "a", "action": f"{pack}.say", "input": {"msg": "a", "nap": 1}, "on_success": "b"},
        {"name": "b", "action": f"{pack}.say", "input": {"msg": "b", "nap": 0}, "delay": 2,
         "on_success": "c"},
        {"name": "c", "action": f"{pack}.say", "input": {"msg": "{{ item }}", "nap": 0},
         "with_items": "{{ ['x', 'y', 'z'] }}", "concurrency": 2},
    ], "output_map": {"said": "{{ task.c.result | length }}", "b": "{{ task.b.result.stdout }}"}})
    wf = api.execute(f"{pack}.flow", {})
    wait_for(lambda: any(c["workflow_task"]["task_name"] == "a" and c["status"] == "completed"
                         for c in children(api, wf["id"])), timeout=60, desc="a completed")
    cluster.procs["executor"].kill9()
    time.sleep(2.5)  # b's delay comes due while the executor is down
    cluster.role("executor", "executor", 4).start()
    done = api.wait_execution(wf["id"], timeout=90)
    assert done["status"] == "completed", done
    assert output(done) == {"said": 3, "b": "b"}
    assert {n: len(v) for n, v in tasks_of(api, wf["id"]).items()} == {"a": 1, "b": 1, "c": 3}
