"""FIFO queue ordering (SCENARIOS.md, cross-cutting) and the concurrency policy of API.md §15 (issue 17).

`concurrency {limit, method: enqueue|cancel, parameters?}`: at most `limit` executions of the action
admitted and not terminal (`scheduled`, `running`, `canceling`) — per distinct values of the named
parameters when given; `enqueue` holds the others in `scheduling`, strictly first in, first out;
`cancel` ends them `cancelled` with `error: "Concurrency limit reached"`. A policy change applies to
the next admission decision (a raised limit starts queued executions at once). `GET
/actions/{ref}/queue-stats` is accurate at every step: `active_count`, `queue_length`,
`total_enqueued` (every execution that passed admission), `total_completed` (admitted and terminal),
`max_concurrent` (the effective limit), `oldest_enqueued_at`.

Most tests use a gated action (policy_util.GATED): it records its start and waits for its gate file,
so the test decides when each execution may finish and every intermediate state is deterministic.
"""
from __future__ import annotations

import time

from attune_e2e import TERMINAL, expect, expect_error, parse_ts, wait_for
from policy_util import (GATED, SLEEPER, Watch, assert_enqueued_after, assert_one_at_a_time, concurrency,
                         create_policy, delete_policy, max_overlap, queue_stats, states, update_policy)


def _submit(api, action_ref, rec, tags, **extra):
    """Executes the action once per tag, one request after the other (the submission order)."""
    out = []
    for t in tags:
        ex = api.execute(action_ref, rec.params(t, **extra))
        assert ex["status"] in ("requested", "scheduling", "scheduled", "running"), ex
        out.append(ex)
    return out


def test_fifo_limit_1_one_at_a_time_in_order_with_queue_stats_at_every_step(api, pack, gated, rec):
    action = api.get_data(f"/api/v1/actions/{gated}")
    create_policy(api, pack, "one", action_ref=gated, concurrency=concurrency(1))
    tags = ["1", "2", "3", "4", "5"]
    execs = _submit(api, gated, rec, tags)
    ids = [e["id"] for e in execs]
    w = Watch(api, gated, limit=1)
    prev_oldest = None
    for k in range(5):
        want = {"active_count": 1, "queue_length": 4 - k, "total_enqueued": 5, "total_completed": k,
                "max_concurrent": 1}
        snap = w.until(lambda s: states(s, ids) == ["completed"] * k + ["running"] + ["scheduling"] * (4 - k)
                       and all(s.stats[f] == v for f, v in want.items())
                       and len(rec.starts()) > k,  # `running` may precede the script's first line
                       desc=f"step {k}: {k} completed, execution {k + 1} running, {4 - k} queued in "
                            f"`scheduling`, queue stats {want}")
        st = snap.stats
        assert st["action_id"] == action["id"], st
        if k < 4:
            assert_enqueued_after(st, execs[k + 1])  # the head of the queue is the next submission
            t = parse_ts(st["oldest_enqueued_at"])
            assert prev_oldest is None or t >= prev_oldest, \
                f"oldest_enqueued_at went back from {prev_oldest} to {t} as the FIFO queue advanced: {st}"
            prev_oldest = t
        else:
            assert st["oldest_enqueued_at"] is None, f"nothing queued, yet oldest_enqueued_at is set: {st}"
        assert rec.starts() == tags[:k + 1], f"step {k}: started {rec.starts()}, expected {tags[:k + 1]}"
        rec.open(tags[k])
    snap = w.until(lambda s: states(s, ids) == ["completed"] * 5
                   and s.stats["active_count"] == 0 and s.stats["total_completed"] == 5,
                   desc="all 5 completed and counted")
    assert {k: snap.stats[k] for k in ("active_count", "queue_length", "total_enqueued", "total_completed",
                                      "max_concurrent", "oldest_enqueued_at")} == \
        {"active_count": 0, "queue_length": 0, "total_enqueued": 5, "total_completed": 5, "max_concurrent": 1,
         "oldest_enqueued_at": None}, snap.stats
    assert_one_at_a_time(rec, tags)
    rows = [api.get_data(f"/api/v1/executions/{i}") for i in ids]
    starts = [parse_ts(r["started_at"]) for r in rows]
    assert starts == sorted(starts), f"started_at not in submission order: {[r['started_at'] for r in rows]}"
    assert w.max_active == 1, w.max_active
    # every queued execution was seen waiting in `scheduling` before it ran
    for i in ids[1:]:
        seen = w.seen_status[i]
        assert "scheduling" in seen and seen.index("scheduling") < seen.index("running"), (i, seen)


def test_fifo_five_rapid_requests_sampled(api, pack, rec):
    """The scenario as written: an action that sleeps ~0.3 s, 5 rapid requests, limit 1; sampled
    statuses never show two active at once; the action's own records never overlap and follow the
    submission order; the stats end consistent."""
    ref = f"{pack}.sleeper"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "fifo", action_ref=ref, concurrency=concurrency(1, "enqueue"))
    tags = [f"r{i}" for i in range(1, 6)]
    ids = [e["id"] for e in _submit(api, ref, rec, tags, s=0.3)]
    w = Watch(api, ref, limit=1)
    w.until(lambda s: all(st in TERMINAL for st in states(s, ids)), timeout=60, interval=0.02,
            desc="all 5 executions terminal")
    final = w.until(lambda s: s.stats["total_completed"] == 5, timeout=20, desc="total_completed 5")
    assert states(final, ids) == ["completed"] * 5, states(final, ids)
    assert_one_at_a_time(rec, tags)
    assert w.max_active <= 1
    assert final.stats["queue_length"] == 0 and final.stats["active_count"] == 0, final.stats
    assert final.stats["total_enqueued"] == 5 and final.stats["max_concurrent"] == 1, final.stats
    rows = [api.get_data(f"/api/v1/executions/{i}") for i in ids]
    starts = [parse_ts(r["started_at"]) for r in rows]
    assert starts == sorted(starts), [r["started_at"] for r in rows]


def test_limit_2_grouped_by_parameter(api, pack, gated, rec):
    """`parameters: [host]`: the limit counts per host — two hosts run side by side, each host has at
    most 2 at once, extras of one host wait for that host only, in order."""
    create_policy(api, pack, "per_host", action_ref=gated, concurrency=concurrency(2, "enqueue", ["host"]))
    order = [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("b2", "b"), ("b3", "b")]
    ids = {}
    for tag, host in order:
        ids[tag] = api.execute(gated, rec.params(tag, host=host))["id"]
    w = Watch(api, gated, limit=2, group=lambda e: (e.get("config") or {}).get("host"))

    def st(snap, *tags):
        return [snap.status(ids[t]) for t in tags]

    snap = w.until(lambda s: st(s, "a1", "a2", "b1", "b2") == ["running"] * 4
                   and st(s, "a3", "b3") == ["scheduling"] * 2
                   and s.stats["active_count"] == 4 and s.stats["queue_length"] == 2,
                   desc="a1, a2, b1, b2 running (two per host), a3 and b3 queued")
    assert snap.stats["total_enqueued"] == 6 and snap.stats["max_concurrent"] == 2, snap.stats

    rec.open("a1")  # frees a slot of host a only
    snap = w.until(lambda s: st(s, "a1", "a3") == ["completed", "running"], desc="a3 takes a1's slot")
    assert snap.status(ids["b3"]) == "scheduling", f"b3 started although host b had no free slot: {snap.rows}"
    time.sleep(0.5)  # b3 must stay queued while host b is full
    snap = w.until(lambda s: True)
    assert snap.status(ids["b3"]) == "scheduling", f"b3 left the queue while b1, b2 ran: {snap.rows}"

    rec.open("b2")
    w.until(lambda s: st(s, "b2", "b3") == ["completed", "running"] and s.stats["queue_length"] == 0,
            desc="b3 takes b2's slot")
    rec.open_all()
    snap = w.until(lambda s: all(x == "completed" for x in st(s, *ids)) and s.stats["total_completed"] == 6,
                   desc="all 6 completed")
    assert snap.stats["active_count"] == 0 and snap.stats["queue_length"] == 0, snap.stats
    spans = rec.spans()
    for host in "ab":
        mine = [spans[t] for t, h in order if h == host]
        assert max_overlap(mine) <= 2, f"more than 2 of host {host} at once: {spans}"
    assert max_overlap([v for v in spans.values()]) == 4, f"the two hosts did not run side by side: {spans}"
    a = [t for t in rec.starts() if t.startswith("a")]
    b = [t for t in rec.starts() if t.startswith("b")]
    # x1 and x2 run side by side (either may write first); x3 comes after both
    assert sorted(a[:2]) == ["a1", "a2"] and a[2:] == ["a3"], rec.starts()
    assert sorted(b[:2]) == ["b1", "b2"] and b[2:] == ["b3"], rec.starts()


def test_method_cancel_ends_extras_cancelled(api, pack, gated, rec):
    create_policy(api, pack, "reject", action_ref=gated, concurrency=concurrency(1, "cancel"))
    first = api.execute(gated, rec.params("c1"))
    w = Watch(api, gated, limit=1)
    w.until(lambda s: s.status(first["id"]) == "running" and rec.starts() == ["c1"],
            desc="the first execution running")
    extras = [api.execute(gated, rec.params(t))["id"] for t in ("c2", "c3")]
    for i in extras:
        ex = api.wait_execution(i, timeout=20)
        assert ex["status"] == "cancelled", f"an extra under method cancel ended {ex['status']}: {ex}"
        assert isinstance(ex["result"], dict) and ex["result"].get("error") == "Concurrency limit reached", \
            f"result of a concurrency-cancelled execution: {ex['result']}"
        assert not ex.get("started_at"), f"a concurrency-cancelled execution has started_at: {ex}"
    snap = w.until(lambda s: s.status(first["id"]) == "running" and s.stats["queue_length"] == 0,
                   desc="the first still running, nothing queued")
    assert snap.stats["active_count"] == 1, snap.stats
    assert rec.starts() == ["c1"], f"a cancelled extra ran: {rec.starts()}"
    rec.open("c1")
    assert api.wait_execution(first["id"])["status"] == "completed"
    # the slot is free again: the next request runs
    rec.open("c4")
    nxt = api.wait_execution(api.execute(gated, rec.params("c4"))["id"])
    assert nxt["status"] == "completed", nxt
    assert rec.starts() == ["c1", "c4"], rec.starts()
    w.until(lambda s: s.stats["active_count"] == 0 and s.stats["queue_length"] == 0, desc="stats settle")


def test_raising_the_limit_starts_queued_executions_at_once(api, pack, gated, rec):
    pol = create_policy(api, pack, "raise", action_ref=gated, concurrency=concurrency(1))
    ids = [e["id"] for e in _submit(api, gated, rec, ["u1", "u2", "u3", "u4"])]
    w = Watch(api, gated)
    w.until(lambda s: states(s, ids) == ["running", "scheduling", "scheduling", "scheduling"]
            and s.stats["queue_length"] == 3, desc="u1 running, 3 queued")
    t0 = time.monotonic()
    updated = update_policy(api, pol["ref"], concurrency=concurrency(3))
    assert updated["concurrency"]["limit"] == 3, updated
    # nothing completes meanwhile (all gated): the raise alone must start u2 and u3
    w.until(lambda s: states(s, ids) == ["running", "running", "running", "scheduling"],
            timeout=15, desc="u2, u3 started by the raised limit, u4 still queued")
    took = time.monotonic() - t0
    assert took < 5, f"a raised limit must start queued executions at once (issue 17); took {took:.1f}s"
    w.until(lambda s: s.stats["max_concurrent"] == 3 and s.stats["active_count"] == 3
            and s.stats["queue_length"] == 1, timeout=15, desc="stats: max_concurrent 3, 3 active, 1 queued")
    wait_for(lambda: len(rec.starts()) == 3, desc="u2, u3 records")
    assert rec.starts()[0] == "u1" and sorted(rec.starts()[1:]) == ["u2", "u3"], rec.starts()
    rec.open("u2")
    w.until(lambda s: states(s, ids) == ["running", "completed", "running", "running"], desc="u4 takes u2's slot")
    rec.open_all()
    w.until(lambda s: states(s, ids) == ["completed"] * 4 and s.stats["total_completed"] == 4,
            desc="all completed")


def test_lowering_the_limit_applies_to_the_next_admission(api, pack, gated, rec):
    pol = create_policy(api, pack, "lower", action_ref=gated, concurrency=concurrency(2))
    ids = [e["id"] for e in _submit(api, gated, rec, ["l1", "l2", "l3", "l4"])]
    w = Watch(api, gated)
    w.until(lambda s: states(s, ids) == ["running", "running", "scheduling", "scheduling"],
            desc="l1, l2 running, l3, l4 queued")
    update_policy(api, pol["ref"], concurrency=concurrency(1))
    w.until(lambda s: s.stats["max_concurrent"] == 1, timeout=15, desc="max_concurrent 1")
    rec.open("l1")  # 1 active left = the new limit: l3 must wait
    w.until(lambda s: s.status(ids[0]) == "completed", desc="l1 completed")
    time.sleep(0.5)
    snap = w.until(lambda s: True)
    assert states(snap, ids)[1:] == ["running", "scheduling", "scheduling"], \
        f"after lowering the limit to 1 with l2 still running, a queued execution started: {snap.rows}"
    rec.open("l2")
    w.until(lambda s: states(s, ids) == ["completed", "completed", "running", "scheduling"],
            desc="l3 runs alone after l2")
    rec.open("l3", "l4")
    w.until(lambda s: states(s, ids) == ["completed"] * 4, desc="all completed")
    starts = rec.starts()
    assert sorted(starts[:2]) == ["l1", "l2"] and starts[2:] == ["l3", "l4"], starts  # l1, l2 side by side
    spans = rec.spans()
    assert spans["l3"][0] >= spans["l2"][1] and spans["l4"][0] >= spans["l3"][1], \
        f"under the lowered limit 1, l3 and l4 ran alone: {spans}"


def test_deleting_the_policy_releases_the_queue(api, pack, gated, rec):
    pol = create_policy(api, pack, "gone", action_ref=gated, concurrency=concurrency(1))
    ids = [e["id"] for e in _submit(api, gated, rec, ["d1", "d2", "d3", "d4"])]
    w = Watch(api, gated, stats=False)
    w.until(lambda s: states(s, ids) == ["running"] + ["scheduling"] * 3 and rec.starts() == ["d1"],
            desc="d1 running, 3 queued")
    t0 = time.monotonic()
    delete_policy(api, pol["ref"])
    expect(api.get(f"/api/v1/policies/{pol['ref']}"), 404)
    w.until(lambda s: states(s, ids) == ["running"] * 4, timeout=15,
            desc="every queued execution started once the policy is gone (d1 still running)")
    took = time.monotonic() - t0
    assert took < 5, f"deleting the policy released the queue only after {took:.1f}s"
    rec.open_all()
    w.until(lambda s: states(s, ids) == ["completed"] * 4, desc="all completed")
    assert sorted(rec.starts()) == ["d1", "d2", "d3", "d4"] and rec.starts()[0] == "d1", rec.starts()
    # no policy: a new execution is not held
    rec.open("d5")
    assert api.wait_execution(api.execute(gated, rec.params("d5"))["id"])["status"] == "completed"


def test_cancel_a_queued_execution_leaves_the_queue(api, pack, gated, rec):
    create_policy(api, pack, "cq", action_ref=gated, concurrency=concurrency(1))
    tags = ["q1", "q2", "q3", "q4", "q5"]
    ids = [e["id"] for e in _submit(api, gated, rec, tags)]
    w = Watch(api, gated, limit=1)
    w.until(lambda s: states(s, ids) == ["running"] + ["scheduling"] * 4 and s.stats["queue_length"] == 4,
            desc="q1 running, 4 queued")
    body = expect(api.post(f"/api/v1/executions/{ids[2]}/cancel", json={}), 200)
    assert body["data"]["id"] == ids[2] and body["data"]["status"] == "cancelled", \
        f"cancel of a queued execution must end it `cancelled` at once (API.md §11.2): {body}"
    assert api.get_data(f"/api/v1/executions/{ids[2]}")["status"] == "cancelled"
    snap = w.until(lambda s: s.stats["queue_length"] == 3, timeout=10, desc="queue_length 3 after the cancel")
    assert snap.stats["active_count"] == 1 and snap.stats["total_enqueued"] == 5, snap.stats
    expect_error(api.post(f"/api/v1/executions/{ids[2]}/cancel", json={}), 400)  # terminal now
    expected_running = [0, 1, 3, 4]
    for step, k in enumerate(expected_running):
        w.until(lambda s: s.status(ids[k]) == "running"
                and all(s.status(ids[j]) == "scheduling" for j in expected_running[step + 1:]),
                desc=f"{tags[k]} running, the later ones queued")
        rec.open(tags[k])
    snap = w.until(lambda s: all(s.status(ids[k]) == "completed" for k in expected_running)
                   and s.stats["active_count"] == 0 and s.stats["queue_length"] == 0,
                   desc="the other four completed")
    assert snap.status(ids[2]) == "cancelled", snap.rows[ids[2]]
    assert not snap.rows[ids[2]].get("started_at"), snap.rows[ids[2]]
    assert w.never_ran(ids[2]), w.seen_status[ids[2]]
    assert_one_at_a_time(rec, ["q1", "q2", "q4", "q5"])
    assert snap.stats["total_enqueued"] == 5 and snap.stats["total_completed"] == 5, \
        f"a queued execution that was cancelled passed admission and is terminal: {snap.stats}"


def test_running_executions_quota_acts_as_a_concurrency_limit(api, pack, gated, rec):
    """API.md §15: a `running_executions` quota acts as a concurrency limit (extras queued FIFO)."""
    create_policy(api, pack, "quota", action_ref=gated,
                  quotas=[{"quota_type": "running_executions", "limit": 1}])
    tags = ["k1", "k2", "k3"]
    ids = [e["id"] for e in _submit(api, gated, rec, tags)]
    w = Watch(api, gated, limit=1)
    for k in range(3):
        snap = w.until(lambda s: states(s, ids) == ["completed"] * k + ["running"] + ["scheduling"] * (2 - k),
                       desc=f"{tags[k]} running, the later ones queued")
        assert snap.stats["max_concurrent"] == 1 and snap.stats["queue_length"] == 2 - k, snap.stats
        rec.open(tags[k])
    w.until(lambda s: states(s, ids) == ["completed"] * 3, desc="all completed")
    assert_one_at_a_time(rec, tags)


def test_pack_scoped_policy_applies_to_its_actions(api, pack, rec):
    """A policy naming only `pack_ref` has pack scope (API.md §15) and limits each of the pack's actions;
    an action-scoped policy beats it for its action."""
    a, b = f"{pack}.ga", f"{pack}.gb"
    api.create_action(a, GATED, timeout_seconds=90)
    api.create_action(b, GATED, timeout_seconds=90)
    pol = create_policy(api, pack, "packwide", concurrency=concurrency(1))
    assert (pol.get("scope") or {}).get("type") == "pack", pol
    create_policy(api, pack, "b_two", action_ref=b, concurrency=concurrency(2))
    ia = [api.execute(a, rec.params(t))["id"] for t in ("pa1", "pa2")]
    ib = [api.execute(b, rec.params(t))["id"] for t in ("pb1", "pb2", "pb3")]
    wa, wb = Watch(api, a, limit=1), Watch(api, b, limit=2)
    wa.until(lambda s: states(s, ia) == ["running", "scheduling"], desc="pack limit 1 on a")
    wb.until(lambda s: states(s, ib) == ["running", "running", "scheduling"], desc="action limit 2 on b")
    assert queue_stats(api, b)["max_concurrent"] == 2
    rec.open_all()
    wa.until(lambda s: states(s, ia) == ["completed"] * 2, desc="a done")
    wb.until(lambda s: states(s, ib) == ["completed"] * 3, desc="b done")


def test_a_disabled_policy_does_not_hold_executions(api, pack, gated, rec):
    """Only `enabled` policies count (API.md §15); enabling one applies to the next admission."""
    pol = create_policy(api, pack, "off", action_ref=gated, concurrency=concurrency(1), enabled=False)
    assert pol["enabled"] is False, pol
    ids = [e["id"] for e in _submit(api, gated, rec, ["o1", "o2", "o3"])]
    w = Watch(api, gated, stats=False)
    w.until(lambda s: states(s, ids) == ["running"] * 3, desc="all running: the policy is disabled")
    rec.open_all()
    w.until(lambda s: states(s, ids) == ["completed"] * 3, desc="all completed")
    (rec.dir / "go_all").unlink()
    update_policy(api, pol["ref"], enabled=True)
    later = [e["id"] for e in _submit(api, gated, rec, ["o4", "o5"])]
    w = Watch(api, gated, limit=1)
    w.until(lambda s: states(s, later) == ["running", "scheduling"], desc="enabled: o4 runs, o5 waits")
    rec.open("o4", "o5")
    w.until(lambda s: states(s, later) == ["completed"] * 2, desc="o4, o5 completed")


def test_a_new_policy_counts_the_executions_already_running(api, pack, gated, rec):
    """`concurrency`: at most `limit` executions of the action running (API.md §15), and a policy
    change applies to the next admission decision (issue 17) — so executions started before the policy
    existed count against its limit: with 2 running and a new limit of 1, the next ones wait until
    both ended."""
    ids = [e["id"] for e in _submit(api, gated, rec, ["n1", "n2"])]
    w = Watch(api, gated, stats=False)
    w.until(lambda s: states(s, ids) == ["running", "running"], desc="both running, no policy yet")
    create_policy(api, pack, "late", action_ref=gated, concurrency=concurrency(1))
    later = [e["id"] for e in _submit(api, gated, rec, ["n3", "n4"])]
    time.sleep(0.5)
    snap = w.until(lambda s: all(x is not None for x in states(s, later)))
    assert states(snap, later) == ["scheduling", "scheduling"], \
        f"a new policy of limit 1 with n1, n2 running: new executions must wait: {states(snap, ids + later)}"
    rec.open("n1")
    time.sleep(0.5)
    snap = w.until(lambda s: s.status(ids[0]) == "completed")
    assert states(snap, later) == ["scheduling", "scheduling"], \
        f"n2 still running (limit 1): n3 must wait: {states(snap, ids + later)}"
    rec.open("n2")
    w.until(lambda s: states(s, later) == ["running", "scheduling"], desc="n3 alone once n1, n2 ended")
    rec.open_all()
    w.until(lambda s: states(s, ids + later) == ["completed"] * 4, desc="all completed")


def test_every_ending_hands_the_slot_on(api, pack, rec):
    """The slot is released on every end — failed, timeout, completed (API.md §15: `active_count` counts
    admitted executions not yet terminal)."""
    ref = f"{pack}.modes"
    api.create_action(ref, 'echo "start $tag $(date +%s.%N)" >> "$dir/log"\n'
                           'case "$mode" in fail) code=1 ;; hang) sleep 30; code=0 ;; *) code=0 ;; esac\n'
                           'echo "end $tag $(date +%s.%N)" >> "$dir/log"\n'
                           'exit $code\n', timeout_seconds=60)
    create_policy(api, pack, "one", action_ref=ref, concurrency=concurrency(1))
    ids = [api.execute(ref, rec.params("m1", mode="fail"))["id"],
           api.execute(ref, rec.params("m2", mode="hang"), timeout_seconds=1)["id"],
           api.execute(ref, rec.params("m3", mode="ok"))["id"],
           api.execute(ref, rec.params("m4", mode="fail"))["id"],
           api.execute(ref, rec.params("m5", mode="ok"))["id"]]
    w = Watch(api, ref, limit=1)
    snap = w.until(lambda s: all(x in TERMINAL for x in states(s, ids)) and s.stats["total_completed"] == 5,
                   timeout=40, desc="all 5 terminal and counted")
    assert states(snap, ids) == ["failed", "timeout", "completed", "failed", "completed"], states(snap, ids)
    assert snap.stats["active_count"] == 0 and snap.stats["queue_length"] == 0, snap.stats
    assert rec.starts() == ["m1", "m2", "m3", "m4", "m5"], rec.starts()
    spans = rec.spans()
    assert spans["m3"][0] >= spans["m2"][0] + 0.9, f"m3 started before m2 timed out: {spans}"


def test_higher_priority_policy_wins_for_the_action(api, pack, gated, rec):
    """Resolution (API.md §15): same scope ⇒ higher `priority` wins."""
    create_policy(api, pack, "low", action_ref=gated, priority=1, concurrency=concurrency(1))
    create_policy(api, pack, "high", action_ref=gated, priority=5, concurrency=concurrency(3))
    ids = [e["id"] for e in _submit(api, gated, rec, ["h1", "h2", "h3", "h4"])]
    w = Watch(api, gated, limit=3)
    snap = w.until(lambda s: states(s, ids) == ["running"] * 3 + ["scheduling"], desc="3 running (priority 5's limit)")
    assert snap.stats["max_concurrent"] == 3, snap.stats
    rec.open_all()
    w.until(lambda s: states(s, ids) == ["completed"] * 4, desc="all completed")


def test_policy_from_a_pack_file_holds_executions(api, rec):
    """`policies/*.yaml` in a pack (API.md §8, §15) work like API-created ones."""
    from attune_e2e import uid
    from packs_util import upload_pack
    p = f"polfile_{uid()}"
    upload_pack(api, {
        "pack.yaml": f"ref: {p}\nversion: 1.0.0\n",
        "actions/gated.yaml": "name: gated\nrunner_type: shell\nentry_point: gated.sh\ntimeout_seconds: 90\n",
        "actions/gated.sh": ("#!/bin/sh\n" 'doc=$(cat)\n'
                             'dir=$(echo "$doc" | sed \'s/.*"dir":"\\([^"]*\\)".*/\\1/\')\n'
                             'tag=$(echo "$doc" | sed \'s/.*"tag":"\\([^"]*\\)".*/\\1/\')\n' + GATED),
        "policies/one_at_a_time.yaml": "action_ref: gated\nconcurrency: {limit: 1, method: enqueue}\n",
    })
    ref = f"{p}.gated"
    ids = [e["id"] for e in _submit(api, ref, rec, ["f1", "f2", "f3"])]
    w = Watch(api, ref, limit=1)
    w.until(lambda s: states(s, ids) == ["running", "scheduling", "scheduling"], desc="f1 running, f2, f3 queued")
    for k, t in enumerate(["f1", "f2", "f3"]):
        w.until(lambda s: states(s, ids)[k] == "running", desc=f"{t} running")
        rec.open(t)
    w.until(lambda s: states(s, ids) == ["completed"] * 3, desc="all completed")
    assert_one_at_a_time(rec, ["f1", "f2", "f3"])


def test_method_cancel_counts_per_parameter_group(api, pack, gated, rec):
    create_policy(api, pack, "per_host_reject", action_ref=gated,
                  concurrency=concurrency(1, "cancel", ["host"]))
    a1 = api.execute(gated, rec.params("a1", host="a"))["id"]
    b1 = api.execute(gated, rec.params("b1", host="b"))["id"]
    w = Watch(api, gated, limit=1, group=lambda e: (e.get("config") or {}).get("host"))
    w.until(lambda s: states(s, [a1, b1]) == ["running", "running"], desc="a1 and b1 running (two groups)")
    a2 = api.wait_execution(api.execute(gated, rec.params("a2", host="a"))["id"])
    assert a2["status"] == "cancelled" and a2["result"].get("error") == "Concurrency limit reached", a2
    rec.open("a1")
    w.until(lambda s: s.status(a1) == "completed", desc="a1 completed")
    rec.open("a3")
    a3 = api.wait_execution(api.execute(gated, rec.params("a3", host="a"))["id"])
    assert a3["status"] == "completed", f"host a's slot is free again: {a3}"
    assert w.last.status(b1) == "running"
    rec.open_all()
    w.until(lambda s: s.status(b1) == "completed", desc="b1 completed")


def test_smaller_of_concurrency_and_running_quota_counts(api, pack, gated, rec):
    """A `running_executions` quota acts as a concurrency limit (API.md §15): with both, the smaller
    limit holds."""
    create_policy(api, pack, "conc3", action_ref=gated, concurrency=concurrency(3))
    create_policy(api, pack, "quota2", action_ref=gated, quotas=[{"quota_type": "running_executions", "limit": 2}])
    ids = [e["id"] for e in _submit(api, gated, rec, ["s1", "s2", "s3"])]
    w = Watch(api, gated, limit=2)
    snap = w.until(lambda s: states(s, ids) == ["running", "running", "scheduling"], desc="2 running, 1 queued")
    w.until(lambda s: s.stats["max_concurrent"] == 2, desc="max_concurrent 2")
    rec.open_all()
    w.until(lambda s: states(s, ids) == ["completed"] * 3, desc="all completed")
    assert snap.stats["queue_length"] in (0, 1)
