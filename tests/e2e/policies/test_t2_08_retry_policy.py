"""T2.8 — Retry policy (SCENARIOS.md) for executions of an action (issue 17, API.md §15), as opposed to
the workflow task `retry` of tier2/test_t2_08_retry.py.

A policy may carry `retry {max_retries 0–100, on: ["failed", "timeout"] (default both), backoff:
constant|linear|exponential (default exponential), delay_seconds (default 1), max_delay_seconds
(default 300)}`; `POST /executions/execute` accepts `max_retries` (and the same `retry` object) for that
execution alone, which beats any policy. The delay before attempt n (n ≥ 1) is d, d·n or d·2^(n−1),
capped. Each attempt is a new execution with `original_execution` = the first attempt, `retry_count` =
n, `retry_reason` = the previous attempt's status. Backoff timers are durable: a retry due while the
server is down runs at start, once.

The flaky action (policy_util.FLAKY) counts its runs in a file and records each run's start and end
on its own clock, so a gap between attempts is measured from the end of one process to the start of
the next — a strict lower bound for the backoff delay.
"""
from __future__ import annotations

import time

import pytest

from policy_util import FLAKY, Recorder, assert_no_more, assert_retry_chain, create_policy, wait_attempts

# The backoff may be late on a loaded machine (dispatch, process start) but never early.
LATE = 2.5


def _flaky(api, pack, name="flaky", **fields):
    ref = f"{pack}.{name}"
    api.create_action(ref, FLAKY, timeout_seconds=60, **fields)
    return ref


def _gaps(rec):
    """Seconds from the end of each run to the start of the next (the action's own clock)."""
    spans = rec.spans()
    runs = [spans[str(n)] for n in range(1, len(spans) + 1)]
    return [round(nxt[0] - prev[1], 3) for prev, nxt in zip(runs, runs[1:])]


def _runs(rec) -> int:
    try:
        return int((rec.dir / "count").read_text().strip())
    except FileNotFoundError:
        return 0


def test_policy_retry_until_success(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "retry5", action_ref=ref,
                  retry={"max_retries": 5, "backoff": "constant", "delay_seconds": 0.2})
    first = api.execute(ref, rec.params("x", fail_times=2))
    rows = wait_attempts(api, ref, 3, final={"completed"})
    assert rows[0]["id"] == first["id"], rows
    assert_retry_chain(rows, ["failed", "failed", "completed"])
    assert [r["result"]["stdout"] for r in rows] == ["attempt 1\n", "attempt 2\n", "attempt 3\n"], rows
    assert_no_more(api, ref, 3, hold=1.0)  # a success is never retried
    assert _runs(rec) == 3


def test_execute_max_retries_honoured_with_default_exponential_backoff(api, pack, rec):
    """`max_retries: 2` on execute, no retry object: defaults (exponential, 1 s) ⇒ exactly 3 executions,
    gaps ≥ 1 s then ≥ 2 s, and no 4th (it would come 4 s after the 3rd)."""
    ref = _flaky(api, pack)
    api.execute(ref, rec.params("x", fail_times=99), max_retries=2)
    rows = wait_attempts(api, ref, 3, timeout=40)
    assert_retry_chain(rows, ["failed", "failed", "failed"])
    assert all(r["result"]["exit_code"] == 3 for r in rows), rows
    gaps = _gaps(rec)
    assert len(gaps) == 2, gaps
    assert 1.0 <= gaps[0] <= 1.0 + LATE and 2.0 <= gaps[1] <= 2.0 + LATE, \
        f"gaps between attempts {gaps}, expected ≈ [1, 2] (exponential, delay 1 s)"
    assert_no_more(api, ref, 3, hold=4.6)
    assert _runs(rec) == 3


def test_execution_carries_the_requested_max_retries(api, pack, rec):
    """API.md §7/§11.2: the Execution's `max_retries` is the one execute asked for (or the retry
    object's), and every attempt carries the same."""
    ref = _flaky(api, pack)
    first = api.execute(ref, rec.params("x", fail_times=1), max_retries=2)
    assert first.get("max_retries") == 2, f"execute max_retries 2, the execution says {first.get('max_retries')}: {first}"
    rows = wait_attempts(api, ref, 2, timeout=20, final={"completed"})
    assert [r.get("max_retries") for r in rows] == [2, 2], [(r["id"], r.get("max_retries")) for r in rows]
    other = api.execute(ref, rec.params("y", fail_times=0), retry={"max_retries": 4, "delay_seconds": 0.2})
    assert other.get("max_retries") == 4, f"retry.max_retries 4, the execution says {other.get('max_retries')}"


def test_policy_max_attempts_honoured(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "retry2", action_ref=ref,
                  retry={"max_retries": 2, "backoff": "constant", "delay_seconds": 0.3})
    api.execute(ref, rec.params("x", fail_times=99))
    rows = wait_attempts(api, ref, 3)
    assert_retry_chain(rows, ["failed"] * 3)
    assert_no_more(api, ref, 3, hold=1.0)
    assert _runs(rec) == 3


def test_no_retry_on_success(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "retry3", action_ref=ref,
                  retry={"max_retries": 3, "backoff": "constant", "delay_seconds": 0.2})
    ex = api.wait_execution(api.execute(ref, rec.params("x", fail_times=0))["id"])
    assert ex["status"] == "completed", ex
    assert ex.get("retry_count") == 0, ex
    assert_no_more(api, ref, 1, hold=1.0)
    # the same through execute's own max_retries
    ref2 = _flaky(api, pack, "flaky2")
    rec2 = Recorder(rec.dir / "two")
    ex = api.wait_execution(api.execute(ref2, rec2.params("x", fail_times=0), max_retries=3)["id"])
    assert ex["status"] == "completed", ex
    assert_no_more(api, ref2, 1, hold=1.0)
    assert _runs(rec) == 1 and _runs(rec2) == 1


def test_on_timeout_only_does_not_retry_failures(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "onto", action_ref=ref,
                  retry={"max_retries": 2, "on": ["timeout"], "backoff": "constant", "delay_seconds": 0.2})
    ex = api.wait_execution(api.execute(ref, rec.params("x", fail_times=99))["id"])
    assert ex["status"] == "failed", ex
    assert_no_more(api, ref, 1, hold=1.0)
    assert _runs(rec) == 1


def test_execute_max_retries_beats_the_policy(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "retry3", action_ref=ref,
                  retry={"max_retries": 3, "backoff": "constant", "delay_seconds": 0.2})
    api.execute(ref, rec.params("x", fail_times=99), max_retries=0)
    wait_attempts(api, ref, 1)
    assert_no_more(api, ref, 1, hold=1.0)

    ref2 = _flaky(api, pack, "flaky2")
    rec2 = Recorder(rec.dir / "two")
    create_policy(api, pack, "retry3b", action_ref=ref2,
                  retry={"max_retries": 3, "backoff": "constant", "delay_seconds": 0.2})
    api.execute(ref2, rec2.params("x", fail_times=99), max_retries=1)
    rows = wait_attempts(api, ref2, 2)
    assert_retry_chain(rows, ["failed", "failed"])
    assert_no_more(api, ref2, 2, hold=1.0)


def test_execute_retry_object_beats_the_policy(api, pack, rec):
    ref = _flaky(api, pack)
    create_policy(api, pack, "slow_retry", action_ref=ref,
                  retry={"max_retries": 1, "backoff": "constant", "delay_seconds": 30})
    api.execute(ref, rec.params("x", fail_times=1),
                retry={"max_retries": 2, "backoff": "constant", "delay_seconds": 0.2})
    rows = wait_attempts(api, ref, 2, timeout=15, final={"completed"})
    assert_retry_chain(rows, ["failed", "completed"])
    gaps = _gaps(rec)
    assert 0.2 <= gaps[0] <= 0.2 + LATE, f"the execute retry object's 0.2 s delay did not apply: {gaps}"


@pytest.mark.parametrize("retry, expected", [
    ({"max_retries": 3, "backoff": "exponential", "delay_seconds": 0.5}, [0.5, 1.0, 2.0]),
    ({"max_retries": 3, "backoff": "linear", "delay_seconds": 0.4, "max_delay_seconds": 1}, [0.4, 0.8, 1.0]),
    ({"max_retries": 2, "backoff": "constant", "delay_seconds": 0.6}, [0.6, 0.6]),
    ({"max_retries": 3, "backoff": "exponential", "delay_seconds": 0.5, "max_delay_seconds": 0.8},
     [0.5, 0.8, 0.8]),
], ids=["exponential", "linear-capped", "constant", "exponential-capped"])
def test_backoff_timing(api, pack, rec, retry, expected):
    ref = _flaky(api, pack)
    create_policy(api, pack, "backoff", action_ref=ref, retry=retry)
    api.execute(ref, rec.params("x", fail_times=99))
    rows = wait_attempts(api, ref, len(expected) + 1, timeout=40)
    assert_retry_chain(rows, ["failed"] * (len(expected) + 1))
    gaps = _gaps(rec)
    assert len(gaps) == len(expected), gaps
    for gap, want in zip(gaps, expected):
        assert want <= gap <= want + LATE, f"gaps between attempts {gaps}, expected {expected} ({retry})"
    if retry["backoff"] == "exponential" and "max_delay_seconds" not in retry:
        assert gaps[0] < gaps[1] < gaps[2], gaps


# ------------------------------------------------------------------------------ durable backoff timers

def _new_server(server_factory, name):
    srv = server_factory.start_new(name)
    return srv, srv.admin_client()


def _first_failed(api, ref, rec):
    ex = api.wait_execution(api.execute(ref, rec.params("x", fail_times=1),
                                        retry={"max_retries": 1, "backoff": "constant", "delay_seconds": 4})["id"])
    assert ex["status"] == "failed", ex
    return ex, time.time()


@pytest.mark.restart
def test_retry_due_while_the_server_is_down_runs_at_start_once(server_factory, tmp_path):
    """SIGTERM during the 4 s backoff, start again after the retry was due: it runs at start, once."""
    srv, api = _new_server(server_factory, "retry-down")
    pack = api.create_pack()["ref"]
    ref = _flaky(api, pack)
    rec = Recorder(tmp_path / "rec")
    first, failed_at = _first_failed(api, ref, rec)
    assert srv.stop() == 0, srv.log_tail()
    assert _runs(rec) == 1, "the retry ran before its 4 s delay"
    time.sleep(max(0.0, failed_at + 5 - time.time()))  # the retry is due while the server is down
    srv.start()
    started = time.time()
    api = srv.admin_client()
    rows = wait_attempts(api, ref, 2, timeout=30, final={"completed"})
    assert_retry_chain(rows, ["failed", "completed"])
    spans = rec.spans()
    assert spans["2"][0] - started <= 15, f"the overdue retry ran {spans['2'][0] - started:.1f}s after start"
    assert_no_more(api, ref, 2, hold=1.0)
    assert _runs(rec) == 2, f"the action ran {_runs(rec)} times (the first attempt and one retry expected)"


@pytest.mark.restart
def test_retry_timer_survives_kill9_and_is_not_early(server_factory, tmp_path):
    """kill -9 during the backoff and start again before the retry is due: it runs once, when due —
    and a second kill after it was due but soon after the start does not run it twice."""
    srv, api = _new_server(server_factory, "retry-kill")
    pack = api.create_pack()["ref"]
    ref = _flaky(api, pack)
    rec = Recorder(tmp_path / "rec")
    first, failed_at = _first_failed(api, ref, rec)
    srv.kill9()
    srv.start()
    api = srv.admin_client()
    rows = wait_attempts(api, ref, 2, timeout=30, final={"completed"})
    assert_retry_chain(rows, ["failed", "completed"])
    gap = _gaps(rec)[0]
    assert gap >= 4.0, f"the retry came {gap:.2f}s after the failure, its delay is 4 s (not early after a restart)"
    assert gap <= 4.0 + 15, gap
    srv.kill9()
    srv.start()
    api = srv.admin_client()
    assert_no_more(api, ref, 2, hold=1.0)
    assert _runs(rec) == 2, f"the action ran {_runs(rec)} times"


@pytest.mark.restart
@pytest.mark.soak  # the two tests above cover stop-then-due and kill-before-due; this one: kill, then due
def test_retry_due_during_a_kill9_outage_runs_once(server_factory, tmp_path):
    srv, api = _new_server(server_factory, "retry-kill-late")
    pack = api.create_pack()["ref"]
    ref = _flaky(api, pack)
    rec = Recorder(tmp_path / "rec")
    first, failed_at = _first_failed(api, ref, rec)
    time.sleep(1)
    srv.kill9()
    time.sleep(max(0.0, failed_at + 5 - time.time()))
    srv.start()
    api = srv.admin_client()
    rows = wait_attempts(api, ref, 2, timeout=30, final={"completed"})
    assert_retry_chain(rows, ["failed", "completed"])
    assert_no_more(api, ref, 2, hold=1.0)
    assert _runs(rec) == 2, f"the action ran {_runs(rec)} times"


def test_a_cancelled_execution_is_not_retried(api, pack, rec):
    """`on` lists `failed` and `timeout` only: a cancel ends the execution for good."""
    ref = f"{pack}.loops"
    api.create_action(ref, 'echo "start x $(date +%s.%N)" >> "$dir/log"; while :; do sleep 0.1; done',
                      timeout_seconds=60)
    create_policy(api, pack, "retry_all", action_ref=ref,
                  retry={"max_retries": 2, "backoff": "constant", "delay_seconds": 0.2})
    ex = api.execute(ref, rec.params("x"))
    api.wait_execution(ex["id"], statuses={"running"})
    from attune_e2e import wait_for
    wait_for(lambda: rec.starts(), desc="the action started")
    api.post(f"/api/v1/executions/{ex['id']}/cancel", json={})
    assert api.wait_execution(ex["id"], timeout=20)["status"] == "cancelled"
    assert_no_more(api, ref, 1, hold=1.0)
