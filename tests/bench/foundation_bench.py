#!/usr/bin/python3
"""Foundation benchmark (issue 2, "Performance"): webhook -> rule -> inline shell `true` -> completed.

Starts its own `attune serve` (temp data dir, ephemeral ports, via tests/e2e/attune_e2e.py) and measures,
side by side in one run:

  1. latency from webhook POST to execution `completed` at a light rate (client-side over the notifier
     WebSocket; server-side from row timestamps: event `created` -> execution `updated`);
  2. the highest sustained rate of completed executions/s (open-loop paced webhook senders on keep-alive
     connections, rising steps until completions fall behind the offered rate);
  3. VmRSS of the attune process after 100,000 executions;
  4. raw posix_spawn+wait of /bin/true (bench_spawn, 1 and 2 threads) and our rate as a ratio of it.

Prints a results table. Exits non-zero only on errors (server failure, lost executions, missing tools), never
because a target is missed. Every loop is bounded in count and time.

    /usr/bin/python3 tests/bench/foundation_bench.py [--quick] [--bulk-total 100000] [--spawn-bin PATH]

Needs /usr/bin/python3 with python3-requests and python3-websockets (Debian packages).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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

from attune_e2e import Server, attune_bin, parse_ts  # noqa: E402

import websockets  # noqa: E402  (python3-websockets, asyncio API)

TARGETS = {"p50_ms": 5.0, "p99_ms": 25.0, "rate": 500.0, "rss_mb": 300.0}
EVENT_ID_RE = re.compile(rb'"event_id"\s*:\s*(\d+)')


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu_s(pid: int, children: bool = False) -> float:
    """CPU seconds of the process (all threads); with children=True also its reaped children (actions)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime + cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class BenchServer(Server):
    """The e2e harness's server plus extra `attune serve` flags (e.g. --http-threads 8)."""

    def __init__(self, *a, serve_args=(), **kw):
        super().__init__(*a, **kw)
        self.serve_args = list(serve_args)

    def command(self) -> list[str]:
        return super().command() + self.serve_args


def ctx_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over every thread of `pid`."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            pass  # thread ended
    return total


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ------------------------------------------------------------------------------------- tracker

class Tracker:
    """Joins webhook sends (event_id, t_send) with notifier frames (event -> enforcement -> completed)."""

    def __init__(self):
        self.sent: dict[int, float] = {}            # event_id -> monotonic send time
        self.enf_of_event: dict[int, int] = {}      # event_id -> enforcement id
        self.done_of_enf: dict[int, float] = {}     # enforcement id -> monotonic time of `completed`
        self.exec_of_enf: dict[int, int] = {}
        self.completions: list[float] = []          # monotonic times of every `completed` frame
        self.failed: dict[int, str] = {}            # enforcement -> terminal status other than completed
        self.t_enf: dict[int, float] = {}           # enforcement -> time of enforcement_created
        self.t_status: dict[tuple[int, str], float] = {}  # (enforcement, status) -> time seen
        self.frames = 0
        self.http_errors: list[str] = []

    def completed_between(self, a: float, b: float) -> int:
        return sum(1 for t in self.completions if a <= t < b)

    def latencies_ms(self, event_ids) -> tuple[list[float], int]:
        lat, missing = [], 0
        for ev in event_ids:
            enf = self.enf_of_event.get(ev)
            t = self.done_of_enf.get(enf) if enf is not None else None
            if t is None:
                missing += 1
            else:
                lat.append((t - self.sent[ev]) * 1000.0)
        return lat, missing

    def outstanding(self, event_ids) -> int:
        return sum(1 for ev in event_ids
                   if self.done_of_enf.get(self.enf_of_event.get(ev, -1)) is None
                   and self.enf_of_event.get(ev, -1) not in self.failed)


async def ws_reader(ws_url: str, token: str, tr: Tracker, ready: asyncio.Event, stop: asyncio.Event):
    async with websockets.connect(ws_url + "/ws", extra_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None, max_queue=None, ping_interval=None,
                                  compression=None) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "subscribe", "filter": "entity_type:execution"}))
        await ws.send(json.dumps({"type": "subscribe", "filter": "entity_type:enforcement"}))
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            t = time.monotonic()
            tr.frames += 1
            if "enforcement_created" in raw:
                m = json.loads(raw)
                if m.get("notification_type") == "enforcement_created":
                    p = m["payload"]
                    tr.enf_of_event[p["event"]] = p["id"]
                    tr.t_enf[p["id"]] = t
            elif "execution_status_changed" in raw:
                m = json.loads(raw)
                p = m["payload"]
                st = p.get("status")
                if st in ("scheduled", "running"):
                    tr.t_status[(p["enforcement"], st)] = t
                if st == "completed":
                    tr.done_of_enf[p["enforcement"]] = t
                    tr.exec_of_enf[p["enforcement"]] = p["id"]
                    tr.completions.append(t)
                elif st in ("failed", "timeout", "cancelled", "abandoned"):
                    tr.failed[p["enforcement"]] = st


# ------------------------------------------------------------------------------------- HTTP driver

class Driver:
    """Open-loop paced webhook POSTs over `conns` keep-alive HTTP/1.1 connections (raw asyncio streams)."""

    def __init__(self, api_url: str, tr: Tracker, conns: int):
        u = urlsplit(api_url)
        self.host, self.port = u.hostname, u.port
        self.tr = tr
        self.conns = conns

    def request_bytes(self, key: str, body: bytes) -> bytes:
        return (f"POST /api/v1/webhooks/{key} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Connection: keep-alive\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def _one(self, reader, writer, req: bytes):
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v.strip())
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        body = await reader.readexactly(length) if length else b""
        return status, body, close

    async def run(self, key: str, rate: float, duration: float, tag: str) -> dict:
        """Send round(rate*duration) webhooks, the i-th at t0 + i/rate. Returns send statistics."""
        n = max(1, int(round(rate * duration)))
        req = self.request_bytes(key, json.dumps({"payload": {"bench": tag, "n": 1}}).encode())
        loop = asyncio.get_running_loop()
        t0 = time.monotonic() + 0.05
        state = {"next": 0, "max_lag": 0.0, "events": [], "errors": 0, "http_ms": []}

        async def worker():
            reader = writer = None
            try:
                while True:
                    i = state["next"]
                    if i >= n:
                        return
                    state["next"] = i + 1
                    target = t0 + i / rate
                    delay = target - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if writer is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                    ts = time.monotonic()
                    state["max_lag"] = max(state["max_lag"], ts - target)
                    try:
                        status, body, close = await asyncio.wait_for(self._one(reader, writer, req), 30)
                    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError) as e:
                        state["errors"] += 1
                        self.tr.http_errors.append(f"{type(e).__name__}: {e}")
                        writer.close()
                        reader = writer = None
                        continue
                    state["http_ms"].append((time.monotonic() - ts) * 1000.0)
                    m = EVENT_ID_RE.search(body)
                    if status != 200 or not m:
                        state["errors"] += 1
                        self.tr.http_errors.append(f"HTTP {status}: {body[:200]!r}")
                    else:
                        ev = int(m.group(1))
                        self.tr.sent[ev] = ts
                        state["events"].append(ev)
                    if close:
                        writer.close()
                        reader = writer = None
            finally:
                if writer is not None:
                    writer.close()

        await asyncio.gather(*(worker() for _ in range(self.conns)))
        t_end = time.monotonic()
        del loop
        state.update(t0=t0, t_end=t_end, n=n, sent_rate=len(state["events"]) / max(1e-9, t_end - t0))
        return state


async def wait_drain(tr: Tracker, events, timeout: float) -> float:
    """Wait (bounded) until every event in `events` has a terminal execution; returns seconds waited."""
    t = time.monotonic()
    while tr.outstanding(events) > 0 and time.monotonic() - t < timeout:
        await asyncio.sleep(0.1)
    return time.monotonic() - t


# ------------------------------------------------------------------------------------- phases

def run_spawn_bench(spawn_bin: Path, seconds: float) -> dict:
    if not spawn_bin.exists():
        raise BenchError(f"{spawn_bin} not found; build it: cmake -S {REPO} -B {REPO}/build-bench -G Ninja "
                         f"&& ninja -C {REPO}/build-bench bench_spawn (or pass --spawn-bin)")
    res = {}
    for label, argv in (("true", []), ("sh", ["/bin/sh", "-c", "true"])):
        out = subprocess.run([str(spawn_bin), str(seconds), *argv], capture_output=True, text=True,
                             timeout=seconds * 4 + 30)
        if out.returncode != 0:
            raise BenchError(f"bench_spawn failed ({out.returncode}): {out.stderr}")
        for line in out.stdout.splitlines():
            m = re.search(r"threads=(\d+) .*spawns_per_s=([\d.]+) mean_us=([\d.]+)", line)
            if m:
                res[(label, int(m.group(1)))] = (float(m.group(2)), float(m.group(3)))
        log(out.stdout.strip())
    return res


def server_side_latency(client, rule_ref: str, trigger_ref: str, enf_event: dict[int, int],
                        only_events: set) -> list[float]:
    """event.created -> execution.updated (ms, 1 ms resolution) for completed executions of the rule."""
    def all_items(path, **params):
        items, page = [], 1
        while page <= 200:  # bounded: 20,000 rows
            body = client.list(path, page=page, page_size=100, **params)
            items += body["items"]
            if not body["pagination"]["has_next"]:
                break
            page += 1
        return items

    events = {e["id"]: parse_ts(e["created"]) for e in all_items("/api/v1/events", trigger_ref=trigger_ref)}
    execs = all_items("/api/v1/executions", rule_ref=rule_ref, status="completed")
    out = []
    for ex in execs:
        ev = enf_event.get(ex["enforcement"])
        if ev in events and ev in only_events:
            out.append((parse_ts(ex["updated"]) - events[ev]).total_seconds() * 1000.0)
    return out


async def bench(args, srv: Server, spawn: dict) -> dict:
    client = srv.admin_client()
    pid = srv.proc.pid
    tr = Tracker()
    stop = asyncio.Event()
    ready = asyncio.Event()
    ws_task = asyncio.create_task(ws_reader(srv.ws_url, client.token, tr, ready, stop))
    await asyncio.wait_for(ready.wait(), 10)
    drv = Driver(srv.api_url, tr, args.conns)
    res = {"rss": [], "steps": []}

    def snap(label):
        st = proc_status(pid)
        res["rss"].append((label, len(tr.completions), st["VmRSS"] / 1024.0, st["VmHWM"] / 1024.0,
                           proc_cpu_s(pid), proc_cpu_s(pid, children=True)))
        log(f"RSS {label}: {st['VmRSS'] / 1024:.1f} MiB after {len(tr.completions)} completions")

    def check_ws():
        if ws_task.done():
            raise BenchError(f"notifier WebSocket closed: {ws_task.exception()!r}")

    snap("after start")
    light = client.webhook_flow("true", prefix="bench")
    bulk = client.webhook_flow("true", pack_ref=light.pack_ref)

    # --- warm-up, then the light-rate latency run ------------------------------------------------
    w = await drv.run(light.key, 50, args.warmup, "warmup")
    await wait_drain(tr, w["events"], 30)
    check_ws()
    cpu0 = proc_cpu_s(pid)
    log(f"light: {args.light_rate}/s for {args.light_seconds}s (load {loadavg()})")
    lt = await drv.run(light.key, args.light_rate, args.light_seconds, "light")
    waited = await wait_drain(tr, lt["events"], 30)
    check_ws()
    lat, missing = tr.latencies_ms(lt["events"])
    res["light"] = dict(rate=args.light_rate, sent=len(lt["events"]), errors=lt["errors"], missing=missing,
                        lat=lat, http_ms=lt["http_ms"], drain_s=waited, load=loadavg(),
                        cpu_ms_per_exec=1000.0 * (proc_cpu_s(pid) - cpu0) / max(1, len(lt["events"])))
    hops = {"POST -> enforcement_created": [], "enforcement_created -> scheduled": [],
            "scheduled -> running": [], "running -> completed": []}
    for ev in lt["events"]:
        enf = tr.enf_of_event.get(ev)
        ts = [tr.sent.get(ev), tr.t_enf.get(enf), tr.t_status.get((enf, "scheduled")),
              tr.t_status.get((enf, "running")), tr.done_of_enf.get(enf)]
        if None not in ts:
            for (name, vals), a, b in zip(hops.items(), ts, ts[1:]):
                vals.append((b - a) * 1000.0)
    res["light"]["hops"] = hops
    enf_event = {enf: ev for ev, enf in tr.enf_of_event.items()}
    res["light"]["server"] = server_side_latency(client, light.rule_ref, light.trigger_ref, enf_event,
                                                   set(lt["events"]))
    snap("after light")

    # --- rising open-loop steps: find the knee ----------------------------------------------------
    best = None
    for rate in args.rates:
        if time.monotonic() > args.deadline:
            log("time budget reached; stopping the rate steps")
            break
        cpu0, cs0, me0 = proc_cpu_s(pid), ctx_switches(pid), time.process_time()
        log(f"step: offered {rate}/s for {args.step_seconds}s (load {loadavg()})")
        st = await drv.run(bulk.key, rate, args.step_seconds, f"step{rate}")
        cpu1, cs1, me1 = proc_cpu_s(pid), ctx_switches(pid), time.process_time()
        a, b = st["t0"] + args.step_warm, st["t_end"]
        done = tr.completed_between(a, b)
        comp_rate = done / (b - a)
        drain = await wait_drain(tr, st["events"], args.drain_timeout)
        check_ws()
        lat, missing = tr.latencies_ms(st["events"])
        step = dict(offered=rate, sent_rate=st["sent_rate"], completed_rate=comp_rate, drain_s=drain,
                    p50=pct(lat, 50), p99=pct(lat, 99), missing=missing, errors=st["errors"],
                    max_lag_ms=st["max_lag"] * 1000.0, load=loadavg(),
                    cpu_pct=100.0 * (cpu1 - cpu0) / (st["t_end"] - st["t0"]),
                    driver_cpu_pct=100.0 * (me1 - me0) / (st["t_end"] - st["t0"]),
                    cs_per_exec=(cs1 - cs0) / max(1, len(st["events"])),
                    http_p50=pct(st["http_ms"], 50), http_p99=pct(st["http_ms"], 99))
        step["sustained"] = (comp_rate >= 0.95 * rate and st["sent_rate"] >= 0.95 * rate
                             and drain < 2.0 and missing == 0)
        res["steps"].append(step)
        log("  sent %.0f/s, completed %.0f/s in [t0+%gs, end), drain %.1fs, p50 %.1f ms, p99 %.1f ms, "
            "attune CPU %.0f%%, %s" % (st["sent_rate"], comp_rate, args.step_warm, drain, step["p50"],
                                       step["p99"], step["cpu_pct"], "sustained" if step["sustained"] else
                                       "NOT sustained"))
        if step["sustained"]:
            best = step
        else:
            break
    res["knee"] = best
    snap("after steps")

    # --- bulk: reach the requested total of executions, then read VmRSS ---------------------------
    bulk_rate = max(50.0, (best["offered"] if best else 100.0))
    remaining = args.bulk_total - len(tr.completions)
    t_bulk = time.monotonic()
    while remaining > 0 and time.monotonic() < args.deadline:
        chunk_s = min(30.0, remaining / bulk_rate + 0.5)
        log(f"bulk: {remaining} executions to go at {bulk_rate:.0f}/s (load {loadavg()})")
        st = await drv.run(bulk.key, bulk_rate, chunk_s, "bulk")
        check_ws()
        if st["errors"] > max(10, 0.01 * st["n"]):
            raise BenchError(f"{st['errors']} webhook errors in bulk: {tr.http_errors[-3:]}")
        await wait_drain(tr, st["events"], 0.0)
        remaining = args.bulk_total - len(tr.completions)
        if len(st["events"]) > 0 and tr.outstanding(st["events"]) > 5 * bulk_rate:
            await wait_drain(tr, st["events"], args.drain_timeout)  # keep the backlog bounded
    all_events = list(tr.sent)
    await wait_drain(tr, all_events, args.drain_timeout)
    res["bulk_seconds"] = time.monotonic() - t_bulk
    res["bulk_rate"] = bulk_rate
    await asyncio.sleep(2.0)
    snap("after bulk")
    res["total_sent"] = len(tr.sent)
    res["total_completed"] = len(tr.completions)
    res["outstanding"] = tr.outstanding(all_events)
    res["failed"] = len(tr.failed)
    res["http_errors"] = tr.http_errors[:5]
    res["frames"] = tr.frames
    stats = client.get_data("/api/v1/executions/stats")
    res["server_stats"] = stats
    stop.set()
    await ws_task
    return res


# ------------------------------------------------------------------------------------- report

def report(args, res: dict, spawn: dict) -> None:
    L = res["light"]
    lat, srv_lat = L["lat"], L["server"]
    knee = res["knee"]
    rss_mb = res["rss"][-1][2]
    sat = max((s["completed_rate"] for s in res["steps"]), default=0.0)
    rate = knee["completed_rate"] if knee else 0.0
    sp1, sp2 = spawn[("true", 1)][0], spawn[("true", 2)][0]
    sh1, sh2 = spawn[("sh", 1)][0], spawn[("sh", 2)][0]

    def ok(b):
        return "met" if b else "NOT met"

    print()
    print("=" * 100)
    print(f"Foundation benchmark — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load average at end {loadavg()}")
    print(f"attune: {srv_bin(args)} serve {' '.join(args.serve_arg)}; sender: {args.conns} keep-alive "
          f"connections")
    print("=" * 100)
    print(f"1. Latency webhook POST -> `completed`, {L['rate']}/s for {args.light_seconds}s "
          f"({L['sent']} webhooks, {L['missing']} not seen completed, {L['errors']} HTTP errors)")
    print(f"   client (WebSocket):  p50 {pct(lat, 50):7.2f} ms  p90 {pct(lat, 90):7.2f} ms  "
          f"p99 {pct(lat, 99):7.2f} ms  max {max(lat) if lat else float('nan'):7.2f} ms")
    print(f"   server (rows, 1 ms): p50 {pct(srv_lat, 50):7.2f} ms  p90 {pct(srv_lat, 90):7.2f} ms  "
          f"p99 {pct(srv_lat, 99):7.2f} ms  max {max(srv_lat) if srv_lat else float('nan'):7.2f} ms  "
          f"(n={len(srv_lat)})")
    print(f"   webhook HTTP response: p50 {pct(L['http_ms'], 50):.2f} ms  p99 {pct(L['http_ms'], 99):.2f} ms;"
          f" attune CPU {L['cpu_ms_per_exec']:.2f} ms per execution")
    for name, vals in L["hops"].items():
        print(f"   hop {name:34s} p50 {pct(vals, 50):6.2f} ms  p99 {pct(vals, 99):6.2f} ms  (n={len(vals)})")
    print("2. Open-loop steps (completions counted over [t0+%gs, end of sending))" % args.step_warm)
    print("   offered/s  sent/s  completed/s  drain_s  p50_ms   p99_ms  http_p50/p99_ms  attune_CPU  "
          "driver_CPU  ctxsw/exec  load            result")
    for s in res["steps"]:
        print(f"   {s['offered']:9.0f} {s['sent_rate']:7.0f} {s['completed_rate']:12.0f} {s['drain_s']:8.1f} "
              f"{s['p50']:7.1f} {s['p99']:8.1f} {s['http_p50']:8.1f}/{s['http_p99']:<7.1f} {s['cpu_pct']:9.0f}% "
              f"{s['driver_cpu_pct']:10.0f}% {s['cs_per_exec']:10.1f}  {s['load']:15s} "
              f"{'sustained' if s['sustained'] else 'NOT sustained'}")
    print(f"   highest sustained: {rate:.0f} completed executions/s (best window seen: {sat:.0f}/s)")
    print("3. Memory (attune VmRSS)")
    for label, n, rss, hwm, cpu, cpu_all in res["rss"]:
        print(f"   {label:12s} {n:7d} completions  VmRSS {rss:7.1f} MiB  VmHWM {hwm:7.1f} MiB  "
              f"CPU {cpu:6.1f} s (+ actions {cpu_all - cpu:5.1f} s)")
    (_, n0, _, _, c0, a0), (_, n1, _, _, c1, a1) = res["rss"][0], res["rss"][-1]
    per = 1000.0 * (c1 - c0) / max(1, n1 - n0)
    per_all = 1000.0 * (a1 - a0) / max(1, n1 - n0)
    print(f"   CPU per completed execution over the run: attune {per:.2f} ms, attune + action processes "
          f"{per_all:.2f} ms => at most {os.cpu_count() * 1000.0 / per_all:.0f} executions/s on "
          f"{os.cpu_count()} idle cores")
    print(f"   executions in the run: {res['total_completed']} completed ({res['failed']} other terminal), "
          f"server stats total {res['server_stats'].get('total')}")
    print("4. Raw spawn ceiling (bench_spawn, same run)")
    print(f"   posix_spawn+wait /bin/true:       1 thread {sp1:7.0f}/s   2 threads {sp2:7.0f}/s")
    print(f"   posix_spawn+wait /bin/sh -c true: 1 thread {sh1:7.0f}/s   2 threads {sh2:7.0f}/s")
    print(f"   our sustained rate as ratio: {rate / sp1:.2f} of 1-thread /bin/true, {rate / sp2:.2f} of 2-thread")
    print()
    print("| metric | target | measured | |")
    print("|---|---|---|---|")
    print(f"| p50 webhook -> completed (client) | <= 5 ms | {pct(lat, 50):.2f} ms | "
          f"{ok(pct(lat, 50) <= TARGETS['p50_ms'])} |")
    print(f"| p99 webhook -> completed (client) | <= 25 ms | {pct(lat, 99):.2f} ms | "
          f"{ok(pct(lat, 99) <= TARGETS['p99_ms'])} |")
    print(f"| p50 / p99 server-side (event created -> execution updated) | — | "
          f"{pct(srv_lat, 50):.0f} / {pct(srv_lat, 99):.0f} ms | |")
    print(f"| sustained completed executions/s | >= 500 | {rate:.0f}/s | {ok(rate >= TARGETS['rate'])} |")
    n_rss = res["rss"][-1][1]
    print(f"| VmRSS after {n_rss} executions | <= 300 MB | {rss_mb:.1f} MiB | "
          f"{ok(rss_mb * 1.048576 <= TARGETS['rss_mb']) if n_rss >= 100000 else 'n/a (<100k executions)'} |")
    print(f"| raw posix_spawn+wait /bin/true, 1 / 2 threads | — | {sp1:.0f}/s / {sp2:.0f}/s | |")
    print(f"| our rate / raw spawn (1 thread, 2 threads) | — | {rate / sp1:.2f}, {rate / sp2:.2f} | |")


def srv_bin(args) -> str:
    return str(args.attune_bin)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attune-bin", type=Path, default=attune_bin())
    ap.add_argument("--spawn-bin", type=Path, default=REPO / "build-bench" / "tests" / "bench" / "bench_spawn")
    ap.add_argument("--spawn-seconds", type=float, default=3.0)
    ap.add_argument("--light-rate", type=float, default=40.0)
    ap.add_argument("--light-seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                    default=[100, 200, 300, 350, 400, 450, 500, 600, 700, 800, 1000])
    ap.add_argument("--step-seconds", type=float, default=12.0)
    ap.add_argument("--step-warm", type=float, default=3.0, help="seconds of each step not counted")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--conns", type=int, default=128, help="keep-alive connections of the sender")
    ap.add_argument("--bulk-total", type=int, default=100_000)
    ap.add_argument("--time-budget", type=float, default=900.0, help="overall bound in seconds")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `attune serve` argument (repeatable), e.g. --serve-arg=--http-threads=8")
    ap.add_argument("--quick", action="store_true", help="short smoke run (small counts)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    args = ap.parse_args()
    if args.quick:
        args.light_seconds, args.warmup, args.step_seconds, args.bulk_total = 5.0, 1.0, 5.0, 3000
        args.rates, args.spawn_seconds, args.step_warm = [100, 300], 1.0, 1.5
    args.deadline = time.monotonic() + args.time_budget
    if not args.attune_bin.exists():
        print(f"attune binary not found: {args.attune_bin}", file=sys.stderr)
        return 2

    log(f"load average {loadavg()}; bench_spawn ({args.spawn_seconds}s per case)")
    try:
        spawn = run_spawn_bench(args.spawn_bin, args.spawn_seconds)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="attune-bench-"))
    os.environ["ATTUNE_BIN"] = str(args.attune_bin)
    srv = BenchServer(args.attune_bin, tmp / "data", tmp / "attune.log", serve_args=args.serve_arg)
    rc = 0
    try:
        srv.start(timeout=60)
        log(f"attune serve pid {srv.proc.pid}: {srv.api_url} {srv.ws_url}")
        res = asyncio.run(bench(args, srv, spawn))
        if not srv.running():
            raise BenchError("attune serve died during the run")
        report(args, res, spawn)
        if res["outstanding"] or res["failed"] or len(res["http_errors"]) > 0:
            print(f"error: {res['outstanding']} executions never completed, {res['failed']} failed, "
                  f"HTTP errors {res['http_errors']}", file=sys.stderr)
            rc = 1
    except (BenchError, AssertionError, OSError, asyncio.TimeoutError) as e:
        state = "running" if srv.running() else f"exited with code {srv.proc.returncode}"
        print(f"error: {e} (attune serve {state})\n{srv.log_tail(40)}", file=sys.stderr)
        rc = 1
    finally:
        code = srv.stop(grace=20)
        if code != 0 and rc == 0:
            print(f"error: attune serve exited with code {code}\n{srv.log_tail(40)}", file=sys.stderr)
            rc = 1
        if args.keep or rc != 0:
            print(f"server log kept: {srv.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
