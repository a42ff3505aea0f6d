"""Helpers for the policy end-to-end tests (issue 17; API.md §7 Policy, §11 executions, §15 policies,
queue statistics and retries): create/update/delete policies, read queue stats with their shape
checked, shell actions that record when they run (and optionally wait for a gate file), and a
`Watch` that samples an action's executions and queue stats together and checks at every sample
what must hold at all times (no more active executions than the limit, stats adding up).

Actions are inline `core.shell` scripts: their parameters are shell variables (API.md §11.4). They
write to a per-test directory (`dir`) the server can reach, one line per event, appended with
`>>` (O_APPEND: lines never interleave):

    start <tag> <epoch seconds.nanoseconds>
    end <tag> <epoch seconds.nanoseconds>
"""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Optional

from attune_e2e import TERMINAL, TIMESTAMP_RE, Client, expect, is_id, parse_ts, uid, wait_for

ACTIVE = frozenset({"scheduled", "running", "canceling"})  # admitted, not terminal (API.md §15)
STATS_FIELDS = ("action_id", "action_ref", "active_count", "max_concurrent", "queue_length",
                "total_enqueued", "total_completed", "oldest_enqueued_at", "last_updated")
COUNT_FIELDS = ("active_count", "queue_length", "total_enqueued", "total_completed")

# Records its start, waits until the gate file go_<tag> (or go_all) exists, records its end.
GATED = ('echo "start $tag $(date +%s.%N)" >> "$dir/log"\n'
         'while [ ! -e "$dir/go_$tag" ] && [ ! -e "$dir/go_all" ]; do sleep 0.05; done\n'
         'echo "end $tag $(date +%s.%N)" >> "$dir/log"\n'
         'echo "done $tag"\n')

# Records its start, sleeps `s` seconds (default 0.3), records its end.
SLEEPER = ('echo "start $tag $(date +%s.%N)" >> "$dir/log"\n'
           'sleep "${s:-0.3}"\n'
           'echo "end $tag $(date +%s.%N)" >> "$dir/log"\n')

# Counts its runs in $dir/count; records start/end under the run number; fails (exit `code`,
# default 3) while the count is <= fail_times.
FLAKY = ('n=$(cat "$dir/count" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$dir/count"\n'
         'echo "start $n $(date +%s.%N)" >> "$dir/log"\n'
         'echo "attempt $n"\n'
         'echo "end $n $(date +%s.%N)" >> "$dir/log"\n'
         '[ "$n" -gt "${fail_times:-0}" ] || exit "${code:-3}"\n')


# ------------------------------------------------------------------------------------------ policies

def policy_body(pack: str, name: str, action_ref: Optional[str] = None, **fields) -> dict:
    body = {"ref": f"{pack}.{name}", "pack_ref": pack, "name": name,
            "description": f"e2e policy {name}"}
    if action_ref is not None:
        body["action_ref"] = action_ref
    body.update(fields)
    return body


def create_policy(api: Client, pack: str, name: Optional[str] = None, action_ref: Optional[str] = None,
                  **fields) -> dict:
    """POST /api/v1/policies (API.md §15: top-level `action_ref` ⇒ action scope). Returns `data`."""
    name = name or f"pol_{uid(6)}"
    body = policy_body(pack, name, action_ref, **fields)
    data = expect(api.post("/api/v1/policies", json=body), 201)["data"]
    assert data.get("ref") == f"{pack}.{name}", data
    assert is_id(data.get("id")), data
    if action_ref is not None:
        scope = data.get("scope") or {}
        assert scope.get("type") == "action" and scope.get("action_ref") == action_ref, \
            f"a policy created with action_ref {action_ref} has scope {scope}: {data}"
    return data


def update_policy(api: Client, ref: str, **fields) -> dict:
    return expect(api.put(f"/api/v1/policies/{ref}", json=fields), 200)["data"]


def delete_policy(api: Client, ref: str) -> None:
    body = expect(api.delete(f"/api/v1/policies/{ref}"), 200)
    assert body.get("success") is True, body


def concurrency(limit: int, method: str = "enqueue", parameters: Optional[list] = None) -> dict:
    c = {"limit": limit, "method": method}
    if parameters is not None:
        c["parameters"] = parameters
    return c


# ---------------------------------------------------------------------------------------- queue stats

def queue_stats(api: Client, action_ref: str) -> dict:
    """GET /api/v1/actions/{ref}/queue-stats, its shape checked (API.md §15)."""
    data = expect(api.get(f"/api/v1/actions/{action_ref}/queue-stats"), 200)["data"]
    missing = [f for f in STATS_FIELDS if f not in data]
    assert not missing, f"queue-stats of {action_ref} lacks {missing}: {data}"
    assert data["action_ref"] == action_ref, data
    for f in COUNT_FIELDS:
        v = data[f]
        assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"queue-stats {f}={v!r}: {data}"
    for f in ("oldest_enqueued_at", "last_updated"):
        v = data[f]
        assert v is None or (isinstance(v, str) and TIMESTAMP_RE.match(v)), \
            f"queue-stats {f}={v!r} is neither null nor RFC 3339 UTC with ms: {data}"
    return data


def counts(stats: dict) -> dict:
    return {f: stats[f] for f in COUNT_FIELDS}


def stats_problems(stats: dict) -> list[str]:
    """What must hold in every queue-stats answer (API.md §15): each admitted execution is queued,
    active or terminal, so total_enqueued = queue_length + active_count + total_completed; the
    oldest enqueue time is set exactly when something is queued. (`max_concurrent` is per group
    with `parameters`, so active_count is not bounded by it here.)"""
    p = []
    s = stats
    if s["total_enqueued"] != s["queue_length"] + s["active_count"] + s["total_completed"]:
        p.append("total_enqueued != queue_length + active_count + total_completed")
    if (s["queue_length"] == 0) != (s["oldest_enqueued_at"] is None):
        p.append("oldest_enqueued_at must be null exactly when queue_length is 0")
    return p


# ------------------------------------------------------------------------------------ action records

class Recorder:
    """The per-test directory actions write to, with gates."""

    def __init__(self, path: Path):
        self.dir = Path(path)
        self.dir.mkdir(parents=True, exist_ok=True)

    def params(self, tag: Any, **extra) -> dict:
        return {"dir": str(self.dir), "tag": str(tag), **extra}

    def open(self, *tags: Any) -> None:
        for t in tags:
            (self.dir / f"go_{t}").touch()

    def open_all(self) -> None:
        (self.dir / "go_all").touch()

    def lines(self, name: str = "log") -> list[tuple[str, str, float]]:
        try:
            text = (self.dir / name).read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            assert len(parts) == 3 and parts[0] in ("start", "end"), f"bad record line {line!r} in {self.dir}"
            out.append((parts[0], parts[1], float(parts[2])))
        return out

    def starts(self) -> list[str]:
        """Tags in the order they started."""
        return [tag for kind, tag, _ in self.lines() if kind == "start"]

    def spans(self) -> dict[str, tuple[float, Optional[float]]]:
        """tag → (start, end or None); a tag starting twice is an error."""
        spans: dict[str, list] = {}
        for kind, tag, t in self.lines():
            if kind == "start":
                assert tag not in spans, f"{tag} started twice: {self.lines()}"
                spans[tag] = [t, None]
            else:
                assert tag in spans and spans[tag][1] is None, f"unexpected end of {tag}: {self.lines()}"
                spans[tag][1] = t
        return {k: (v[0], v[1]) for k, v in spans.items()}


def assert_one_at_a_time(rec: Recorder, order: list[str]) -> None:
    """The records show exactly `order` started, in that order, each after the previous ended."""
    spans = rec.spans()
    assert rec.starts() == order, f"start order {rec.starts()} != submission order {order}"
    for prev, nxt in zip(order, order[1:]):
        p_end = spans[prev][1]
        assert p_end is not None, f"{prev} never ended, yet {nxt} started: {spans}"
        assert spans[nxt][0] >= p_end, \
            f"{nxt} started at {spans[nxt][0]:.3f} before {prev} ended at {p_end:.3f} (overlap)"


def max_overlap(spans: Iterable[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


# ---------------------------------------------------------------------------------------- sampling

class Watch:
    """Samples an action's executions (one list call) and its queue stats. At every sample:
    at most `limit` executions in scheduled/running/canceling (per value of `group` when given),
    and the stats invariants of `stats_problems`. `until(pred)` polls until pred(snapshot)."""

    def __init__(self, api: Client, action_ref: str, limit: Optional[int] = None,
                 group: Optional[Callable[[dict], Any]] = None, stats: bool = True):
        self.api = api
        self.action_ref = action_ref
        self.limit = limit
        self.group = group
        self.stats = stats
        self.samples = 0
        self.max_active = 0
        self.seen_status: dict[int, list[str]] = {}  # execution id → statuses in the order seen
        self.last: Optional[SimpleNamespace] = None
        self.last_stats: Optional[dict] = None

    def sample(self) -> SimpleNamespace:
        rows = self.api.items("/api/v1/executions", action_ref=self.action_ref)
        by_id = {e["id"]: e for e in rows}
        for e in rows:
            hist = self.seen_status.setdefault(e["id"], [])
            if not hist or hist[-1] != e["status"]:
                hist.append(e["status"])
        active = [e for e in rows if e["status"] in ACTIVE]
        self.max_active = max(self.max_active, len(active))
        if self.limit is not None:
            groups: dict = {}
            for e in active:
                groups.setdefault(self.group(e) if self.group else None, []).append(e["id"])
            for g, ids in groups.items():
                assert len(ids) <= self.limit, (
                    f"{len(ids)} executions of {self.action_ref} active at once"
                    f"{'' if g is None else f' for {g!r}'} (limit {self.limit}): "
                    f"{[(e['id'], e['status']) for e in active]}")
        st = None
        if self.stats:
            st = queue_stats(self.api, self.action_ref)
            problems = stats_problems(st)
            assert not problems, f"queue-stats of {self.action_ref} inconsistent ({problems}): {st}"
            if self.last_stats is not None:
                prev = self.last_stats
                for f in ("total_enqueued", "total_completed"):
                    assert st[f] >= prev[f], f"queue-stats {f} went back: {prev} then {st}"
                if prev["last_updated"] and st["last_updated"]:
                    assert parse_ts(st["last_updated"]) >= parse_ts(prev["last_updated"]), \
                        f"queue-stats last_updated went back: {prev} then {st}"
            self.last_stats = st
        self.samples += 1
        snap = SimpleNamespace(rows=by_id, stats=st, active=active)
        snap.status = lambda i: by_id[i]["status"] if i in by_id else None
        self.last = snap
        return snap

    def until(self, pred: Callable[[SimpleNamespace], Any], timeout: float = 30.0, desc: str = "condition",
              interval: float = 0.05) -> SimpleNamespace:
        deadline = time.monotonic() + timeout
        last_err = None
        while True:
            snap = self.sample()
            try:
                if pred(snap):
                    return snap
            except (KeyError, TypeError) as e:  # a row not listed yet
                last_err = e
            if time.monotonic() >= deadline:
                statuses = {i: e["status"] for i, e in sorted(snap.rows.items())}
                raise AssertionError(f"timed out after {timeout}s waiting for {desc}; executions of "
                                     f"{self.action_ref}: {statuses}; queue-stats: {snap.stats}"
                                     + (f"; last error {last_err!r}" if last_err else ""))
            time.sleep(interval)

    def never_ran(self, exec_id: int) -> bool:
        return not any(s in ("running",) for s in self.seen_status.get(exec_id, []))


def states(snap: SimpleNamespace, ids: list[int]) -> list[Optional[str]]:
    return [snap.status(i) for i in ids]


def stats_at(snap: SimpleNamespace, **want) -> bool:
    """The snapshot's queue stats have exactly the given values."""
    return all(snap.stats[k] == v for k, v in want.items())


def assert_enqueued_after(stats: dict, head: dict) -> None:
    """`oldest_enqueued_at` is the enqueue time of the head of the queue: not before it was
    created (ms precision)."""
    oldest = parse_ts(stats["oldest_enqueued_at"]).timestamp()
    created = parse_ts(head["created"]).timestamp()
    assert oldest >= created - 0.0015, \
        f"oldest_enqueued_at {stats['oldest_enqueued_at']} precedes the creation of the queue head " \
        f"{head['id']} ({head['created']}): {stats}"
    assert oldest <= time.time() + 1.0, f"oldest_enqueued_at in the future: {stats}"


# ------------------------------------------------------------------------------------------- attempts

def executions_of(api: Client, action_ref: str) -> list[dict]:
    """Every execution of the action, oldest first (by id)."""
    return sorted(api.items("/api/v1/executions", action_ref=action_ref), key=lambda e: e["id"])


def wait_attempts(api: Client, action_ref: str, n: int, timeout: float = 40.0,
                  final: Optional[Iterable[str]] = None) -> list[dict]:
    """Waits until the action has at least `n` executions, all terminal (the last one in `final`
    when given); returns them oldest first."""
    final = set(final) if final else None

    def check():
        rows = executions_of(api, action_ref)
        if len(rows) < n or any(r["status"] not in TERMINAL for r in rows):
            return None
        if final is not None and rows[-1]["status"] not in final:
            return None
        return rows
    try:
        return wait_for(check, timeout=timeout, interval=0.1, desc=f"{n} terminal executions of {action_ref}")
    except AssertionError as e:
        rows = executions_of(api, action_ref)
        raise AssertionError(f"{e}; seen: {[(r['id'], r['status'], r.get('retry_count')) for r in rows]}") \
            from None


def assert_no_more(api: Client, action_ref: str, count: int, hold: float) -> None:
    """For `hold` seconds the action keeps exactly `count` executions (no further attempt)."""
    deadline = time.monotonic() + hold
    while True:
        rows = executions_of(api, action_ref)
        assert len(rows) == count, (
            f"expected no further execution of {action_ref} after {count}; got "
            f"{[(r['id'], r['status'], r.get('retry_count'), r.get('retry_reason')) for r in rows]}")
        if time.monotonic() >= deadline:
            return
        time.sleep(0.2)


def assert_retry_chain(rows: list[dict], statuses: list[str]) -> None:
    """API.md §15: each attempt is its own execution; attempt n ≥ 1 has `original_execution` = the
    first attempt's id, `retry_count` = n and `retry_reason` = the previous attempt's status."""
    summary = [(r["id"], r["status"], r.get("retry_count"), r.get("retry_reason"), r.get("original_execution"))
               for r in rows]
    assert [r["status"] for r in rows] == statuses, f"attempt statuses {summary}, expected {statuses}"
    first = rows[0]
    assert first.get("retry_count") == 0, f"first attempt retry_count: {summary}"
    assert first.get("original_execution") in (None, first["id"]), f"first attempt original_execution: {summary}"
    for n, r in enumerate(rows[1:], start=1):
        assert r.get("original_execution") == first["id"], \
            f"attempt {n} original_execution {r.get('original_execution')} != {first['id']}: {summary}"
        assert r.get("retry_count") == n, f"attempt {n} has retry_count {r.get('retry_count')}: {summary}"
        assert r.get("retry_reason") == rows[n - 1]["status"], \
            f"attempt {n} retry_reason {r.get('retry_reason')!r} != previous status " \
            f"{rows[n - 1]['status']!r}: {summary}"
        assert r["action_ref"] == first["action_ref"] and r["config"] == first["config"], \
            f"attempt {n} differs from the first in action or parameters: {r} vs {first}"
        assert r["id"] != first["id"]


# ------------------------------------------------------------------------------ kill -9 with a queue

def check_queued_run(rec: Recorder, rows: list[dict], tags: list[str], kill_times: list[float],
                     allow_abandoned: bool) -> list[str]:
    """Problems with a run of executions submitted in the order of `tags` (rows in the same order)
    behind a concurrency limit of 1 and through kill -9 at `kill_times` (epoch seconds):

    * none ran twice (one start record per tag at most);
    * they ran in submission order and one at a time (each started after the previous one ended, or
      — for a process cut off by a kill — after that kill);
    * every execution ended `completed` with exactly one run; with `allow_abandoned` (the embedded
      server: an action in flight when the process dies is lost with its worker, README "Retries of
      lost work") an execution that was in flight at a kill may end `abandoned` instead, at most one
      per kill, having run at most once.
    """
    problems = []
    starts: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    order = []
    for kind, tag, t in rec.lines():
        (starts if kind == "start" else ends).setdefault(tag, []).append(t)
        if kind == "start":
            order.append(tag)
    twice = {t: len(v) for t, v in starts.items() if len(v) > 1}
    if twice:
        problems.append(f"ran more than once: {twice}")
    first_seen = list(dict.fromkeys(order))
    if first_seen != [t for t in tags if t in starts]:
        problems.append(f"not in submission order: started {first_seen}")
    abandoned = []
    for tag, row in zip(tags, rows):
        st = row["status"]
        if st == "completed":
            if len(starts.get(tag, [])) != 1 or len(ends.get(tag, [])) != 1:
                problems.append(f"{tag} (execution {row['id']}) completed with {len(starts.get(tag, []))} "
                                f"start and {len(ends.get(tag, []))} end records")
        elif st == "abandoned" and allow_abandoned:
            abandoned.append(tag)
            if len(starts.get(tag, [])) > 1:
                problems.append(f"{tag} (execution {row['id']}) abandoned but ran {len(starts[tag])} times")
        else:
            problems.append(f"{tag} (execution {row['id']}) ended {st}: {row.get('result')}")
    if len(abandoned) > len(kill_times):
        problems.append(f"{len(abandoned)} executions abandoned ({abandoned}) for {len(kill_times)} kills")
    # one at a time: consecutive runs (in start order) do not overlap
    runs = sorted(((s[0], t) for t, s in starts.items()), key=lambda x: x[0])
    for (s0, t0), (s1, t1) in zip(runs, runs[1:]):
        e0 = ends.get(t0, [None])[0]
        if e0 is not None:
            if s1 < e0:
                problems.append(f"{t1} started at {s1:.3f} while {t0} ran ({s0:.3f}–{e0:.3f})")
        elif not any(s0 <= k <= s1 for k in kill_times):
            problems.append(f"{t0} never ended and no kill came between its start and {t1}'s")
    # an abandoned execution that ran was the one in flight at a kill
    next_start = {t0: s1 for (_, t0), (s1, _) in zip(runs, runs[1:])}
    for tag in abandoned:
        if tag in starts:
            s0, s1 = starts[tag][0], next_start.get(tag, float("inf"))
            if not any(s0 <= k <= s1 for k in kill_times):
                problems.append(f"{tag} abandoned though no kill came while it was the one running")
    return problems
