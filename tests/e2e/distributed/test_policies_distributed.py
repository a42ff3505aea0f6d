"""Policies on Kafka (issue 17, DESIGN.md §2: admission is a stage keyed by action ref with its queues
in its own store; "on both logs, after kill -9, the queue order, the running counts and the stats are
exactly as before the crash").

A mock Kafka broker and separate api, rules, executor and two worker processes (`dist.Cluster`):

* 50 executions of a quick recording action queued behind a concurrency limit of 1; the process
  running the executor (admission) role is killed with SIGKILL twice at points drawn from a seed and
  restarted — once on its own data directory, once on a new one (its stores restored from their
  changelogs). The workers keep running, so nothing is lost: all 50 complete, one at a time, in
  submission order, none twice; queue stats end 50 / 50 / 0 / 0.
* cancel of a `scheduled` execution: with both workers down an execution cannot start; cancelled, it
  ends `cancelled` once the workers are back and never does its work.
* (soak) a retry's backoff timer survives a kill -9 of the executor: the retry runs once, not early.

Replay a schedule with ATTUNE_POLICY_CRASH_SEED=<seed>.
"""
from __future__ import annotations

import os
import random
import time

import pytest

from attune_e2e import NON_TERMINAL, TERMINAL, expect
from dist import Cluster
from policy_util import SLEEPER, Recorder, Watch, check_queued_run, concurrency, create_policy, queue_stats

pytestmark = pytest.mark.restart

N = 50
ADMISSION_ROLE = ("executor", "executor", 3)  # name, roles, node id: the process running admission


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("distpolicies")).start()
    yield c
    c.stop()


def _seed() -> int:
    env = os.environ.get("ATTUNE_POLICY_CRASH_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 31)


def _log_tails(cluster, names=("executor", "worker-a", "worker-b"), lines=30) -> str:
    out = []
    for n in names:
        if n in cluster.procs:
            text = [x for x in cluster.procs[n].log_path.read_text(errors="replace").splitlines()
                    if "kafka CONF" not in x and "AUTOCREATE" not in x]
            out.append(f"--- {cluster.procs[n].log_path} ---\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


def test_cancel_a_scheduled_execution(cluster, tmp_path):
    api = cluster.procs["api"].admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.work"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    rec = Recorder(tmp_path / "records")
    # warm up: a run completes (workers joined and serving)
    assert api.wait_execution(api.execute(ref, rec.params("warm", s=0))["id"], timeout=60)["status"] == "completed"
    for w in ("worker-a", "worker-b"):
        cluster.procs[w].kill9()
    try:
        ex = api.execute(ref, rec.params("held", s=2))
        held = api.wait_execution(ex["id"], statuses={"scheduling", "scheduled"}, timeout=20)
        time.sleep(1.0)  # no worker: it stays where it is
        held = api.get_data(f"/api/v1/executions/{ex['id']}")
        assert held["status"] in ("scheduling", "scheduled"), f"with no worker alive: {held}"
        got = expect(api.post(f"/api/v1/executions/{ex['id']}/cancel", json={}), 200)["data"]
        assert got["status"] in ("canceling", "cancelled"), got
        if held["status"] == "scheduling":
            assert got["status"] == "cancelled", f"before hand-off a cancel ends it at once: {got}"
    finally:
        Cluster.start_all([cluster.procs["worker-a"], cluster.procs["worker-b"]])
    done = api.wait_execution(ex["id"], timeout=60)
    assert done["status"] == "cancelled", f"a cancelled {held['status']} execution ended {done['status']}: {done}"
    time.sleep(3)  # the action would have finished its 2 s by now
    assert "held" not in [t for k, t, _ in rec.lines() if k == "end"], \
        f"the cancelled execution did its work: {rec.lines()}"
    assert api.get_data(f"/api/v1/executions/{ex['id']}")["status"] == "cancelled"
    # the workers are serving again
    assert api.wait_execution(api.execute(ref, rec.params("after", s=0))["id"], timeout=60)["status"] == "completed"


def test_kill9_admission_with_50_queued_behind_limit_1(cluster, tmp_path):
    seed = _seed()
    rng = random.Random(seed)
    print(f"distributed policy crash seed {seed} (replay: ATTUNE_POLICY_CRASH_SEED={seed})")
    t0 = time.monotonic()
    api = cluster.procs["api"].admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.quick"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    rec = Recorder(tmp_path / "records")
    tags = [str(i) for i in range(1, N + 1)]
    ids = [api.execute(ref, rec.params(t, s=0.1))["id"] for t in tags]
    # On Kafka the API's view of executions of different partitions may lag one another: the
    # one-at-a-time check is on the action's own records (and on queue stats' invariants).
    w = Watch(api, ref)
    kill_times: list[float] = []
    timeline: list[str] = []

    def ctx() -> str:
        return f"seed {seed} (replay: ATTUNE_POLICY_CRASH_SEED={seed}); {'; '.join(timeline)}"

    def reach(k: int) -> None:
        w.until(lambda s: len(rec.starts()) >= k, timeout=60, interval=0.02, desc=f"{k} runs")

    k1 = rng.randint(5, 15)
    k2 = rng.randint(k1 + 10, 40)
    fresh_first = rng.random() < 0.5
    try:
        w.until(lambda s: s.stats["total_enqueued"] == N, timeout=60, desc=f"all {N} through admission")
        for k, fresh in ((k1, fresh_first), (k2, not fresh_first)):
            reach(k)
            before = queue_stats(api, ref)
            assert cluster.procs["executor"].kill9() == -9
            kill_times.append(time.time())
            down = rng.uniform(0, 1.5)
            timeline.append(f"executor killed after {len(rec.starts())} runs, down {down:.2f}s"
                            + (", back on a new data dir" if fresh else ""))
            time.sleep(down)
            srv = cluster.role(*ADMISSION_ROLE) if fresh else cluster.procs["executor"]
            Cluster.start_all([srv])
            after = w.until(lambda s: True).stats
            assert after["total_enqueued"] == N and after["total_completed"] >= before["total_completed"], \
                f"queue stats before the kill {before}, after the restart {after}"
        snap = w.until(lambda s: all(s.status(i) in TERMINAL for i in ids) and s.stats["total_completed"] == N,
                       timeout=max(30.0, 110 - (time.monotonic() - t0)), interval=0.1,
                       desc=f"all {N} terminal and counted")
    except AssertionError as e:
        stuck = [(i, w.last.status(i)) for i in ids if w.last and w.last.status(i) in NON_TERMINAL]
        raise AssertionError(f"{ctx()}: {e}\nnot terminal: {stuck[:10]}\n{_log_tails(cluster)}") from None
    st = snap.stats
    assert (st["total_enqueued"], st["total_completed"], st["queue_length"], st["active_count"]) == (N, N, 0, 0), \
        f"{ctx()}: final queue stats {st}"
    rows = [snap.rows[i] for i in ids]
    problems = check_queued_run(rec, rows, tags, kill_times, allow_abandoned=False)
    assert not problems, f"{ctx()}:\n" + "\n".join(problems) + f"\nstarts: {rec.starts()}\n{_log_tails(cluster)}"
    print("; ".join(timeline), f"({time.monotonic() - t0:.1f}s)")


@pytest.mark.soak  # ~35 s: the restarted executor rejoins its consumer groups
def test_retry_timer_survives_an_executor_kill(cluster, tmp_path):
    """A backoff timer is committed state of the executor: killed during the delay and restarted, the
    retry runs once, not early."""
    from policy_util import FLAKY, assert_no_more, assert_retry_chain, wait_attempts
    api = cluster.procs["api"].admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.flaky"
    api.create_action(ref, FLAKY, timeout_seconds=60)
    rec = Recorder(tmp_path / "records")
    first = api.wait_execution(api.execute(ref, rec.params("x", fail_times=1),
                                           retry={"max_retries": 2, "backoff": "constant",
                                                  "delay_seconds": 3})["id"], timeout=60)
    assert first["status"] == "failed", first
    assert cluster.procs["executor"].kill9() == -9
    time.sleep(0.5)
    Cluster.start_all([cluster.procs["executor"]])
    rows = wait_attempts(api, ref, 2, timeout=60, final={"completed"})
    assert_retry_chain(rows, ["failed", "completed"])
    spans = rec.spans()
    gap = spans["2"][0] - spans["1"][1]
    assert gap >= 3.0, f"the retry came {gap:.2f}s after the failure, its delay is 3 s"
    assert_no_more(api, ref, 2, hold=2.0)
    assert (rec.dir / "count").read_text().strip() == "2"
