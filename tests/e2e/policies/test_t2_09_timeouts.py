"""T2.9 — Execution timeout (SCENARIOS.md): what tier2/test_t2_09_execution_timeout.py does not cover
yet (issue 17, API.md §11.5 and §15).

* the request's `timeout_seconds` beats a LONGER action timeout (the tier2 test covers a shorter one);
* the status is `timeout`, the result's `error` says "timed out", `failed` is never seen on the way;
* the worker runs the next action fine afterwards;
* a timeout is retried by a retry policy with `on: ["timeout"]` (and by execute's `retry`, whose `on`
  defaults to both), each attempt keeping the request's timeout; a policy retrying only failures
  leaves a timeout alone.
"""
from __future__ import annotations

import time

import pytest

from attune_e2e import TERMINAL, wait_for
from policy_util import assert_no_more, assert_retry_chain, create_policy, executions_of, wait_attempts

LONG = 'echo started; sleep "${s:-30}"; echo finished'

# Counts its runs in $dir/count; hangs (sleep 30) while the count is <= hang_times (default 1).
HANGS = ('n=$(cat "$dir/count" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$dir/count"\n'
         'echo "start $n $(date +%s.%N)" >> "$dir/log"\n'
         '[ "$n" -gt "${hang_times:-1}" ] || sleep 30\n'
         'echo "end $n $(date +%s.%N)" >> "$dir/log"\n'
         'echo "attempt $n"\n')


def _watch_statuses(api, exec_id, timeout=30.0):
    """Polls the execution until terminal; returns (final row, statuses in the order seen)."""
    seen = []

    def check():
        ex = api.get_data(f"/api/v1/executions/{exec_id}")
        if not seen or seen[-1] != ex["status"]:
            seen.append(ex["status"])
        return ex if ex["status"] in TERMINAL else None
    return wait_for(check, timeout=timeout, interval=0.05, desc=f"execution {exec_id} terminal"), seen


def _assert_timed_out(ex, seen=None):
    assert ex["status"] == "timeout", ex
    assert isinstance(ex["result"], dict) and "timed out" in str(ex["result"].get("error")), ex["result"]
    if seen is not None:
        assert "failed" not in seen, f"a timed-out execution was `failed` on the way: {seen}"


def test_execute_timeout_beats_a_longer_action_timeout(api, pack):
    ref = f"{pack}.long"
    api.create_action(ref, LONG, timeout_seconds=60)
    t0 = time.monotonic()
    ex = api.execute(ref, {"s": 30}, timeout_seconds=1)
    assert ex["timeout_seconds"] == 1, ex
    done, seen = _watch_statuses(api, ex["id"])
    elapsed = time.monotonic() - t0
    _assert_timed_out(done, seen)
    assert done["result"]["stdout"].startswith("started") and "finished" not in done["result"]["stdout"], done
    assert elapsed < 10, f"a 1 s request timeout (action: 60 s) ended the execution after {elapsed:.1f}s"
    # the worker is fine: the same action, short, completes and never mentions a timeout
    ok = api.wait_execution(api.execute(ref, {"s": 0})["id"])
    assert ok["status"] == "completed" and ok["result"]["stdout"] == "started\nfinished\n", ok
    assert "timed out" not in str(ok["result"]), ok
    assert ok["timeout_seconds"] in (60, None), ok  # the action's own timeout applies again


def test_timeout_retried_by_a_policy_on_timeout(api, pack, rec):
    ref = f"{pack}.hangs"
    api.create_action(ref, HANGS, timeout_seconds=60)
    create_policy(api, pack, "on_timeout", action_ref=ref,
                  retry={"max_retries": 2, "on": ["timeout"], "backoff": "constant", "delay_seconds": 0.2})
    first = api.execute(ref, rec.params("x", hang_times=1), timeout_seconds=1)
    rows = wait_attempts(api, ref, 2, timeout=30, final={"completed"})
    assert rows[0]["id"] == first["id"]
    assert_retry_chain(rows, ["timeout", "completed"])
    _assert_timed_out(rows[0])
    assert rows[1]["result"]["stdout"] == "attempt 2\n", rows[1]
    assert rows[1]["timeout_seconds"] == 1, f"the retry lost the request's timeout_seconds: {rows[1]}"
    assert_no_more(api, ref, 2, hold=1.0)


def test_execute_retry_retries_timeouts_by_default_keeping_the_timeout(api, pack, rec):
    ref = f"{pack}.hangs"
    api.create_action(ref, HANGS, timeout_seconds=60)
    api.execute(ref, rec.params("x", hang_times=99), timeout_seconds=1,
                retry={"max_retries": 1, "backoff": "constant", "delay_seconds": 0.2})
    second = wait_for(lambda: (lambda r: r[1] if len(r) >= 2 else None)(executions_of(api, ref)),
                      timeout=20, desc="a second attempt after the timeout")
    assert second["timeout_seconds"] == 1, \
        f"the retry of a request with timeout_seconds 1 runs with timeout {second['timeout_seconds']}: {second}"
    rows = wait_attempts(api, ref, 2, timeout=20)
    assert_retry_chain(rows, ["timeout", "timeout"])
    for r in rows:
        _assert_timed_out(r)
    assert_no_more(api, ref, 2, hold=1.0)


def test_policy_retrying_only_failures_leaves_a_timeout_alone(api, pack, rec):
    ref = f"{pack}.hangs"
    api.create_action(ref, HANGS, timeout_seconds=1)
    create_policy(api, pack, "on_failed", action_ref=ref,
                  retry={"max_retries": 2, "on": ["failed"], "backoff": "constant", "delay_seconds": 0.2})
    ex, seen = _watch_statuses(api, api.execute(ref, rec.params("x", hang_times=99))["id"])
    _assert_timed_out(ex, seen)
    assert_no_more(api, ref, 1, hold=1.0)


def test_several_timeouts_then_normal_runs(api, pack):
    """Timeouts in a row (each one's process group killed) leave the worker healthy and never turn into
    `failed`; ordinary failures never say "timed out"."""
    ref = f"{pack}.long"
    api.create_action(ref, LONG, timeout_seconds=60)
    ids = [api.execute(ref, {"s": 30}, timeout_seconds=1)["id"] for _ in range(3)]
    for i in ids:
        ex, seen = _watch_statuses(api, i)
        _assert_timed_out(ex, seen)
    fail = f"{pack}.fails"
    api.create_action(fail, "echo nope; exit 4")
    f = api.wait_execution(api.execute(fail, {})["id"])
    assert f["status"] == "failed" and "timed out" not in str(f["result"]), f
    ok = api.wait_execution(api.execute(ref, {"s": 0}, timeout_seconds=5)["id"])
    assert ok["status"] == "completed", ok


@pytest.mark.restart
def test_server_default_timeout_applies_last(server_factory, tmp_path):
    """Timeout source (API.md §11.5): request → workflow task → action → server default (here
    `attune serve --action-timeout`, env ATTUNE_ACTION_TIMEOUT, set to 1 s)."""
    srv = server_factory.start_new("deftimeout", extra_env={"ATTUNE_ACTION_TIMEOUT": "1"})
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    bare, own = f"{pack}.bare", f"{pack}.own"
    api.create_action(bare, LONG)
    api.create_action(own, LONG, timeout_seconds=10)
    t0 = time.monotonic()
    ex, seen = _watch_statuses(api, api.execute(bare, {"s": 30})["id"])
    _assert_timed_out(ex, seen)
    assert time.monotonic() - t0 < 10, "the server default timeout of 1 s did not apply"
    ok = api.wait_execution(api.execute(own, {"s": 2})["id"], timeout=20)
    assert ok["status"] == "completed", f"the action's 10 s must beat the server's 1 s: {ok}"
    ok = api.wait_execution(api.execute(bare, {"s": 2}, timeout_seconds=10)["id"], timeout=20)
    assert ok["status"] == "completed", f"the request's 10 s must beat the server's 1 s: {ok}"


def test_time_queued_does_not_count_toward_the_timeout(api, pack, rec):
    """A timeout limits how long the action runs (API.md §11.5: the process group is killed): executions
    held in `scheduling` by a concurrency policy do not time out while they wait."""
    from policy_util import SLEEPER, concurrency
    ref = f"{pack}.sleeper"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    ids = [api.execute(ref, rec.params(t, s=0.8), timeout_seconds=2)["id"] for t in ("w1", "w2", "w3", "w4")]
    rows = [api.wait_execution(i, timeout=30) for i in ids]
    assert [r["status"] for r in rows] == ["completed"] * 4, \
        f"0.8 s runs with a 2 s timeout, queued up to 2.4 s: {[(r['id'], r['status'], r['result']) for r in rows]}"
