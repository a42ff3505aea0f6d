"""Rate limits (API.md §15, issue 17): `rate_limit {max_executions, window_seconds}` — at most
`max_executions` starts in ANY `window_seconds` (the window slides), extras queued FIFO in
`scheduling`, all eventually run."""
from __future__ import annotations

import time

from attune_e2e import TERMINAL, parse_ts
from policy_util import SLEEPER, Watch, create_policy, states

# Starts are observed through `started_at` (set when the process starts, ms precision) and through
# the action's own clock. Both trail the admission decision by the dispatch latency, which varies a
# little between executions: this much of it is forgiven on the 2 s window.
JITTER = 0.15


def _align_off_window_boundary(window: int, phase: float) -> None:
    """Sleeps until wall time mod `window` ≈ `phase`, so that a fixed (non-sliding) window aligned on
    the epoch would reset soon after the first starts — a sliding window must not."""
    now = time.time()
    wait = (phase - now % window) % window
    time.sleep(wait)


def test_rate_limit_2_per_2s_sliding_fifo(api, pack, rec):
    ref = f"{pack}.rated"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "rate", action_ref=ref, rate_limit={"max_executions": 2, "window_seconds": 2})
    tags = [f"t{i}" for i in range(1, 7)]
    _align_off_window_boundary(2, 1.4)
    t0 = time.time()
    ids = [api.execute(ref, rec.params(t, s=0.05))["id"] for t in tags]
    submitted_in = time.time() - t0
    w = Watch(api, ref)
    if submitted_in < 1.0:
        # all 6 requests arrived within one window: 4 of them must be waiting in `scheduling`
        snap = w.until(lambda s: states(s, ids[2:]).count("scheduling") >= 3, timeout=10,
                       desc="the extras held in `scheduling`")
        assert states(snap, ids[4:]) == ["scheduling", "scheduling"], states(snap, ids)
    snap = w.until(lambda s: all(x in TERMINAL for x in states(s, ids)) and s.stats["total_completed"] == 6,
                   timeout=40, desc="all 6 executions terminal and counted")
    assert states(snap, ids) == ["completed"] * 6, states(snap, ids)
    assert snap.stats["queue_length"] == 0 and snap.stats["active_count"] == 0, snap.stats
    assert snap.stats["total_enqueued"] == 6, snap.stats

    rows = [api.get_data(f"/api/v1/executions/{i}") for i in ids]
    api_starts = [parse_ts(r["started_at"]).timestamp() for r in rows]
    spans = rec.spans()
    own_starts = [spans[t][0] for t in tags]
    # FIFO: two executions admitted by the same window opening start side by side (their processes may
    # record in either order), but none starts before one submitted 2 places earlier.
    for name, starts in (("started_at", api_starts), ("the action's clock", own_starts)):
        for i in range(len(tags)):
            for j in range(i + 2, len(tags)):
                assert starts[i] < starts[j], \
                    f"{tags[j]} started before {tags[i]} by {name}: {[round(x - starts[0], 3) for x in starts]}"
    for name, starts in (("started_at", api_starts), ("the action's clock", own_starts)):
        rel = [round(s - starts[0], 3) for s in starts]
        for i in range(len(starts) - 2):
            # any 2 s window holds at most 2 starts: the 3rd start after any start is ≥ 2 s later
            assert starts[i + 2] - starts[i] >= 2 - JITTER, \
                f"3 starts within 2 s by {name}: {rel} (relative to the first)"
        assert starts[-1] - starts[0] >= 4 - JITTER, f"6 starts at 2 per 2 s took < 4 s by {name}: {rel}"


def test_rate_limit_extras_wait_for_the_window_not_for_completion(api, pack, rec):
    """A rate limit counts starts, not running executions: long runs do not hold the queue."""
    ref = f"{pack}.slowrated"
    api.create_action(ref, SLEEPER, timeout_seconds=60)
    create_policy(api, pack, "rate1", action_ref=ref, rate_limit={"max_executions": 1, "window_seconds": 1})
    ids = [api.execute(ref, rec.params(t, s=4))["id"] for t in ("s1", "s2", "s3")]
    w = Watch(api, ref)
    snap = w.until(lambda s: states(s, ids) == ["running"] * 3, timeout=20,
                   desc="all three running at once (one start per second, each runs 4 s)")
    spans = rec.spans()
    starts = [spans[t][0] for t in ("s1", "s2", "s3")]
    assert all(b - a >= 1 - JITTER for a, b in zip(starts, starts[1:])), starts
    w.until(lambda s: states(s, ids) == ["completed"] * 3, timeout=30, desc="all completed")
    assert rec.starts() == ["s1", "s2", "s3"]
