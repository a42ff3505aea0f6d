#!/usr/bin/python3
"""Tenant visibility benchmark (issue 15, "Performance"): scoped execution lists and the notifier's
per-delivery read check, against the real `attune serve`.

1. Tenant lists vs admin lists, side by side in one run. Starts `attune serve` (--attune-bin, temp data
   dir), registers --tenants identities (each granted `core.editor` by the bootstrap admin, each with its
   own pack and one inline shell action that exits 1 when its parameter says so), then creates
   --executions executions spread evenly over the tenants with POST /api/v1/executions/execute (each with
   its tenant's token; every 10th execution of a tenant fails), and the admin (`core.admin`) runs
   --admin-executions of its own pack. Once every execution is terminal it checks every tenant's and the
   admin's `pagination.total_items` (all, and status=failed) against what each of them created — the
   admin's total must not include any tenant's execution — and times, alternating the four requests
   (tenant and admin, first page and status=failed; tenants taken in turn), `GET /api/v1/executions?limit=50`
   and `GET /api/v1/executions?status=failed&limit=50`: p50/p95 and the ratio tenant/admin (target ≤ 2×).
2. Webhook -> completed latency before vs after: starts --before-bin and --after-bin side by side (own
   temp data dirs), gives each admin a pack, the inline shell action `true`, a webhook trigger and a rule,
   and sends --webhooks sequential webhooks to each, alternating the two servers request by request
   (and which goes first); the latency is the POST's send time to the arrival of the execution's
   `completed` frame on the admin's notifier WebSocket (as in foundation_bench.py). Reports p50/p90/p99
   and the ratio after/before (target ≈ 1).

Exits non-zero only on errors (server failure, rejected requests, executions not terminal in time, wrong
totals, lost notifications), never because a target is missed. Every loop is bounded in count and time.

    /usr/bin/python3 tests/bench/tenant_bench.py                     # 100 tenants, 100,000 executions
    /usr/bin/python3 tests/bench/tenant_bench.py --executions 10000  # quick run
    options: --attune-bin, --before-bin, --after-bin, --reps 300, --webhooks 300, --skip-lists, --skip-webhook

Needs /usr/bin/python3 with python3-requests, python3-websocket and python3-websockets (Debian packages).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

from attune_e2e import attune_bin, uid  # noqa: E402
from foundation_bench import BenchServer, Tracker, loadavg, log, pct, proc_cpu_s, ws_reader  # noqa: E402
from tenants import tenant  # noqa: E402

BEFORE_BIN = Path("/work/wt-before/build/api/cli/attune")
# Exits 1 when the parameters (one JSON line on stdin, API.md §11.3) ask for it; shell builtins only.
SCRIPT = 'read -r p; case "$p" in *bad*) exit 1;; esac; exit 0'
TERMINAL = ("completed", "failed", "timeout", "cancelled", "abandoned")


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------------- raw HTTP/1.1

class Http:
    """One keep-alive HTTP/1.1 connection (raw asyncio streams: a fraction of requests' client CPU)."""

    def __init__(self, api_url: str):
        u = urlsplit(api_url)
        self.host, self.port = u.hostname, u.port
        self.reader = self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _read(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        hdrs = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k:
                hdrs[k.strip().lower().decode()] = v.strip().decode()
        n = int(hdrs.get("content-length", "0"))
        body = await self.reader.readexactly(n) if n else b""
        return status, hdrs, body

    async def request(self, method: str, path: str, token: str | None = None, body=None,
                      timeout: float = 60.0):
        """-> (status, headers, body bytes). A GET is retried once on a fresh connection; a POST is not
        (the server may have acted on it): its connection error propagates."""
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: keep-alive\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(data)}\r\n\r\n"
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(head.encode() + data)
                status, hdrs, resp = await asyncio.wait_for(self._read(), timeout)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
                self.close()
                if attempt or method != "GET":
                    raise
                continue
            if hdrs.get("connection", "").lower() == "close":
                self.close()
            return status, hdrs, resp
        raise AssertionError("unreachable")

    async def get_json(self, path: str, token: str) -> dict:
        status, _, body = await self.request("GET", path, token)
        if status != 200:
            raise BenchError(f"GET {path} -> {status} {body[:300]!r}")
        return json.loads(body)


# ------------------------------------------------------------------------------------- part 1: lists

class Who:
    def __init__(self, name: str, token: str, action_ref: str, pack_ref: str):
        self.name, self.token, self.action_ref, self.pack_ref = name, token, action_ref, pack_ref
        self.accepted = 0          # 201 answers
        self.accepted_bad = 0      # of which asked to fail
        self.ambiguous = 0         # POSTs whose answer was lost (may or may not exist)


def setup_tenants(srv, admin, n: int) -> list[Who]:
    out = []
    t0 = time.monotonic()
    for i in range(n):
        t = tenant(srv, admin, "core.editor", prefix=f"tb{i:03d}")
        pack = t.create_pack(f"tb{i:03d}_{uid(6)}")
        assert pack["owner_identity"] == t.user["id"], pack
        action = t.create_action(f"{pack['ref']}.work", SCRIPT)
        out.append(Who(t.user["login"], t.token, action["ref"], pack["ref"]))
    log(f"{n} tenants (identity + core.editor + pack + action) in {time.monotonic() - t0:.1f} s")
    return out


async def total_active(http: Http, whos: list[Who]) -> int:
    n = 0
    for w in whos:
        n += (await http.get_json("/api/v1/executions/stats", w.token))["data"]["active"]
    return n


async def create_executions(args, api_url: str, tenants_: list[Who], admin: Who) -> dict:
    """Closed loop over `conns` keep-alive connections; pauses while the backlog (executions not yet
    terminal, summed over every identity's stats) exceeds --max-backlog."""
    T = len(tenants_)
    jobs = []  # (who, bad)
    admin_every = max(1, args.executions // max(1, args.admin_executions)) if args.admin_executions else 0
    a_done = 0
    for k in range(args.executions):
        jobs.append((tenants_[k % T], (k // T) % args.fail_every == 0))
        if admin_every and k % admin_every == admin_every - 1 and a_done < args.admin_executions:
            jobs.append((admin, a_done % args.fail_every == 0))
            a_done += 1
    while a_done < args.admin_executions:
        jobs.append((admin, a_done % args.fail_every == 0))
        a_done += 1
    everyone = tenants_ + [admin]
    state = {"next": 0, "errors": [], "retries_429": 0, "paused_s": 0.0, "http_ms": []}
    go = asyncio.Event()
    go.set()
    done = asyncio.Event()
    deadline = args.deadline

    async def worker():
        http = Http(api_url)
        try:
            while not done.is_set():
                if not go.is_set():
                    http.close()  # do not let an idle keep-alive connection time out under a POST
                    await go.wait()
                i = state["next"]
                if i >= len(jobs) or time.monotonic() > deadline:
                    return
                state["next"] = i + 1
                who, bad = jobs[i]
                body = {"action_ref": who.action_ref, "parameters": {"mode": "bad" if bad else "ok"}}
                for attempt in range(20):  # bounded retries of 429
                    ts = time.monotonic()
                    try:
                        status, hdrs, resp = await http.request("POST", "/api/v1/executions/execute",
                                                                who.token, body)
                    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError) as e:
                        who.ambiguous += 1
                        state["errors"].append(f"{type(e).__name__}: {e}")
                        break
                    state["http_ms"].append((time.monotonic() - ts) * 1000.0)
                    if status == 201:
                        who.accepted += 1
                        who.accepted_bad += bad
                        break
                    if status in (429, 503):
                        state["retries_429"] += 1
                        await asyncio.sleep(min(5.0, float(hdrs.get("retry-after", "1") or 1)))
                        continue
                    state["errors"].append(f"HTTP {status}: {resp[:200]!r}")
                    break
                if len(state["errors"]) > 50:
                    raise BenchError(f"too many failed POSTs: {state['errors'][:5]}")
        finally:
            http.close()

    async def monitor():
        http = Http(api_url)
        last_log = 0.0
        try:
            while not done.is_set():
                await asyncio.sleep(2.0)
                backlog = await total_active(http, everyone)
                sent = state["next"]
                if backlog > args.max_backlog and go.is_set():
                    go.clear()
                    t_pause = time.monotonic()
                elif backlog < args.max_backlog // 2 and not go.is_set():
                    go.set()
                    state["paused_s"] += time.monotonic() - t_pause
                if time.monotonic() - last_log > 15:
                    last_log = time.monotonic()
                    log(f"  submitted {sent}/{len(jobs)}, backlog {backlog} (load {loadavg()})")
                if time.monotonic() > deadline:
                    go.set()
                    return
        finally:
            http.close()

    t0 = time.monotonic()
    mon = asyncio.create_task(monitor())
    await asyncio.gather(*(worker() for _ in range(args.conns)))
    t_sent = time.monotonic()
    done.set()
    go.set()
    await mon
    if state["next"] < len(jobs):
        raise BenchError(f"time budget exhausted after {state['next']} of {len(jobs)} POSTs")
    # drain: every identity's `active` reaches 0 (bounded)
    http = Http(api_url)
    backlog = -1
    drain_deadline = min(args.deadline, time.monotonic() + args.drain_timeout)
    while time.monotonic() < drain_deadline:
        backlog = await total_active(http, everyone)
        if backlog == 0:
            break
        await asyncio.sleep(1.0)
    http.close()
    t_done = time.monotonic()
    if backlog != 0:
        raise BenchError(f"{backlog} executions still not terminal {t_done - t_sent:.0f} s after the last POST")
    return dict(jobs=len(jobs), post_s=t_sent - t0, total_s=t_done - t0, errors=state["errors"],
                retries_429=state["retries_429"], paused_s=state["paused_s"],
                http_p50=pct(state["http_ms"], 50), http_p99=pct(state["http_ms"], 99))


async def verify_totals(api_url: str, tenants_: list[Who], admin: Who) -> list[str]:
    """Every identity's totals (all, failed) equal what it created; first pages show only its own pack."""
    http = Http(api_url)
    problems = []
    for w in tenants_ + [admin]:
        lo, hi = w.accepted, w.accepted + w.ambiguous
        body = await http.get_json("/api/v1/executions?limit=50", w.token)
        tot = body["pagination"]["total_items"]
        if not lo <= tot <= hi:
            problems.append(f"{w.name}: total_items {tot}, created {lo}" + (f"..{hi}" if hi > lo else ""))
        foreign = [e["action_ref"] for e in body["items"] if not e["action_ref"].startswith(w.pack_ref + ".")]
        if foreign:
            problems.append(f"{w.name}: first page lists others' executions {foreign[:3]}")
        fb = await http.get_json("/api/v1/executions?status=failed&limit=50", w.token)
        ftot = fb["pagination"]["total_items"]
        if not w.accepted_bad <= ftot <= w.accepted_bad + w.ambiguous:
            problems.append(f"{w.name}: status=failed total_items {ftot}, created {w.accepted_bad} failing")
        if any(e["status"] != "failed" or not e["action_ref"].startswith(w.pack_ref + ".") for e in fb["items"]):
            problems.append(f"{w.name}: status=failed page lists rows not failed or not its own")
        st = (await http.get_json("/api/v1/executions/stats", w.token))["data"]
        by = st["by_status"]
        if by.get("completed", 0) + by.get("failed", 0) != st["total"] or by.get("failed", 0) != ftot:
            problems.append(f"{w.name}: stats {st} disagree (failed total {ftot})")
    http.close()
    return problems


async def measure_lists(args, api_url: str, tenants_: list[Who], admin: Who) -> dict:
    """--reps rounds; each round: tenant first page, admin first page, tenant failed, admin failed, with the
    order of tenant/admin swapped every other round; the tenant rotates over all tenants."""
    http = Http(api_url)
    paths = {"page": "/api/v1/executions?limit=50", "failed": "/api/v1/executions?status=failed&limit=50"}
    res = {(who, q): [] for who in ("tenant", "admin") for q in paths}
    totals = {(who, q): set() for who in ("tenant", "admin") for q in paths}
    items = {(who, q): set() for who in ("tenant", "admin") for q in paths}
    for w in range(20):  # warm-up (not timed)
        for q, p in paths.items():
            await http.get_json(p, tenants_[w % len(tenants_)].token)
            await http.get_json(p, admin.token)
    t_end = min(args.deadline, time.monotonic() + args.measure_timeout)
    for i in range(args.reps):
        if time.monotonic() > t_end:
            log(f"measurement time bound reached after {i} rounds")
            break
        t = tenants_[i % len(tenants_)]
        order = [("tenant", t), ("admin", admin)]
        if i % 2:
            order.reverse()
        for q, p in paths.items():
            for who, w in order:
                ts = time.perf_counter()
                status, _, body = await http.request("GET", p, w.token)
                ms = (time.perf_counter() - ts) * 1000.0
                if status != 200:
                    raise BenchError(f"GET {p} as {w.name} -> {status} {body[:200]!r}")
                res[(who, q)].append(ms)
                doc = json.loads(body)
                items[(who, q)].add(len(doc["items"]))
                exp = w.accepted_bad if q == "failed" else w.accepted
                if not exp <= doc["pagination"]["total_items"] <= exp + w.ambiguous:
                    raise BenchError(f"{w.name} {p}: total_items {doc['pagination']['total_items']} != {exp}")
                totals[(who, q)].add(doc["pagination"]["total_items"])
    http.close()
    return dict(lat=res, totals=totals, items=items)


def part_lists(args) -> tuple[dict, int]:
    tmp = Path(tempfile.mkdtemp(prefix="attune-tenant-bench-"))
    srv = BenchServer(args.attune_bin, tmp / "data", tmp / "attune.log", serve_args=args.serve_arg)
    rc = 0
    out = {}
    try:
        srv.start(timeout=60)
        pid = srv.proc.pid
        log(f"lists: attune serve pid {pid} ({args.attune_bin}): {srv.api_url}")
        admin_c = srv.admin_client()
        apack = admin_c.create_pack(f"tbadmin_{uid(6)}")
        aact = admin_c.create_action(f"{apack['ref']}.work", SCRIPT)
        admin = Who("admin", admin_c.token, aact["ref"], apack["ref"])
        tenants_ = setup_tenants(srv, admin_c, args.tenants)
        cpu0 = proc_cpu_s(pid, children=True)
        log(f"creating {args.executions} tenant + {args.admin_executions} admin executions over "
            f"{args.conns} connections (load {loadavg()})")
        out["create"] = asyncio.run(create_executions(args, srv.api_url, tenants_, admin))
        out["create"]["cpu_s"] = proc_cpu_s(pid, children=True) - cpu0
        c = out["create"]
        log(f"created {c['jobs']} executions: POSTs took {c['post_s']:.0f} s, all terminal after "
            f"{c['total_s']:.0f} s ({c['jobs'] / c['total_s']:.0f}/s), {len(c['errors'])} errors, "
            f"{c['retries_429']} 429/503 retries, paused {c['paused_s']:.0f} s for the backlog")
        if c["errors"]:
            log(f"POST errors: {c['errors'][:5]}")
            rc = 1
        problems = asyncio.run(verify_totals(srv.api_url, tenants_, admin))
        out["problems"] = problems
        if problems:
            for p in problems[:20]:
                print(f"error: {p}", file=sys.stderr)
            rc = 1
        else:
            log(f"totals verified for {len(tenants_)} tenants and the admin")
        log(f"measuring lists: {args.reps} rounds (load {loadavg()})")
        out["lists"] = asyncio.run(measure_lists(args, srv.api_url, tenants_, admin))
        out["load"] = loadavg()
        out["tenants"] = len(tenants_)
        out["per_tenant"] = sorted({w.accepted for w in tenants_})
        out["admin_accepted"] = admin.accepted
        if not srv.running():
            raise BenchError("attune serve died during the run")
    except (BenchError, AssertionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
        state = "running" if srv.running() else f"exited with code {srv.proc.returncode if srv.proc else '?'}"
        print(f"error: {e} (attune serve {state})\n{srv.log_tail(40)}", file=sys.stderr)
        rc = 1
    finally:
        code = srv.stop(grace=30)
        if code != 0 and rc == 0:
            print(f"error: attune serve exited with code {code}\n{srv.log_tail(40)}", file=sys.stderr)
            rc = 1
        if args.keep or rc != 0:
            print(f"server log kept: {srv.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out, rc


# ------------------------------------------------------------------------------------- part 2: webhook

async def webhook_latency(args, servers: dict) -> dict:
    """servers: label -> (Server, admin client, flow). Sequential webhooks, alternating the servers."""
    side = {}
    stop = asyncio.Event()
    tasks = []
    for label, (srv, client, flow) in servers.items():
        tr = Tracker()
        ready = asyncio.Event()
        task = asyncio.create_task(ws_reader(srv.ws_url, client.token, tr, ready, stop))
        await asyncio.wait_for(ready.wait(), 10)
        tasks.append(task)
        side[label] = dict(tr=tr, http=Http(srv.api_url), key=flow.key, lat=[], missing=0, http_ms=[],
                           hops=[], task=task)

    async def one(label: str, tag: str) -> float | None:
        s = side[label]
        tr = s["tr"]
        body = {"payload": {"bench": tag}}
        ts = time.monotonic()
        status, _, resp = await s["http"].request("POST", f"/api/v1/webhooks/{s['key']}", None, body)
        s["http_ms"].append((time.monotonic() - ts) * 1000.0)
        if status != 200:
            raise BenchError(f"{label}: webhook -> {status} {resp[:200]!r}")
        ev = json.loads(resp)["data"]["event_id"]
        tr.sent[ev] = ts
        limit = time.monotonic() + args.webhook_timeout
        while time.monotonic() < limit:
            enf = tr.enf_of_event.get(ev)
            if enf is not None:
                if enf in tr.done_of_enf:
                    marks = [ts, tr.t_enf.get(enf), tr.t_status.get((enf, "scheduled")),
                             tr.t_status.get((enf, "running")), tr.done_of_enf[enf]]
                    if None not in marks and tag == "measure":
                        s["hops"].append([(b - a) * 1000.0 for a, b in zip(marks, marks[1:])])
                    return (tr.done_of_enf[enf] - ts) * 1000.0
                if enf in tr.failed:
                    raise BenchError(f"{label}: execution of enforcement {enf} ended {tr.failed[enf]}")
            if s["task"].done():
                raise BenchError(f"{label}: notifier WebSocket closed: {s['task'].exception()!r}")
            await asyncio.sleep(0.0005)
        s["missing"] += 1
        return None

    labels = list(servers)
    for i in range(args.webhook_warmup):
        for label in labels:
            await one(label, "warmup")
    t_end = min(args.deadline, time.monotonic() + args.measure_timeout)
    for i in range(args.webhooks):
        if time.monotonic() > t_end:
            log(f"webhook time bound reached after {i} rounds")
            break
        order = labels if i % 2 == 0 else labels[::-1]
        for label in order:
            lat = await one(label, "measure")
            if lat is not None:
                side[label]["lat"].append(lat)
        if side[labels[0]]["missing"] + side[labels[-1]]["missing"] > 5:
            raise BenchError("more than 5 webhooks never reached completed within "
                             f"{args.webhook_timeout} s")
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in side.values():
        s["http"].close()
    return {label: dict(lat=s["lat"], missing=s["missing"], http_ms=s["http_ms"], frames=s["tr"].frames,
                        hops=s["hops"])
            for label, s in side.items()}


def part_webhook(args) -> tuple[dict, int]:
    rc = 0
    tmp = Path(tempfile.mkdtemp(prefix="attune-tenant-bench-wh-"))
    srvs = {}
    out = {}
    try:
        for label, b in (("before", args.before_bin), ("after", args.after_bin)):
            if not b.exists():
                raise BenchError(f"{label} binary not found: {b}")
            srv = BenchServer(b, tmp / label / "data", tmp / f"{label}.log", serve_args=args.serve_arg)
            (tmp / label).mkdir(parents=True, exist_ok=True)
            srvs[label] = srv
            srv.start(timeout=60)
            log(f"webhook: {label} attune serve pid {srv.proc.pid} ({b}): {srv.api_url}")
        servers = {}
        for label, srv in srvs.items():
            client = srv.admin_client()
            servers[label] = (srv, client, client.webhook_flow("true", prefix="tbwh"))
        log(f"webhook: {args.webhooks} sequential rounds, alternating (load {loadavg()})")
        out = asyncio.run(webhook_latency(args, servers))
        out["load"] = loadavg()
        for label, srv in srvs.items():
            if not srv.running():
                raise BenchError(f"{label} attune serve died during the run")
            if out[label]["missing"]:
                print(f"error: {label}: {out[label]['missing']} webhooks never seen completed", file=sys.stderr)
                rc = 1
    except (BenchError, AssertionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
        print(f"error: {e}", file=sys.stderr)
        for label, srv in srvs.items():
            print(f"{label}: {'running' if srv.running() else 'not running'}\n{srv.log_tail(20)}", file=sys.stderr)
        rc = 1
    finally:
        for label, srv in srvs.items():
            code = srv.stop(grace=20)
            if code != 0 and rc == 0:
                print(f"error: {label} attune serve exited with code {code}\n{srv.log_tail(40)}", file=sys.stderr)
                rc = 1
        if args.keep or rc != 0:
            print(f"server logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out, rc


# ------------------------------------------------------------------------------------- report

def commit_of(binary: Path) -> str:
    """The checkout a build/api/cli/attune binary belongs to, as `<path>@<short commit>`."""
    root = binary.resolve().parents[3] if len(binary.resolve().parents) > 3 else binary.parent
    try:
        c = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        c = ""
    return f"{root}@{c or '?'}"


def report(args, lists: dict, wh: dict, load0: str) -> None:
    print()
    print("=" * 100)
    print(f"Tenant visibility benchmark — {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), load average at start {load0}, at end {loadavg()}")
    print("=" * 100)
    rows = []
    if lists.get("lists"):
        L = lists["lists"]
        c = lists["create"]
        print(f"1. Lists: attune {commit_of(args.attune_bin)}; {lists['tenants']} tenants x "
              f"{lists['per_tenant']} executions + admin {lists['admin_accepted']} "
              f"(every {args.fail_every}th failed)")
        print(f"   created {c['jobs']} executions in {c['total_s']:.0f} s ({c['jobs'] / c['total_s']:.0f}/s; "
              f"POST p50 {c['http_p50']:.1f} ms, p99 {c['http_p99']:.1f} ms; {c['retries_429']} 429/503 "
              f"retries; {c['paused_s']:.0f} s paused for backlog > {args.max_backlog}; "
              f"attune + actions CPU {c['cpu_s']:.0f} s)")
        print(f"   totals verified for every tenant and the admin: {'yes' if not lists['problems'] else 'NO'}")
        print(f"   {len(L['lat'][('tenant', 'page')])} rounds, load at end {lists['load']}")
        print("   query                                  who      p50 ms   p95 ms   total_items   items/page")
        for q, name in (("page", "GET /executions?limit=50"), ("failed", "GET /executions?status=failed&limit=50")):
            for who in ("tenant", "admin"):
                v = L["lat"][(who, q)]
                tots = sorted(L["totals"][(who, q)])
                print(f"   {name:38s} {who:7s} {pct(v, 50):8.2f} {pct(v, 95):8.2f}   "
                      f"{tots[0] if len(tots) == 1 else tots}   {sorted(L['items'][(who, q)])}")
            t, a = L["lat"][("tenant", q)], L["lat"][("admin", q)]
            r50, r95 = pct(t, 50) / pct(a, 50), pct(t, 95) / pct(a, 95)
            print(f"   {'':38s} ratio tenant/admin p50 {r50:.2f}x  p95 {r95:.2f}x")
            rows.append((f"tenant/admin `{name}` p50 (p95)", "<= 2x", f"{r50:.2f}x ({r95:.2f}x)", r50 <= 2.0))
    if wh.get("before") and wh.get("after"):
        print(f"2. Webhook -> completed (sequential, alternating): before {commit_of(args.before_bin)}, "
              f"after {commit_of(args.after_bin)}; load at end {wh['load']}")
        for label in ("before", "after"):
            v = wh[label]["lat"]
            print(f"   {label:7s} n={len(v):4d}  p50 {pct(v, 50):7.2f} ms  p90 {pct(v, 90):7.2f} ms  "
                  f"p99 {pct(v, 99):7.2f} ms  mean {sum(v) / max(1, len(v)):7.2f} ms  "
                  f"(webhook HTTP p50 {pct(wh[label]['http_ms'], 50):.2f} ms; {wh[label]['missing']} missing)")
        b, a = wh["before"]["lat"], wh["after"]["lat"]
        r50, r99 = pct(a, 50) / pct(b, 50), pct(a, 99) / pct(b, 99)
        print(f"   ratio after/before: p50 {r50:.2f}x ({pct(a, 50) - pct(b, 50):+.2f} ms)  p99 {r99:.2f}x")
        print("   hop p50 (ms, client-side frame arrival)  before    after")
        names = ("POST -> enforcement_created", "enforcement_created -> scheduled", "scheduled -> running",
                 "running -> completed")
        for k, name in enumerate(names):
            hb = [h[k] for h in wh["before"]["hops"]]
            ha = [h[k] for h in wh["after"]["hops"]]
            print(f"   {name:38s} {pct(hb, 50):6.2f}   {pct(ha, 50):6.2f}")
        rows.append(("webhook -> completed after/before p50 (p99)", "≈ 1 (not slower)",
                     f"{r50:.2f}x ({r99:.2f}x)", r50 <= 1.05))
    print()
    print("| metric | target | measured | |")
    print("|---|---|---|---|")
    for name, target, measured, ok in rows:
        print(f"| {name} | {target} | {measured} | {'met' if ok else 'NOT met'} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attune-bin", type=Path, default=attune_bin(), help="build under test (part 1)")
    ap.add_argument("--before-bin", type=Path, default=BEFORE_BIN)
    ap.add_argument("--after-bin", type=Path, default=None, help="default: --attune-bin")
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--executions", type=int, default=100_000, help="tenants' executions in all")
    ap.add_argument("--admin-executions", type=int, default=None, help="default: executions / tenants")
    ap.add_argument("--fail-every", type=int, default=10, help="every n-th execution of each identity fails")
    ap.add_argument("--conns", type=int, default=16, help="keep-alive connections creating executions")
    ap.add_argument("--max-backlog", type=int, default=4000, help="pause POSTs above this many active")
    ap.add_argument("--drain-timeout", type=float, default=900.0)
    ap.add_argument("--reps", type=int, default=300, help="rounds of the four list requests")
    ap.add_argument("--webhooks", type=int, default=300, help="sequential webhooks per binary")
    ap.add_argument("--webhook-warmup", type=int, default=20)
    ap.add_argument("--webhook-timeout", type=float, default=10.0)
    ap.add_argument("--measure-timeout", type=float, default=600.0, help="bound of each timed loop, s")
    ap.add_argument("--time-budget", type=float, default=3600.0, help="overall bound in seconds")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra `attune serve` argument")
    ap.add_argument("--skip-lists", action="store_true")
    ap.add_argument("--skip-webhook", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (server logs)")
    args = ap.parse_args()
    args.after_bin = args.after_bin or args.attune_bin
    if args.admin_executions is None:
        args.admin_executions = args.executions // max(1, args.tenants)
    args.deadline = time.monotonic() + args.time_budget
    if not args.skip_lists and not args.attune_bin.exists():
        print(f"attune binary not found: {args.attune_bin}", file=sys.stderr)
        return 2
    load0 = loadavg()
    log(f"load average {load0}")
    rc = 0
    lists, wh = {}, {}
    if not args.skip_lists:
        lists, r = part_lists(args)
        rc |= r
    if not args.skip_webhook:
        wh, r = part_webhook(args)
        rc |= r
    report(args, lists, wh, load0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
