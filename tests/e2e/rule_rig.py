"""A webhook trigger with several rules on it, for the rule criteria/templating scenarios (T2.4, T2.5, T3.4,
T3.5) and the rule lifecycle tests.

Negative checks ("this rule did NOT fire for that event") need to know the rules stage has evaluated the
event. The rig owns a catch-all sentinel rule on the trigger: events of one trigger are evaluated in order,
so once the sentinel's enforcement for a later barrier event is visible, every earlier event has been
evaluated. Enforcements of different rules may become visible a moment apart, so absence is then confirmed
by polling for a short window rather than by a fixed sleep.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Optional

from attune_e2e import Client, expect, uid, wait_for


class RuleRig:
    def __init__(self, api: Client, script: str = "cat", pack_ref: Optional[str] = None,
                 pack_fields: Optional[dict] = None):
        self.api = api
        self.pack = api.create_pack(pack_ref, **(pack_fields or {}))
        self.pack_ref = self.pack["ref"]
        u = uid(6)
        self.action = api.create_action(f"{self.pack_ref}.act_{u}", script)
        self.action_ref = self.action["ref"]
        self.trigger = api.create_trigger(f"{self.pack_ref}.hook_{u}")
        self.trigger_ref = self.trigger["ref"]
        self.key = api.enable_webhook(self.trigger_ref)
        self.sentinel = api.create_rule(f"{self.pack_ref}.zz_sentinel_{u}", self.trigger_ref, self.action_ref,
                                        action_params={"sentinel": True})
        self.sentinel_ref = self.sentinel["ref"]
        self.fired: list[int] = []

    def rule(self, conditions: Any = None, action_params: Any = None, name: str = "rule", **fields) -> dict:
        """A rule on the rig's trigger and action (unique ref `<pack>.<name>_<uid>`)."""
        return self.api.create_rule(f"{self.pack_ref}.{name}_{uid(6)}", self.trigger_ref, self.action_ref,
                                    action_params=action_params, conditions=conditions, **fields)

    def fire(self, payload: Any) -> int:
        event_id = self.api.fire(self.key, payload)["event_id"]
        self.fired.append(event_id)
        return event_id

    def settle(self, timeout: float = 20.0) -> int:
        """Returns once every event fired so far has been evaluated by the rules stage."""
        barrier = self.api.fire(self.key, {"barrier": uid()})["event_id"]
        wait_for(lambda: self.api.items("/api/v1/enforcements", rule_ref=self.sentinel_ref, event=barrier),
                 timeout=timeout, desc=f"the sentinel enforcement for barrier event {barrier}")
        return barrier

    def enforcements(self, rule_ref: str, events: Optional[Iterable[int]] = None) -> list:
        items = self.api.items("/api/v1/enforcements", rule_ref=rule_ref)
        if events is not None:
            wanted = set(events)
            items = [e for e in items if e["event"] in wanted]
        return items

    def matched(self, rule_ref: str) -> set:
        """Ids of the events fired through fire() that rule_ref has enforced."""
        return {e["event"] for e in self.enforcements(rule_ref, self.fired)}

    def expect_matches(self, expected: dict, window: float = 0.5, timeout: float = 20.0) -> None:
        """expected: rule_ref -> set of event ids (among those fired via fire()) the rule must have enforced,
        and no others. Settles first, waits for the expected ones, then confirms nothing else shows up."""
        self.settle(timeout)

        def all_present():
            got = {ref: self.matched(ref) for ref in expected}
            missing = {ref: sorted(set(want) - got[ref]) for ref, want in expected.items() if set(want) - got[ref]}
            assert not missing, f"enforcements still missing: {missing}"
            return got
        got = wait_for(all_present, timeout=timeout, desc="the expected enforcements")
        deadline = time.monotonic() + window
        while True:
            extra = {ref: sorted(got[ref] - set(want)) for ref, want in expected.items() if got[ref] - set(want)}
            assert not extra, f"rules enforced events they should not match: {extra}"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
            got = {ref: self.matched(ref) for ref in expected}
        for ref, want in expected.items():
            for event_id in want:
                enfs = self.enforcements(ref, [event_id])
                assert len(enfs) == 1, f"{ref} has {len(enfs)} enforcements for event {event_id}: {enfs}"

    def execution_config(self, rule_ref: str, event_id: int, timeout: float = 20.0) -> tuple[dict, dict]:
        """The enforcement of (rule, event) and its execution, once both exist."""
        (enf,) = wait_for(lambda: self.enforcements(rule_ref, [event_id]), timeout=timeout,
                          desc=f"the enforcement of {rule_ref} for event {event_id}")
        enf = expect(self.api.get(f"/api/v1/enforcements/{enf['id']}"), 200)["data"]
        ex = self.api.execution_for_enforcement(enf["id"], timeout=timeout)
        return enf, ex
