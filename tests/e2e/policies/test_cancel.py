"""`POST /executions/{id}/cancel` from every state, end to end (issue 17, API.md §11.1–§11.2):

* before hand-off (requested, scheduling — also held by a concurrency queue) ⇒ `cancelled` at once,
  the execution leaves the queue and never runs;
* running ⇒ `canceling`, then SIGINT, SIGTERM, SIGKILL 5 s apart, then `cancelled` — an action that
  ignores SIGINT still ends; one that exits on SIGINT ends at once;
* terminal ⇒ 400;
* the slot of a cancelled running execution goes to the next queued one — only once it is terminal
  (`canceling` still counts as active, API.md §15).

A cancel of a `scheduled` execution (handed to a worker that has not started it) is in
distributed/test_policies_distributed.py, where the workers can be stopped to hold it there.
"""
from __future__ import annotations

import time

import pytest

from attune_e2e import TERMINAL, expect, expect_error, parse_ts, wait_for
from policy_util import Recorder, Watch, concurrency, create_policy, states

# Records its start; on SIGINT writes "int <time>" to sig_<tag> and carries on (unless ignore_int=0);
# with ignore_term=1 also survives SIGTERM ("term <time>"); loops `loops` × 0.1 s (default 60 s);
# records its end.
TRAPPY = ('sig="$dir/sig_$tag"\n'
          '[ "${ignore_int:-1}" = 1 ] && trap \'echo "int $(date +%s.%N)" >> "$sig"\' INT\n'
          '[ "${ignore_term:-0}" = 1 ] && trap \'echo "term $(date +%s.%N)" >> "$sig"\' TERM\n'
          'echo "start $tag $(date +%s.%N)" >> "$dir/log"\n'
          'i=0; while [ "$i" -lt "${loops:-600}" ]; do sleep 0.1; i=$((i+1)); done\n'
          'echo "end $tag $(date +%s.%N)" >> "$dir/log"\n')


# A trap records its signal when the shell gets to run it: at once, or after the loop's current
# `sleep 0.1` if only the shell (not its process group) was signalled. Timings allow that much.
TRAP_LAG = 0.15


def _trappy(api, pack, name="trappy"):
    ref = f"{pack}.{name}"
    api.create_action(ref, TRAPPY, timeout_seconds=90)
    return ref


def _signals(rec, tag):
    try:
        lines = (rec.dir / f"sig_{tag}").read_text().split("\n")
    except FileNotFoundError:
        return []
    return [(ln.split()[0], float(ln.split()[1])) for ln in lines if ln.strip()]


def _cancel(api, exec_id):
    return expect(api.post(f"/api/v1/executions/{exec_id}/cancel", json={}), 200)["data"]


def _running(api, rec, exec_id, tag):
    api.wait_execution(exec_id, statuses={"running"}, timeout=20)
    wait_for(lambda: tag in rec.starts(), timeout=20, desc=f"{tag} started")  # the script runs, traps set


def _end_time(ex):
    return parse_ts(ex["updated"]).timestamp()


def test_cancel_a_queued_execution(api, pack, gated, rec):
    create_policy(api, pack, "one", action_ref=gated, concurrency=concurrency(1))
    first = api.execute(gated, rec.params("g1"))
    w = Watch(api, gated, limit=1)
    w.until(lambda s: s.status(first["id"]) == "running", desc="g1 running")
    queued = api.execute(gated, rec.params("g2"))
    third = api.execute(gated, rec.params("g3"))
    w.until(lambda s: states(s, [queued["id"], third["id"]]) == ["scheduling"] * 2
            and s.stats["queue_length"] == 2, desc="g2, g3 queued")
    t0 = time.monotonic()
    got = _cancel(api, queued["id"])
    assert got["status"] == "cancelled", f"a queued execution must be `cancelled` at once: {got}"
    assert time.monotonic() - t0 < 5
    assert api.get_data(f"/api/v1/executions/{queued['id']}")["status"] == "cancelled"
    w.until(lambda s: s.stats["queue_length"] == 1 and s.stats["active_count"] == 1, timeout=10,
            desc="queue_length 1 once g2 left the queue")
    rec.open("g1", "g3")
    w.until(lambda s: states(s, [first["id"], third["id"]]) == ["completed"] * 2, desc="g1, g3 completed")
    assert rec.starts() == ["g1", "g3"], f"the cancelled g2 ran: {rec.starts()}"
    ex = api.get_data(f"/api/v1/executions/{queued['id']}")
    assert ex["status"] == "cancelled" and not ex.get("started_at"), ex
    w.until(lambda s: s.stats["active_count"] == 0 and s.stats["queue_length"] == 0
            and s.stats["total_enqueued"] == 3 and s.stats["total_completed"] == 3, desc="stats settled")


def test_cancel_right_after_execute_never_completes(api, pack, rec):
    """Cancels racing the pipeline (requested, scheduling, scheduled or just running): every one ends
    `cancelled`, none does its work (which comes after a 3 s sleep)."""
    ref = f"{pack}.later"
    api.create_action(ref, 'sleep 3; echo "done $tag" >> "$dir/work"', timeout_seconds=60)
    ids = []
    wrong = []
    for i in range(20):
        ex = api.execute(ref, rec.params(f"r{i}"))
        got = _cancel(api, ex["id"])
        if got["status"] not in ("cancelled", "canceling"):  # §2.6: the answer shows the cancel's effect
            wrong.append((ex["status"], got["status"]))
        ids.append(ex["id"])
    for i in ids:
        ex = api.wait_execution(i, timeout=20)
        assert ex["status"] == "cancelled", ex
    time.sleep(3.5)
    assert not (rec.dir / "work").exists(), (rec.dir / "work").read_text()
    assert not wrong, f"cancel answered (status at execute, status in the cancel's answer): {wrong}"


def test_cancel_running_that_exits_on_sigint_ends_quickly(api, pack, rec):
    ref = _trappy(api, pack)
    ex = api.execute(ref, rec.params("quick", ignore_int=0))
    _running(api, rec, ex["id"], "quick")
    t0 = time.monotonic()
    got = _cancel(api, ex["id"])
    assert got["status"] in ("canceling", "cancelled"), got
    done = api.wait_execution(ex["id"], timeout=20)
    elapsed = time.monotonic() - t0
    assert done["status"] == "cancelled", done
    assert elapsed < 4, f"an action exiting on SIGINT took {elapsed:.1f}s to end cancelled (SIGTERM comes at 5 s)"
    assert "quick" not in [t for k, t, _ in rec.lines() if k == "end"], "the action finished its work"


def test_cancel_running_that_ignores_sigint_ends_by_sigterm(api, pack, rec):
    ref = _trappy(api, pack)
    ex = api.execute(ref, rec.params("noint"))
    _running(api, rec, ex["id"], "noint")
    got = _cancel(api, ex["id"])
    assert got["status"] == "canceling", f"cancel of a running execution answers `canceling` first: {got}"
    wait_for(lambda: _signals(rec, "noint"), timeout=10, desc="SIGINT delivered to the action")
    mid = api.get_data(f"/api/v1/executions/{ex['id']}")
    assert mid["status"] == "canceling", f"after an ignored SIGINT the execution is still canceling: {mid}"
    again = _cancel(api, ex["id"])  # not terminal yet: a second cancel is accepted (API.md §11.2)
    assert again["status"] in ("canceling", "cancelled"), again
    done = api.wait_execution(ex["id"], timeout=25)
    assert done["status"] == "cancelled", done
    int_at = _signals(rec, "noint")[0][1]
    took = _end_time(done) - int_at
    assert 5 - TRAP_LAG <= took <= 5 + 6, f"ended {took:.2f}s after SIGINT; SIGTERM comes 5 s after SIGINT"
    assert [k for k, _ in _signals(rec, "noint")] == ["int"], _signals(rec, "noint")


@pytest.mark.soak  # 10 s at the default grace; test_configured_cancel_grace covers SIGKILL quickly
def test_cancel_running_that_ignores_sigint_and_sigterm_ends_by_sigkill(api, pack, rec):
    ref = _trappy(api, pack)
    ex = api.execute(ref, rec.params("stubborn", ignore_term=1))
    _running(api, rec, ex["id"], "stubborn")
    _cancel(api, ex["id"])
    done = api.wait_execution(ex["id"], timeout=30)
    assert done["status"] == "cancelled", done
    sigs = _signals(rec, "stubborn")
    assert [k for k, _ in sigs] == ["int", "term"], f"signals seen by the action: {sigs}"
    gap = sigs[1][1] - sigs[0][1]
    assert 5 - TRAP_LAG <= gap <= 5 + 3, f"SIGTERM came {gap:.2f}s after SIGINT (5 s expected)"
    took = _end_time(done) - sigs[1][1]
    assert 5 - TRAP_LAG <= took <= 5 + 6, f"ended {took:.2f}s after SIGTERM; SIGKILL comes 5 s after it"


def test_cancelled_running_execution_hands_its_slot_to_the_next(api, pack, rec):
    ref = _trappy(api, pack)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    a = api.execute(ref, rec.params("a"))  # ignores SIGINT: canceling for ~5 s
    b = api.execute(ref, rec.params("b", loops=1))
    w = Watch(api, ref, limit=1)
    w.until(lambda s: states(s, [a["id"], b["id"]]) == ["running", "scheduling"], desc="a running, b queued")
    wait_for(lambda: "a" in rec.starts(), desc="a started")
    _cancel(api, a["id"])
    w.until(lambda s: s.status(a["id"]) == "canceling", timeout=10, desc="a canceling")
    snap = w.until(lambda s: s.status(a["id"]) in TERMINAL, timeout=25, desc="a terminal")
    assert snap.rows[a["id"]]["status"] == "cancelled", snap.rows[a["id"]]
    # while a was canceling it still held the slot: b waited (Watch checks ≤ 1 active at every sample)
    w.until(lambda s: s.status(b["id"]) == "completed", timeout=20, desc="b ran after a ended")
    a_row = api.get_data(f"/api/v1/executions/{a['id']}")
    b_row = api.get_data(f"/api/v1/executions/{b['id']}")
    assert parse_ts(b_row["started_at"]).timestamp() >= _end_time(a_row) - 0.002, \
        f"b started at {b_row['started_at']} before a ended (cancelled) at {a_row['updated']}"
    assert rec.starts() == ["a", "b"], rec.starts()
    w.until(lambda s: s.stats["active_count"] == 0 and s.stats["queue_length"] == 0
            and s.stats["total_completed"] == 2, desc="stats settled")


def test_cancel_of_a_terminal_execution_is_400(api, pack, rec):
    ok = f"{pack}.ok"
    api.create_action(ok, "echo fine")
    bad = f"{pack}.bad"
    api.create_action(bad, "exit 2")
    done = api.wait_execution(api.execute(ok, {})["id"])
    failed = api.wait_execution(api.execute(bad, {})["id"])
    assert done["status"] == "completed" and failed["status"] == "failed"
    for ex in (done, failed):
        expect_error(api.post(f"/api/v1/executions/{ex['id']}/cancel", json={}), 400, code="BAD_REQUEST")
        assert api.get_data(f"/api/v1/executions/{ex['id']}")["status"] == ex["status"]
    ref = _trappy(api, pack)
    ex = api.execute(ref, rec.params("twice", ignore_int=0))
    _running(api, rec, ex["id"], "twice")
    _cancel(api, ex["id"])
    assert api.wait_execution(ex["id"], timeout=20)["status"] == "cancelled"
    expect_error(api.post(f"/api/v1/executions/{ex['id']}/cancel"), 400, code="BAD_REQUEST")
    expect(api.post("/api/v1/executions/999999999999/cancel", json={}), 404)


@pytest.mark.restart
def test_configured_cancel_grace(server_factory, tmp_path):
    """The grace between SIGINT, SIGTERM and SIGKILL is configurable (`attune serve --cancel-grace-ms`,
    env ATTUNE_CANCEL_GRACE_MS; here 1000 ms)."""
    srv = server_factory.start_new("grace", extra_env={"ATTUNE_CANCEL_GRACE_MS": "1000"})
    api = srv.admin_client()
    pack = api.create_pack()["ref"]
    ref = _trappy(api, pack)
    rec = Recorder(tmp_path / "records")
    ex = api.execute(ref, rec.params("g", ignore_term=1))
    _running(api, rec, ex["id"], "g")
    _cancel(api, ex["id"])
    done = api.wait_execution(ex["id"], timeout=20)
    assert done["status"] == "cancelled", done
    sigs = _signals(rec, "g")
    assert [k for k, _ in sigs] == ["int", "term"], sigs
    assert 1 - TRAP_LAG <= sigs[1][1] - sigs[0][1] <= 1 + 2, f"SIGTERM {sigs[1][1] - sigs[0][1]:.2f}s after SIGINT, grace 1 s"
    took = _end_time(done) - sigs[1][1]
    assert 1 - TRAP_LAG <= took <= 1 + 4, f"ended {took:.2f}s after SIGTERM, grace 1 s"
