"""Helpers for the timer and sensor scenarios: timer rules and their ticks, seen over the REST API."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

from attune_e2e import Client, parse_ts, uid, wait_for


def timer_rule(api: Client, trigger_ref: str, params: dict, *, script: str = "true",
               enabled: bool = True, pack_ref: Optional[str] = None, **fields) -> SimpleNamespace:
    """A pack (unless given), an inline shell action and a rule on a core timer trigger."""
    u = uid()
    p = pack_ref or api.create_pack()["ref"]
    action = api.create_action(f"{p}.act_{u}", script)
    rule = api.create_rule(f"{p}.timer_{u}", trigger_ref, action["ref"], trigger_params=params,
                           enabled=enabled, **fields)
    return SimpleNamespace(pack_ref=p, action=action, rule=rule, rule_ref=rule["ref"])


def ticks(api: Client, rule_ref: str) -> list[dict]:
    """The tick payloads (copied into each enforcement) of a timer rule, oldest first."""
    rows = api.items("/api/v1/enforcements", rule_ref=rule_ref, order="asc")
    return [dict(r["payload"], event=r["event"]) for r in rows]


def wait_ticks(api: Client, rule_ref: str, count: int, timeout: float = 20.0) -> list[dict]:
    return wait_for(lambda: (lambda t: t if len(t) >= count else None)(ticks(api, rule_ref)),
                    timeout=timeout, desc=f"{count} ticks of {rule_ref}")


def scheduled_ms(tick: dict) -> int:
    return int(parse_ts(tick["scheduled_at"]).timestamp() * 1000)


def assert_unique(tick_list: list[dict]) -> None:
    events = [t["event"] for t in tick_list]
    sched = [t["scheduled_at"] for t in tick_list]
    assert len(set(events)) == len(events), f"duplicate events: {tick_list}"
    assert len(set(sched)) == len(sched), f"a tick fired twice: {sorted(sched)}"


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]
