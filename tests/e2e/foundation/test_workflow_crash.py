"""Workflows survive kill -9 at random moments (issue 16, DESIGN.md §4 and §9 "workflows"; README
"Workflows" and "Exactly once on the embedded log").

One `attune serve` on the embedded log runs a mix of workflows at once (`wf_crash_util`: three
levels of nesting with a `delay` at the bottom, a `parallel` task, `with_items` with concurrency 3
and a task `retry` for items that fail their first attempt by design, a diamond with `join` and a
`delay`, and a workflow designed to fail). While they run the server is killed with SIGKILL several
times at random moments and started again on the same data directory, sometimes at once, sometimes
after a pause so that `delay` and retry timers come due while it is down, and sometimes killed once
more 0.05–0.8 s into the restart (while it opens its store, replays and reports abandoned attempts).

Expectation, derived from the documentation:

* Workflow state lives in the executor's store and changes only in its transactions, so after the
  last restart every workflow ends: `completed`, or `failed` for the one designed to fail; no
  execution of the pack is left `requested`/`scheduling`/`scheduled`/`running`/`canceling`.
* A crash replays the executor's input "without creating a child twice": every expected task key
  (task_name, task_index) of every run, nested runs included, has exactly one child execution in
  its final status (`completed`; `failed` for the designed failure), never more, never none; the
  only other row a key may have is the `failed` first attempt of an item designed to fail once. No
  key that should not run (after the designed failure) has a row, no execution of the pack lies
  outside the trees.
* Side effects: each leaf action appends `ok <tag> <execution id>` to a file. "The worker records
  `running` before it starts a process; after a crash, attempts that were in flight are killed and
  reported `abandoned`", and an abandoned attempt is retried when the action's retry policy
  (`max_retries`, here 8, more than the kills) allows it (DESIGN.md §4 "never silently run twice",
  README "Retries of lost work"). A kill -9 of the whole server does not kill the action processes
  at that moment (they are killed at the next start, or have already finished), so an attempt cut
  off by a crash may have appended its line before its execution was retried. Hence, for each task
  key: the line appears only for the one final child, at least once, and more than once only if
  that execution records a retry — at most `1 + retry_count` times. With `retry_count == 0` it is
  exactly once. A line for any other execution or tag is a failure.

The random seed is printed and named in every failure message; replay with
`ATTUNE_WF_CRASH_SEED=<seed>`.
"""
from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from attune_e2e import NON_TERMINAL, wait_for
from wf_crash_util import WORKFLOW_KINDS, check_runs, define, dump, grep_logs, params_of, summary

pytestmark = pytest.mark.restart


def _seed() -> int:
    env = os.environ.get("ATTUNE_WF_CRASH_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 31)


def _start_and_kill(srv, after: float) -> int:
    """Starts `attune serve` on the server's data directory and SIGKILLs it `after` seconds later,
    whether or not it is ready by then (a crash during recovery). Output goes to the server's log."""
    with open(srv.log_path, "a", encoding="utf-8") as log:
        log.write(f"[e2e] === start during recovery, SIGKILL after {after:.2f}s\n")
        log.flush()
        proc = subprocess.Popen(srv.command(), env=srv.env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, cwd=str(srv.data_dir.parent))
        time.sleep(after)
        proc.kill()
        rc = proc.wait(10)
        log.write(f"[e2e] === exited with code {rc}\n")
    return rc


def test_kill9_at_random_moments_resumes_every_workflow_exactly_once(server_factory, tmp_path):
    seed = _seed()
    rng = random.Random(seed)
    print(f"workflow crash test seed {seed} (replay: ATTUNE_WF_CRASH_SEED={seed})")
    t0 = time.monotonic()
    out_dir = tmp_path / "effects"
    out_dir.mkdir()
    srv = server_factory.start_new("wf-crash")
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    define(api, pack, out_dir)

    runs: list[tuple[str, str, int]] = []  # (kind, w, execution id)
    n_runs = 40
    kinds = [WORKFLOW_KINDS[i % len(WORKFLOW_KINDS)] for i in range(n_runs)]
    rng.shuffle(kinds)

    def submit(batch):
        for kind in batch:
            w = f"W{len(runs)}"
            ex = api.execute(f"{pack}.{kind}", params_of(kind, w))
            runs.append((kind, w, ex["id"]))

    # Two waves: the first one is running when the crashes begin, the second one is started between
    # two crashes, so that kills also hit workflows at their very beginning.
    submit(kinds[:25])
    kills = rng.randint(4, 6)
    second_wave_after = rng.randrange(kills - 1)  # at least one kill after it
    timeline = []
    for k in range(kills):
        wait = rng.uniform(0.1, 2.0)
        time.sleep(wait)
        rc = srv.kill9()
        assert rc == -9, f"seed {seed}: expected death by SIGKILL, got {rc}"
        down = rng.choice([0.0, rng.uniform(0.3, 1.5)])
        time.sleep(down)
        early = rng.uniform(0.05, 0.8) if rng.random() < 0.4 else None
        if early is not None:  # one more crash while it opens the store and recovers
            _start_and_kill(srv, early)
        srv.start()
        api = srv.admin_client()
        timeline.append(f"kill {k + 1} after {wait:.2f}s, down {down:.2f}s"
                        + (f", killed again {early:.2f}s into the restart" if early is not None else ""))
        if k == second_wave_after:
            submit(kinds[25:])
            timeline.append("second wave submitted")
    print("; ".join(timeline))

    ids = {eid for _, _, eid in runs}

    def settled():
        rows = [api.get_data(f"/api/v1/executions/{eid}") for eid in ids]
        busy = [r for r in rows if r["status"] in NON_TERMINAL]
        return None if busy else rows
    try:
        # within the 120 s per-test guard, so that a stuck workflow fails with this message
        wait_for(settled, timeout=max(30.0, 110 - (time.monotonic() - t0)), interval=0.5,
                 desc="every workflow terminal after the last restart")
    except AssertionError as e:
        busy = [(r["id"], r["action_ref"], r["status"]) for r in
                (api.get_data(f"/api/v1/executions/{eid}") for eid in ids) if r["status"] in NON_TERMINAL]
        raise AssertionError(f"seed {seed}: workflows stuck after kills ({'; '.join(timeline)}): {busy}\n{e}\n"
                             f"{srv.log_tail(80)}")

    rep = check_runs(api, runs, out_dir, pack)
    print(summary(rep), f"in {time.monotonic() - t0:.1f}s")
    if rep.retried:
        print("retried after a crash:", dump(rep.retried[:10]))
    assert not rep.problems, (
        f"seed {seed} (replay: ATTUNE_WF_CRASH_SEED={seed}); kills: {'; '.join(timeline)}; "
        f"{summary(rep)}\n" + "\n".join(rep.problems[:40]) + "\n" + grep_logs([srv.log_path], rep.suspects)
        + f"\n{srv.log_tail(60)}")


@pytest.mark.soak
@pytest.mark.parametrize("round_", range(5))
def test_kill9_soak_more_seeds(server_factory, tmp_path, round_):
    """`bash cmake/dev.sh test-full`: five more random kill schedules (each prints its seed)."""
    test_kill9_at_random_moments_resumes_every_workflow_exactly_once(server_factory, tmp_path)
