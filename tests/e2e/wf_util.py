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


def output(ex: dict) -> dict:
    """A completed workflow's rendered output_map (API.md §11: `data`, its keys also at the top level),
    checking both places agree."""
    result = ex["result"]
    assert isinstance(result, dict) and "data" in result, result
    top = {k: v for k, v in result.items() if k != "data"}
    assert top == {k: v for k, v in result["data"].items() if k != "data"}, result
    return result["data"]
