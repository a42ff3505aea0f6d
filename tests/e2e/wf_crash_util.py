"""A mix of workflows for crash tests (issue 16) and the exactly-once checks made on them afterwards.

The mix (API.md §12): three levels of nesting with a `delay`, a `parallel` task, `with_items` with
`concurrency` 3 and a task `retry` (some items fail their first attempt by design), a diamond with
`join`, and one workflow designed to fail. Every leaf task runs the shell action `rec`, which sleeps
`nap` seconds and then appends one line `ok <tag> <execution id>` to a file (`fail <tag> <id>` for
the designed failures); `tag` names the top-level run, the path of nested tasks, the task and the
item, so it is unique per expected task key.

`check_runs` walks every run over REST (`GET /executions?parent=`, recursively) and compares it
with the expected shape; the module docstrings of the tests state the exact expectation.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from attune_e2e import NON_TERMINAL, Client
from wf_util import create_workflow

# The action's retry policy for lost work (README "Retries of lost work"): more than the number of
# crashes a test causes, so that an attempt killed by a crash is run again, never left abandoned.
ACTION_MAX_RETRIES = 8

WORKFLOW_KINDS = ("nested", "par", "items", "diamond", "doomed")
ITEMS = [{"i": i, "ff": 1 if i % 3 == 0 else 0} for i in range(6)]


def rec_script(out_dir: Path) -> str:
    lines = out_dir / "lines"
    return (
        'sleep "$nap"\n'
        f'if [ "$ff" = 1 ] && mkdir "{out_dir}/ff-$tag" 2>/dev/null; then\n'
        f'  echo "fail $tag $ATTUNE_EXEC_ID $PPID $(date +%s.%N)" >> "{lines}"; exit 3\n'
        'fi\n'
        f'echo "ok $tag $ATTUNE_EXEC_ID $PPID $(date +%s.%N)" >> "{lines}"\n'
        'printf "%s" "$tag"\n')


def bad_script(out_dir: Path) -> str:
    lines = out_dir / "lines"
    return f'sleep "$nap"; echo "fail $tag $ATTUNE_EXEC_ID $PPID $(date +%s.%N)" >> "{lines}"; exit 4\n'


def _leaf(name: str, action: str, nap: float, suffix: Optional[str] = None, **extra) -> dict:
    tag = "{{ parameters.w }}:" + (suffix or name)
    t = {"name": name, "action": action, "input": {"tag": tag, "nap": nap, "ff": 0}}
    t.update(extra)
    return t


def define(api: Client, pack: str, out_dir: Path) -> None:
    """Creates the actions and workflows of the mix in `pack`."""
    rec, bad = f"{pack}.rec", f"{pack}.bad"
    api.create_action(rec, rec_script(out_dir), max_retries=ACTION_MAX_RETRIES)
    api.create_action(bad, bad_script(out_dir), max_retries=ACTION_MAX_RETRIES)
    # level 3
    create_workflow(api, f"{pack}.leaf3", {"version": "1", "tasks": [
        _leaf("l3a", rec, 0.2, on_success="l3b"),
        _leaf("l3b", rec, 0.1, delay=1),
    ], "output_map": {"b": "{{ task.l3b.result.stdout }}"}})
    # level 2
    create_workflow(api, f"{pack}.mid2", {"version": "1", "tasks": [
        _leaf("m_pre", rec, 0.2, on_success="m_sub"),
        {"name": "m_sub", "action": f"{pack}.leaf3", "input": {"w": "{{ parameters.w }}:m_sub"},
         "on_success": "m_post"},
        _leaf("m_post", rec, 0.1),
    ], "output_map": {"sub": "{{ task.m_sub.result.b }}"}})
    # level 1: nested → mid2 → leaf3
    create_workflow(api, f"{pack}.nested", {"version": "1", "tasks": [
        _leaf("n_a", rec, 0.3, on_success="n_sub"),
        {"name": "n_sub", "action": f"{pack}.mid2", "input": {"w": "{{ parameters.w }}:n_sub"}},
    ], "output_map": {"deep": "{{ task.n_sub.result.sub }}"}})
    create_workflow(api, f"{pack}.par", {"version": "1", "tasks": [
        _leaf("p_init", rec, 0.2, on_success="fan"),
        {"name": "fan", "type": "parallel", "tasks": [
            _leaf("p1", rec, 0.4), _leaf("p2", rec, 0.2), _leaf("p3", rec, 0.3)],
         "on_success": "p_end"},
        _leaf("p_end", rec, 0.1),
    ]})
    create_workflow(api, f"{pack}.items", {"version": "1", "tasks": [
        {"name": "it", "action": rec, "with_items": "{{ parameters.items }}", "concurrency": 3,
         "retry": {"count": 2, "delay": 0.5},
         "input": {"tag": "{{ parameters.w }}:it:{{ item.i }}", "nap": 0.3, "ff": "{{ item.ff }}"},
         "on_success": "it_done"},
        _leaf("it_done", rec, 0.1),
    ], "output_map": {"n": "{{ task.it.result | length }}"}})
    create_workflow(api, f"{pack}.diamond", {"version": "1", "tasks": [
        _leaf("d0", rec, 0.2, next=[{"do": ["d_left", "d_right"]}]),
        _leaf("d_left", rec, 0.5, on_success="d_join"),
        _leaf("d_right", rec, 0.1, on_success="d_join"),
        _leaf("d_join", rec, 0.2, join="all", on_success="d_tail"),
        _leaf("d_tail", rec, 0.1, delay=1),
    ]})
    create_workflow(api, f"{pack}.doomed", {"version": "1", "tasks": [
        _leaf("x0", rec, 0.2, on_success="x_bad"),
        _leaf("x_bad", bad, 0.2, on_success="x_never"),
        _leaf("x_never", rec, 0.1),
    ]})


# --------------------------------------------------------------------------------- expectations

@dataclass
class Leaf:
    tag: str
    may_fail_first: bool = False  # a designed first failure, retried by the task's `retry`
    fails: bool = False           # the designed failure of `doomed`


@dataclass
class Sub:
    kind: str
    w: str


def expected(kind: str, w: str) -> tuple[str, dict]:
    """(final status, {(task_name, task_index): Leaf | Sub}) of one run of `kind` with parameter w."""
    L = lambda name: Leaf(f"{w}:{name}")  # noqa: E731
    if kind == "leaf3":
        return "completed", {("l3a", None): L("l3a"), ("l3b", None): L("l3b")}
    if kind == "mid2":
        return "completed", {("m_pre", None): L("m_pre"), ("m_sub", None): Sub("leaf3", f"{w}:m_sub"),
                             ("m_post", None): L("m_post")}
    if kind == "nested":
        return "completed", {("n_a", None): L("n_a"), ("n_sub", None): Sub("mid2", f"{w}:n_sub")}
    if kind == "par":
        return "completed", {(n, None): L(n) for n in ("p_init", "p1", "p2", "p3", "p_end")}
    if kind == "items":
        tasks = {("it", it["i"]): Leaf(f"{w}:it:{it['i']}", may_fail_first=bool(it["ff"])) for it in ITEMS}
        tasks[("it_done", None)] = L("it_done")
        return "completed", tasks
    if kind == "diamond":
        return "completed", {(n, None): L(n) for n in ("d0", "d_left", "d_right", "d_join", "d_tail")}
    if kind == "doomed":
        return "failed", {("x0", None): L("x0"), ("x_bad", None): Leaf(f"{w}:x_bad", fails=True)}
    raise ValueError(kind)


def expected_result(kind: str, w: str) -> dict:
    """Keys the workflow's result must hold (its `output_map`, API.md §11.5)."""
    return {"leaf3": {"b": f"{w}:l3b"}, "mid2": {"sub": f"{w}:m_sub:l3b"},
            "nested": {"deep": f"{w}:n_sub:m_sub:l3b"}, "items": {"n": len(ITEMS)}}.get(kind, {})


def params_of(kind: str, w: str) -> dict:
    return {"w": w, "items": ITEMS} if kind == "items" else {"w": w}


# ------------------------------------------------------------------------------------- reading

def all_items(api: Client, path: str, **filters) -> list:
    out, page = [], 1
    while True:
        body = api.list(path, page=page, page_size=100, **filters)
        out += body["items"]
        if not body["pagination"]["has_next"]:
            return out
        page += 1


def read_lines(out_dir: Path) -> list[tuple[str, str, int, str]]:
    """(ok|fail, tag, execution id, the whole line: it also names the parent process (the worker
    that spawned the action) and the time)."""
    p = out_dir / "lines"
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        kind, tag, eid = line.split(" ")[:3]
        rows.append((kind, tag, int(eid), line))
    return rows


# -------------------------------------------------------------------------------------- checking

@dataclass
class Report:
    problems: list = field(default_factory=list)
    runs: int = 0
    leaves: int = 0
    rows: int = 0
    retried: list = field(default_factory=list)      # (exec id, tag, retry_count, retry_reason)
    extra_lines: list = field(default_factory=list)  # (tag, exec id, lines) with lines > 1, allowed by a retry
    task_retries: int = 0
    suspects: set = field(default_factory=set)       # execution ids named by problems

    def bad(self, msg: str) -> None:
        self.problems.append(msg)


def _brief(e: dict) -> dict:
    wt = e.get("workflow_task") or {}
    return {k: e.get(k) for k in ("id", "status", "action_ref", "attempt", "retry_count", "retry_reason")} | {
        "task": wt.get("task_name"), "index": wt.get("task_index"), "wt_attempt": wt.get("attempt")}


def check_runs(api: Client, runs: list[tuple[str, str, int]], out_dir: Path, pack: str) -> Report:
    """Checks every run (kind, w, execution id) and the side-effect file against the expectation."""
    rep = Report()
    lines = read_lines(out_dir)
    ok_lines: dict[str, Counter] = defaultdict(Counter)  # tag -> Counter(exec id)
    fail_lines: dict[str, Counter] = defaultdict(Counter)
    raw: dict[int, list] = defaultdict(list)  # exec id -> its lines
    for kind, tag, eid, line in lines:
        (ok_lines if kind == "ok" else fail_lines)[tag][eid] += 1
        raw[eid].append(line)
    seen_tags: set[str] = set()
    seen_ids: set[int] = set()

    def walk(kind: str, w: str, ex: dict, path: str) -> None:
        rep.runs += 1
        seen_ids.add(ex["id"])
        want_status, tasks = expected(kind, w)
        if ex["status"] != want_status:
            rep.bad(f"{path}: workflow {ex['id']} ({kind}) is {ex['status']}, expected {want_status}")
        got = ex.get("result") if isinstance(ex.get("result"), dict) else {}
        for k, v in expected_result(kind, w).items():
            if got.get(k) != v:
                rep.bad(f"{path}: workflow {ex['id']} result {k}={got.get(k)!r}, expected {v!r}")
        kids = all_items(api, "/api/v1/executions", parent=ex["id"])
        rep.rows += len(kids)
        by_key: dict = defaultdict(list)
        for k in kids:
            seen_ids.add(k["id"])
            wt = k.get("workflow_task") or {}
            by_key[(wt.get("task_name"), wt.get("task_index"))].append(k)
        for key in sorted(set(by_key) - set(tasks), key=str):
            rep.bad(f"{path}: unexpected task key {key}: {[_brief(k) for k in by_key[key]]}")
        for key, want in tasks.items():
            rows = sorted(by_key.get(key, []), key=lambda k: k["id"])
            where = f"{path}/{key[0]}" + (f"[{key[1]}]" if key[1] is not None else "")
            if not rows:
                rep.bad(f"{where}: no child execution (task lost)")
                continue
            stuck = [_brief(r) for r in rows if r["status"] in NON_TERMINAL]
            if stuck:
                rep.bad(f"{where}: child stuck: {stuck}")
            if isinstance(want, Sub):
                if len(rows) != 1:
                    rep.bad(f"{where}: {len(rows)} child workflow executions, expected 1: "
                            f"{[_brief(r) for r in rows]}")
                walk(want.kind, want.w, rows[0], where)
                continue
            rep.leaves += 1
            seen_tags.add(want.tag)
            final = "failed" if want.fails else "completed"
            finals = [r for r in rows if r["status"] == final]
            others = [r for r in rows if r["status"] != final]
            if len(finals) != 1:
                rep.bad(f"{where}: {len(finals)} {final} children, expected exactly 1: "
                        f"{[_brief(r) for r in rows]}")
                continue
            # A designed first failure of an item leaves one `failed` row (the task retried it).
            allowed_others = 1 if want.may_fail_first else 0
            if len(others) > allowed_others or any(r["status"] != "failed" for r in others):
                rep.bad(f"{where}: unexpected extra children: {[_brief(r) for r in rows]}")
            rep.task_retries += len(others)
            done = api.get_data(f"/api/v1/executions/{finals[0]['id']}")
            retries = int(done.get("retry_count") or 0)
            if retries:
                rep.retried.append((done["id"], want.tag, retries, done.get("retry_reason")))
            if want.fails:
                n = fail_lines[want.tag][done["id"]]
            else:
                if (done.get("result") or {}).get("stdout") != want.tag:
                    rep.bad(f"{where}: child {done['id']} result {done.get('result')!r}, "
                            f"expected stdout {want.tag!r}")
                n = ok_lines[want.tag][done["id"]]
                strangers = {e: c for e, c in ok_lines[want.tag].items() if e != done["id"]}
                if strangers:
                    rep.suspects.update(strangers)
                    rep.bad(f"{where}: side effect ({want.tag}) also by executions {strangers} besides "
                            f"the completed child {done['id']}: {[_brief(r) for r in rows]}")
            # Exactly once; an attempt killed by a crash after its side effect may have run it once
            # more, and only then: one extra line per retry the execution records.
            if n < 1 or n > 1 + retries:
                rep.bad(f"{where}: side effect of {want.tag} by execution {done['id']} appears {n} times "
                        f"(retry_count {retries}, retry_reason {done.get('retry_reason')!r}, attempt "
                        f"{done.get('attempt')}, worker {done.get('worker')!r}); lines {raw[done['id']]}")
                rep.suspects.add(done["id"])
            elif n > 1:
                rep.extra_lines.append((want.tag, done["id"], n))
            for r in others:
                if r["status"] == "failed" and fail_lines[want.tag][r["id"]] < 1:
                    rep.bad(f"{where}: failed child {r['id']} left no 'fail' line")

    for kind, w, eid in runs:
        ex = api.get_data(f"/api/v1/executions/{eid}")
        walk(kind, w, ex, f"{kind}({w})#{eid}")
    for tag in sorted(set(ok_lines) - seen_tags):
        rep.bad(f"side effect of an unexpected task: ok {tag} {dict(ok_lines[tag])}")
    for tag in sorted(set(fail_lines) - seen_tags):
        rep.bad(f"side effect of an unexpected task: fail {tag} {dict(fail_lines[tag])}")
    # Nothing of this pack anywhere else: no stray or stuck execution outside the trees.
    in_pack = all_items(api, "/api/v1/executions", pack_ref=pack)
    strays = [_brief(e) for e in in_pack if e["id"] not in seen_ids]
    if strays:
        rep.bad(f"executions of the pack outside the expected trees: {strays[:20]}")
    stuck = [_brief(e) for e in in_pack if e["status"] in NON_TERMINAL]
    if stuck:
        rep.bad(f"executions stuck in a non-terminal status: {stuck[:20]}")
    return rep


def summary(rep: Report) -> str:
    return (f"{rep.runs} workflow runs, {rep.leaves} leaf tasks, {rep.rows} child rows, "
            f"{rep.task_retries} designed task retries, {len(rep.retried)} executions retried after "
            f"a crash, {len(rep.extra_lines)} side effects repeated by such a retry")


def grep_logs(paths, ids, limit: int = 80) -> str:
    """The log lines (of every given log file) that name one of the execution ids."""
    ids = [str(i) for i in sorted(ids)][:20]
    if not ids:
        return ""
    out = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        hits = [f"{Path(p).parent.name}: {line}" for line in text if any(i in line for i in ids)]
        out += hits
    return f"--- log lines naming {ids} ---\n" + "\n".join(out[:limit])


def dump(obj) -> str:
    return json.dumps(obj, default=str)[:4000]
