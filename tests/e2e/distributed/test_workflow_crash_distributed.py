"""Workflows survive kill -9 of the executor, of workers and of the whole cluster on Kafka (issue 16;
DESIGN.md §4 "Kafka: at-least-once delivery, exactly-once effect", README "Running distributed").

A mock Kafka broker and separate api, rules, executor and two worker processes (`dist.Cluster`) run
the mix of workflows of `wf_crash_util` (three levels of nesting with a `delay`, a `parallel` task,
`with_items` with concurrency 3 and a task `retry`, a diamond with `join` and a `delay`, one
workflow designed to fail). While they run, in an order and at moments drawn from the seed:

* the executor is killed with SIGKILL and restarted — on its own data directory or on a new one
  (its store restored from the changelog);
* twice, a worker is killed and restarted after a pause, on its data directory (a restarted worker
  is a new identity and reports the attempts it finds in flight `abandoned`) or on a new one (a new
  host: the monitor abandons the lost worker's attempts after `--worker-timeout-ms` 4000);
* the executor and a worker together;
* once, the whole cluster: every role process at once, all restarted on their data directories
  against the same broker.

Expectation (the same as the embedded test, `tests/e2e/foundation/test_workflow_crash.py`): every
workflow ends (`completed`, the designed one `failed`), nothing of the pack stays non-terminal;
every expected task key (task_name, task_index) has exactly one child in its final status and no
other row but the designed first failure of an item; the side-effect line of a task appears only for
that child, at least once, and more than once only when the execution records retries after lost
attempts (the action's `max_retries` is 8) — at most `1 + retry_count` times, exactly once when
`retry_count == 0` (a killed worker's action processes are not killed with it, so an attempt cut
off by the crash may have done its work before the retry, README "Retries of lost work").

The random seed is printed and named in every failure message; replay with
`ATTUNE_WF_CRASH_SEED=<seed>`.
"""
from __future__ import annotations

import os
import random
import time

import pytest

from attune_e2e import NON_TERMINAL, wait_for
from dist import Cluster
from wf_crash_util import WORKFLOW_KINDS, check_runs, define, dump, grep_logs, params_of, summary

pytestmark = pytest.mark.restart

ROLES = {"api": ("api", 1), "rules": ("rules", 2), "executor": ("executor", 3),
         "worker-a": ("worker", 4), "worker-b": ("worker", 5)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("distwfcrash")).start()
    yield c
    c.stop()


def _seed() -> int:
    env = os.environ.get("ATTUNE_WF_CRASH_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 31)


NOISE = ("kafka CONFWARN", "kafka AUTOCREATE")


def _logs(cluster, names=("executor", "worker-a", "worker-b"), lines=40) -> str:
    """The last lines of the roles' logs, without librdkafka's configuration chatter."""
    out = []
    for n in names:
        if n not in cluster.procs:
            continue
        path = cluster.procs[n].log_path
        try:
            text = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if not any(m in x for m in NOISE)]
        except OSError:
            continue
        out.append(f"--- last {min(lines, len(text))} lines of {path} ---\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


def _warm_up(api) -> None:
    """One execution through the fresh cluster before the measured ones: right after start the
    role processes are still joining their consumer groups, and on a loaded machine the very first
    execute may outlast the API's read-your-writes wait (503, "please retry") — which is not what
    this test is about. Retried until one completes (each try is its own execution), in a pack of
    its own (the test checks every execution of its pack)."""
    pack = api.create_pack()["ref"]
    api.create_action(f"{pack}.warm", "true")
    deadline = time.monotonic() + 90
    while True:
        r = api.post("/api/v1/executions/execute", json={"action_ref": f"{pack}.warm"})
        if r.status_code == 201:
            api.wait_execution(r.json()["data"]["id"], timeout=60)
            return
        assert r.status_code == 503 and time.monotonic() < deadline, r.text


def test_kill9_executor_workers_and_cluster_resumes_every_workflow_exactly_once(cluster, tmp_path):
    seed = _seed()
    rng = random.Random(seed)
    print(f"distributed workflow crash test seed {seed} (replay: ATTUNE_WF_CRASH_SEED={seed})")
    t0 = time.monotonic()
    out_dir = tmp_path / "effects"
    out_dir.mkdir()
    api = cluster.procs["api"].admin_client()
    pack = api.create_pack()["ref"]
    define(api, pack, out_dir)
    _warm_up(api)

    runs: list[tuple[str, str, int]] = []
    n_runs = 25
    kinds = [WORKFLOW_KINDS[i % len(WORKFLOW_KINDS)] for i in range(n_runs)]
    rng.shuffle(kinds)

    def submit(client, batch):
        for kind in batch:
            w = f"W{len(runs)}"
            ex = client.execute(f"{pack}.{kind}", params_of(kind, w))
            runs.append((kind, w, ex["id"]))

    submit(api, kinds[:15])
    crashes = ["executor", "worker", "worker", "executor+worker", "cluster"]
    rng.shuffle(crashes)
    timeline = []

    def restart(names, fresh_executor, fresh_worker):
        starters = []
        for n in names:
            if (n == "executor" and fresh_executor) or (n.startswith("worker") and fresh_worker):
                starters.append(cluster.role(n, *ROLES[n]))  # on a new data directory (a new host)
            else:
                starters.append(cluster.procs[n])
        Cluster.start_all(starters)

    for i, crash in enumerate(crashes):
        wait = rng.uniform(0.3, 2.5)
        time.sleep(wait)
        worker = rng.choice(["worker-a", "worker-b"])
        names = {"executor": ["executor"], "worker": [worker], "executor+worker": ["executor", worker],
                 "cluster": list(ROLES)}[crash]
        for n in names:
            rc = cluster.procs[n].kill9()
            assert rc == -9, f"seed {seed}: {n} did not die by SIGKILL ({rc})"
        down = rng.uniform(0.0, 2.0) if crash != "cluster" else rng.uniform(0.0, 1.0)
        fresh = rng.random() < 0.5
        fresh_worker = crash != "cluster" and rng.random() < 0.3
        time.sleep(down)
        if "api" in names:
            cluster.procs["api"].start()  # first: the other roles are told where the API is
            restart([n for n in names if n != "api"], fresh, False)
            api = cluster.procs["api"].admin_client()
        else:
            restart(names, fresh, fresh_worker)
        timeline.append(f"{crash} ({','.join(names)}) after {wait:.2f}s, down {down:.2f}s"
                        + (", executor on a new data dir" if "executor" in names and fresh else "")
                        + (f", {worker} on a new data dir" if worker in names and fresh_worker else ""))
        if i == 0:
            submit(api, kinds[15:])
            timeline.append("second wave submitted")
    print("; ".join(timeline), f"({time.monotonic() - t0:.1f}s)")

    ids = {eid for _, _, eid in runs}

    def settled():
        rows = [api.get_data(f"/api/v1/executions/{eid}") for eid in ids]
        return None if any(r["status"] in NON_TERMINAL for r in rows) else rows
    try:
        # within the 120 s per-test guard, so that a stuck workflow fails with this message
        wait_for(settled, timeout=max(30.0, 110 - (time.monotonic() - t0)), interval=0.5,
                 desc="every workflow terminal after the last restart")
    except AssertionError as e:
        busy = [(r["id"], r["action_ref"], r["status"]) for r in
                (api.get_data(f"/api/v1/executions/{eid}") for eid in ids) if r["status"] in NON_TERMINAL]
        raise AssertionError(f"seed {seed}: workflows stuck after kills ({'; '.join(timeline)}): {busy}\n{e}\n"
                             f"{_logs(cluster)}")

    rep = check_runs(api, runs, out_dir, pack)
    print(summary(rep), f"in {time.monotonic() - t0:.1f}s")
    if rep.retried:
        print("retried after a crash:", dump(rep.retried[:10]))
    assert not rep.problems, (
        f"seed {seed} (replay: ATTUNE_WF_CRASH_SEED={seed}); crashes: {'; '.join(timeline)}; "
        f"{summary(rep)}\n" + "\n".join(rep.problems[:40]) + "\n"
        + grep_logs(sorted(cluster.base.glob("*/attune.log")), rep.suspects, limit=150)
        + f"\n{_logs(cluster, lines=20)}")
