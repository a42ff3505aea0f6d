"""Crash safety of the admission queue (issue 17: "kill -9 with 50 executions queued behind a limit of 1,
restart → all 50 run, one at a time, in the original submission order, none twice"; SCENARIOS.md
"Crash safety"; queue stats "accurate at all times (also right after a restart)").

50 executions of a quick recording action (policy_util.SLEEPER, 0.1 s) are submitted behind a
concurrency limit of 1; `attune serve` is killed with SIGKILL at points drawn from a seed (after some
runs, again after more runs, and once right after a restart, during its recovery) and started again
on the same data directory each time. Expectation:

* every execution ends, in submission order, one at a time, none twice (the action's records);
* an execution in flight at a kill is lost with its worker and may end `abandoned` (README "Retries of
  lost work": no retries are configured) — at most one per kill, never run twice; all others
  `completed`;
* queue stats: right after each restart `total_enqueued` is 50, they add up, `total_completed`
  never goes back; at the end 50 / 50 / 0 queued / 0 active.

Replay a failing schedule with ATTUNE_POLICY_CRASH_SEED=<seed> (printed and in the failure).
"""
from __future__ import annotations

import os
import random
import time

import pytest

from attune_e2e import TERMINAL
from policy_util import SLEEPER, Recorder, Watch, check_queued_run, concurrency, create_policy, queue_stats

pytestmark = pytest.mark.restart

N = 50


def _seed() -> int:
    env = os.environ.get("ATTUNE_POLICY_CRASH_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 31)


def test_kill9_with_50_queued_behind_limit_1(server_factory, tmp_path):
    seed = _seed()
    rng = random.Random(seed)
    print(f"policy crash seed {seed} (replay: ATTUNE_POLICY_CRASH_SEED={seed})")
    srv = server_factory.start_new("polcrash")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.quick"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    rec = Recorder(tmp_path / "records")
    tags = [str(i) for i in range(1, N + 1)]
    ids = [api.execute(ref, rec.params(t, s=0.1))["id"] for t in tags]
    w = Watch(api, ref, limit=1)
    w.until(lambda s: s.stats["total_enqueued"] == N, timeout=30, desc=f"all {N} through admission")

    k1 = rng.randint(4, 14)
    k2 = rng.randint(k1 + 8, 38)
    kill_times: list[float] = []
    timeline: list[str] = []
    last_completed = 0

    def ctx() -> str:
        return f"seed {seed} (replay: ATTUNE_POLICY_CRASH_SEED={seed}); {'; '.join(timeline)}"

    def kill(why: str) -> None:
        rc = srv.kill9()
        kill_times.append(time.time())
        assert rc == -9, f"{ctx()}: not killed by SIGKILL ({rc})"
        timeline.append(f"kill -9 {why} ({len(rec.starts())} started)")

    def restart(check_stats: bool = True):
        srv.start()
        a = srv.admin_client()
        if check_stats:
            st = queue_stats(a, ref)
            assert st["total_enqueued"] == N, f"{ctx()}: right after restart total_enqueued {st}"
            assert st["total_completed"] >= last_completed, \
                f"{ctx()}: total_completed went back from {last_completed} across the restart: {st}"
            assert st["queue_length"] + st["active_count"] + st["total_completed"] == N, f"{ctx()}: {st}"
            assert st["active_count"] <= 1 and st["max_concurrent"] == 1, f"{ctx()}: {st}"
        return a

    def runs_reach(k: int, watch: Watch) -> None:
        nonlocal last_completed

        def pred(s):
            return len(rec.starts()) >= k
        snap = watch.until(pred, timeout=40, interval=0.02, desc=f"{k} runs")
        last_completed = snap.stats["total_completed"]

    try:
        runs_reach(k1, w)
        kill(f"after {k1} runs")
        time.sleep(rng.uniform(0, 1.0))
        api = restart()
        w = Watch(api, ref, limit=1)
        runs_reach(k2, w)
        kill(f"after {k2} runs")
        api = restart()
        kill("right after the restart (recovery)")
        time.sleep(rng.uniform(0, 0.5))
        api = restart()
        w = Watch(api, ref, limit=1)
        snap = w.until(lambda s: all(x in TERMINAL for x in (s.status(i) for i in ids))
                       and s.stats["total_completed"] == N, timeout=60, interval=0.1,
                       desc=f"all {N} terminal and counted")
    except AssertionError as e:
        raise AssertionError(f"{ctx()}: {e}") from None

    st = snap.stats
    assert (st["total_enqueued"], st["total_completed"], st["queue_length"], st["active_count"]) == (N, N, 0, 0), \
        f"{ctx()}: final queue stats {st}"
    rows = [snap.rows[i] for i in ids]
    problems = check_queued_run(rec, rows, tags, kill_times, allow_abandoned=True)
    assert not problems, f"{ctx()}:\n" + "\n".join(problems) + f"\nstarts: {rec.starts()}"
    done = [r for r in rows if r["status"] == "completed"]
    assert len(done) >= N - len(kill_times), f"{ctx()}: only {len(done)} completed"
    print("; ".join(timeline), f"— {len(done)} completed, "
          f"{[r['id'] for r in rows if r['status'] != 'completed']} abandoned")


def test_rate_window_survives_kill9(server_factory, tmp_path):
    """The sliding window is part of the committed admission state: a kill -9 right after a start and
    an immediate restart do not let the next start come before the window allows it."""
    srv = server_factory.start_new("ratecrash")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.quick"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "slow", action_ref=ref, rate_limit={"max_executions": 1, "window_seconds": 3})
    rec = Recorder(tmp_path / "records")
    tags = ["w1", "w2", "w3"]
    ids = [api.execute(ref, rec.params(t, s=0))["id"] for t in tags]
    w = Watch(api, ref)
    w.until(lambda s: s.status(ids[0]) == "completed" and s.stats["total_completed"] >= 1, timeout=20,
            desc="w1 completed")
    srv.kill9()
    srv.start()
    api = srv.admin_client()
    w = Watch(api, ref)
    snap = w.until(lambda s: all(s.status(i) in TERMINAL for i in ids) and s.stats["total_completed"] == 3,
                   timeout=40, desc="all 3 terminal")
    assert [snap.status(i) for i in ids] == ["completed"] * 3, snap.rows
    spans = rec.spans()
    starts = [spans[t][0] for t in tags]
    assert rec.starts() == tags, rec.starts()
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    assert all(g >= 3 - 0.15 for g in gaps), f"starts {gaps} s apart under 1 per 3 s across a kill -9"


def test_queue_survives_kill9_and_a_queued_cancel_after_restart(server_factory, tmp_path):
    """The queue (its order, its members) is committed state: after kill -9 and restart the queued
    executions run in their order, and cancelling one of them takes it out of the queue."""
    from policy_util import GATED, states
    srv = server_factory.start_new("queuecrash")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    ref = f"{pack}.gated"
    api.create_action(ref, GATED, timeout_seconds=90)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    rec = Recorder(tmp_path / "records")
    try:
        tags = ["k1", "k2", "k3", "k4", "k5"]
        ids = [api.execute(ref, rec.params(t))["id"] for t in tags]
        w = Watch(api, ref, limit=1)
        w.until(lambda s: states(s, ids) == ["running"] + ["scheduling"] * 4 and s.stats["queue_length"] == 4
                and rec.starts() == ["k1"], desc="k1 running, 4 queued")
        rec.open("k1")
        w.until(lambda s: states(s, ids)[:2] == ["completed", "running"] and rec.starts() == ["k1", "k2"],
                desc="k2 running")
        srv.kill9()
        srv.start()
        api = srv.admin_client()
        w = Watch(api, ref, limit=1)
        st = w.until(lambda s: True).stats
        assert st["total_enqueued"] == 5 and st["total_completed"] >= 1, st
        # k2's worker died with the server: k2 ends (abandoned), the queue moves on in order
        got = expect_ok_cancel(api, ids[3])
        assert got["status"] == "cancelled", f"k4 was queued: cancelled at once: {got}"
        w.until(lambda s: s.status(ids[2]) == "running", timeout=30, desc="k3 running after the restart")
        rec.open("k3", "k5")
        snap = w.until(lambda s: all(s.status(i) in TERMINAL for i in ids) and s.stats["total_completed"] == 5,
                       timeout=30, desc="all terminal")
        assert states(snap, ids)[2:] == ["completed", "cancelled", "completed"], states(snap, ids)
        assert states(snap, ids)[1] in ("abandoned", "completed"), states(snap, ids)
        starts = rec.starts()
        assert "k4" not in starts and [t for t in starts if t != "k2"] == ["k1", "k3", "k5"], starts
        assert snap.stats["queue_length"] == 0 and snap.stats["active_count"] == 0, snap.stats
    finally:
        rec.open_all()


def expect_ok_cancel(api, exec_id):
    from attune_e2e import expect
    return expect(api.post(f"/api/v1/executions/{exec_id}/cancel", json={}), 200)["data"]
