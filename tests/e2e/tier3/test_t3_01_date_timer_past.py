"""T3.1 Date timer in the past: ≤ 60 s ago fires once at once, older never; never twice."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from attune_e2e import rfc3339
from timer_rig import ticks, timer_rule, wait_ticks


def test_recent_past_fires_once_and_old_past_never(api):
    now = datetime.now(timezone.utc)
    recent = timer_rule(api, "core.datetimetimer", {"fire_at": rfc3339(now - timedelta(seconds=20))})
    old = timer_rule(api, "core.datetimetimer", {"fire_at": rfc3339(now - timedelta(minutes=5))},
                     pack_ref=recent.pack_ref)
    got = wait_ticks(api, recent.rule_ref, 1, timeout=5)
    assert got[0]["type"] == "datetime"
    api.wait_rule_executions(recent.rule_ref, 1)
    time.sleep(1.5)
    assert len(ticks(api, recent.rule_ref)) == 1
    assert ticks(api, old.rule_ref) == []
    # Re-enabling does not fire the same date again.
    api.post(f"/api/v1/rules/{recent.rule_ref}/disable")
    api.post(f"/api/v1/rules/{recent.rule_ref}/enable")
    time.sleep(1.0)
    assert len(ticks(api, recent.rule_ref)) == 1
