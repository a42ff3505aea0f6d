"""Helpers for workflow e2e tests (API.md §12): create workflows, run them, read their children."""
from __future__ import annotations

from typing import Any, Optional

from attune_e2e import Client, TERMINAL, expect, wait_for


def create_workflow(api: Client, ref: str, definition: dict, **fields) -> dict:
    pack_ref, _, name = ref.partition(".")
    body = {"ref": ref, "pack_ref": pack_ref, "label": name, "version": "1.0.0",
            "definition": definition}
    body.update(fields)
    return expect(api.post("/api/v1/workflows", json=body), 201)["data"]


def echo_action(api: Client, pack: str, name: str = "echo", script: str = 'printf "%s" "$msg"') -> str:
    """A shell action printing its `msg` parameter (result.stdout)."""
    api.create_action(f"{pack}.{name}", script)
    return f"{pack}.{name}"


def run(api: Client, ref: str, parameters: Optional[dict] = None, timeout: float = 60.0) -> dict:
    ex = api.execute(ref, parameters or {})
    return api.wait_execution(ex["id"], timeout=timeout)


def children(api: Client, parent_id: int) -> list:
    return api.items("/api/v1/executions", parent=parent_id)


def tasks_of(api: Client, parent_id: int) -> dict:
    """task name → list of child executions (sorted by task_index, then id)."""
    out: dict = {}
    for c in children(api, parent_id):
        out.setdefault(c["workflow_task"]["task_name"], []).append(c)
    for v in out.values():
        v.sort(key=lambda c: (c["workflow_task"].get("task_index") or 0, c["id"]))
    return out


def sleep_action(api: Client, pack: str, name: str = "nap", **fields) -> str:
    """A shell action sleeping `s` seconds (default 1), then printing `tag` (stdout)."""
    api.create_action(f"{pack}.{name}", 'sleep "${s:-1}"; printf "%s" "$tag"', **fields)
    return f"{pack}.{name}"


def interval(child: dict) -> tuple:
    """(start, end) of a terminal child in epoch seconds: `started_at` and `updated` (the record's last
    change, i.e. its terminal status; ms precision)."""
    from attune_e2e import parse_ts
    assert child.get("started_at"), f"child {child['id']} has no started_at: {child}"
    return parse_ts(child["started_at"]).timestamp(), parse_ts(child["updated"]).timestamp()


def max_overlap(intervals: list) -> int:
    """The largest number of half-open [start, end) intervals covering one instant."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda p: (p[0], p[1]))  # an end sorts before a start at the same instant
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def wait_children_terminal(api: Client, parent_id: int, timeout: float = 20.0) -> list:
    """Every child of `parent_id` once all of them are terminal."""
    def check():
        kids = children(api, parent_id)
        return (kids,) if all(k["status"] in TERMINAL for k in kids) else None
    return wait_for(check, timeout=timeout, desc=f"children of {parent_id} terminal")[0]


def output(ex: dict) -> dict:
    """A completed workflow's rendered output_map (API.md §11: `data`, its keys also at the top level),
    checking both places agree."""
    result = ex["result"]
    assert isinstance(result, dict) and "data" in result, result
    top = {k: v for k, v in result.items() if k != "data"}
    assert top == {k: v for k, v in result["data"].items() if k != "data"}, result
    return result["data"]
