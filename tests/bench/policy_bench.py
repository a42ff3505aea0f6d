#!/usr/bin/python3
"""Policy benchmark (issue 17, "Performance"): what a concurrency policy costs, and 100,000 queued executions.

Starts its own `attune serve` (embedded log, temp data dir, ephemeral ports, via tests/e2e/attune_e2e.py and
foundation_bench.BenchServer) and measures, in one run on that one server:

  1. Throughput with vs without a policy, side by side: two inline shell actions running `true`, `plain` (no
     policy) and `limited` (an action-scope policy `concurrency {limit: 64}`). For each client count in
     --threads (default 16 and 64), closed loop: every client thread (own keep-alive requests.Session) posts
     POST /executions/execute, waits until that execution is terminal, and starts the next. Completion is seen
     on the notifier WebSocket (one websocket-client subscriber, `entity_type:execution`; the time is taken
     when the frame is read), so the clients do not poll. Rounds alternate A/B/A/B/A/B (--rounds pairs of
     --round-seconds each, after a short warm-up of each action) so drift of the shared machine hits both.
     Reports executions/s of each round, of each action over its rounds, the ratio limited/plain (target: the
     policy costs < 10 %, i.e. ratio >= 0.90) and p50/p99 execute -> completed latency (client clock: before
     the POST to the arrival of the terminal frame). After the rounds the limited action's queue-stats must
     show nothing queued or active and total_completed = its executions.
  2. Admission of --queue-count (default 100,000) queued executions: an inline shell action `gate` that waits
     for a flag file (`while [ ! -e FLAG ]; do sleep 0.2; done`, timeout 2 h) behind a policy of limit 1. The
     first execution runs and blocks, everything else queues. --submit-procs processes x --submit-threads
     threads post the executions as fast as the API answers. Reported: submit time and rate, HTTP latency of
     execute, attune VmRSS / VmHWM before and after (and the peak VmRSS sampled every 0.5 s), the time until
     queue-stats reaches queue_length = N - 1, active_count = 1, total_enqueued = N (checked, plus
     /executions/stats by status), the latency of GET /actions/{ref}/queue-stats (--stats-gets sequential
     calls) with N - 1 queued (and, for comparison, of --exec-stats-gets GET /executions/stats?action_ref=,
     which counts the action's rows); then the flag file is created and the policy PUT to limit 64: the drain
     time and rate until total_completed = N (queue-stats polled every 0.5 s), the final statuses and VmRSS.

Prints results and markdown tables. Exits non-zero only on errors (server died, wrong counts, a stuck queue,
HTTP errors), never because a target is missed. Every loop is bounded in count and time.

    /usr/bin/python3 tests/bench/policy_bench.py --quick     # smoke: 3 x A/B of 3 s, 2,000 queued
    /usr/bin/python3 tests/bench/policy_bench.py             # 16 and 64 clients, 3 x A/B of 10 s; 100,000 queued
    # variants: --phases 1|2|12, --threads 16,64,128, --round-seconds 10, --rounds 3, --queue-count 100000,
    #           --submit-procs 2, --submit-threads 8, --stats-gets 200, --drain-limit 64, --binary PATH
    #           (or ATTUNE_BIN), --serve-arg=--http-threads=8 (repeatable), --keep (keep data dir and log)

Needs /usr/bin/python3 with python3-requests and python3-websocket (websocket-client).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

import requests  # noqa: E402
import websocket  # noqa: E402  (python3-websocket: websocket-client)

from attune_e2e import TERMINAL, attune_bin, expect  # noqa: E402
from foundation_bench import BenchServer, loadavg, log, pct, proc_cpu_s, proc_status  # noqa: E402

MP = mp.get_context("spawn")
JSON_HEADERS = {"Content-Type": "application/json"}


class BenchError(Exception):
    pass


def mib(kib: int) -> float:
    return kib / 1024.0


def uptime_line() -> str:
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return f"load average {loadavg()} (up {up / 3600:.1f} h, {os.cpu_count()} CPUs)"


# ------------------------------------------------------------------------------------- completion tracker

class Completions:
    """One notifier subscriber (`entity_type:execution`) in a thread: the time each execution's terminal frame
    arrived, and a per-id wait for the client threads (frames that arrive before anyone waits are kept)."""

    def __init__(self, ws_url: str, token: str):
        self.ws = websocket.create_connection(ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                              timeout=10)
        self.ws.recv()  # welcome
        self.ws.send(json.dumps({"type": "subscribe", "filter": "entity_type:execution"}))
        self.lock = threading.Lock()
        self.done: dict[int, tuple[float, str]] = {}
        self.waiters: dict[int, threading.Event] = {}
        self.frames = 0
        self.error: str | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="ws-completions")
        self.thread.start()

    def _run(self) -> None:
        self.ws.settimeout(0.5)
        while not self.stopping:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as e:  # closed by the server, or a broken socket
                if not self.stopping:
                    self.error = f"{type(e).__name__}: {e}"
                return
            t = time.monotonic()
            self.frames += 1
            if not isinstance(raw, str) or "execution_status_changed" not in raw:
                continue
            try:
                p = json.loads(raw)["payload"]
                st, ex = p["status"], int(p["id"])
            except (ValueError, KeyError, TypeError):
                continue
            if st in TERMINAL:
                with self.lock:
                    self.done.setdefault(ex, (t, st))
                    ev = self.waiters.pop(ex, None)
                if ev is not None:
                    ev.set()

    def wait(self, ex: int, timeout: float):
        with self.lock:
            got = self.done.get(ex)
            if got is not None:
                return got
            ev = self.waiters.setdefault(ex, threading.Event())
        ev.wait(timeout)
        with self.lock:
            self.waiters.pop(ex, None)
            return self.done.get(ex)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        try:
            self.ws.close()
        except Exception:
            pass


# ------------------------------------------------------------------------------------- phase 1: with vs without

def execute_raw(session: requests.Session, url: str, token: str, body: bytes, timeout: float = 30.0):
    r = session.post(url, data=body, headers={**JSON_HEADERS, "Authorization": f"Bearer {token}"},
                     timeout=timeout)
    if r.status_code != 201:
        raise BenchError(f"execute: HTTP {r.status_code} {r.text[:200]}")
    return r.json()["data"]["id"]


def closed_loop_round(api_url: str, token: str, comp: Completions, sessions: list, action_ref: str,
                      seconds: float, wait_timeout: float) -> dict:
    """len(sessions) threads, each: execute, wait for the terminal frame, repeat until `seconds` have passed
    (the one in flight is finished). Returns counts, latencies (ms) and the rate."""
    url = api_url + "/api/v1/executions/execute"
    body = json.dumps({"action_ref": action_ref}).encode()
    lat: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    t_start = time.monotonic()
    deadline = t_start + seconds
    t_last = [t_start]

    def worker(s: requests.Session) -> None:
        mine, st_local = [], Counter()
        last = t_start
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                ex = execute_raw(s, url, token, body)
            except (BenchError, requests.RequestException) as e:
                with lock:
                    errors.append(str(e))
                time.sleep(0.05)
                continue
            got = comp.wait(ex, wait_timeout)
            if got is None:
                with lock:
                    errors.append(f"execution {ex} not terminal within {wait_timeout}s")
                continue
            t_done, st = got
            st_local[st] += 1
            if st == "completed":
                mine.append((t_done - t0) * 1000.0)
            last = max(last, t_done)
        with lock:
            lat.extend(mine)
            statuses.update(st_local)
            t_last[0] = max(t_last[0], last)

    cpu0, me0 = proc_cpu_s(SERVER_PID[0], children=True), time.process_time()
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + wait_timeout + 60)
    if any(t.is_alive() for t in threads):
        raise BenchError(f"round of {action_ref}: client threads did not finish")
    elapsed = t_last[0] - t_start
    n = statuses["completed"]
    return {"action": action_ref, "clients": len(sessions), "completed": n, "statuses": dict(statuses),
            "errors": errors, "seconds": elapsed, "rate": n / elapsed if elapsed > 0 else 0.0, "lat": lat,
            "server_cpu_s": proc_cpu_s(SERVER_PID[0], children=True) - cpu0,
            "driver_cpu_s": time.process_time() - me0, "load": loadavg()}


SERVER_PID = [0]


def phase1(args, srv, api, pack: str) -> dict:
    plain, limited = f"{pack}.plain", f"{pack}.limited"
    api.create_action(plain, "true")
    api.create_action(limited, "true")
    pol = expect(api.post("/api/v1/policies", json={"ref": "limit64", "pack_ref": pack, "action_ref": limited,
                                                    "concurrency": {"limit": 64}}), 201)["data"]
    log(f"phase 1: actions {plain} (no policy) and {limited} (policy {pol['ref']} concurrency "
        f"{pol['concurrency']}); {uptime_line()}")
    comp = Completions(srv.ws_url, api.token)
    res = {"plain": plain, "limited": limited, "by_clients": {}}
    try:
        for n in args.threads:
            sessions = [requests.Session() for _ in range(n)]
            for ref in (plain, limited):  # warm-up of each (connections, first spawns), not counted
                w = closed_loop_round(srv.api_url, api.token, comp, sessions, ref, args.warmup_seconds,
                                      args.wait_timeout)
                log(f"  warm-up {n} clients {ref.split('.')[-1]}: {w['rate']:.0f}/s")
            rounds = []
            for k in range(args.rounds):
                for ref in (plain, limited):
                    if comp.error:
                        raise BenchError(f"notifier WebSocket failed: {comp.error}")
                    if not srv.running():
                        raise BenchError("attune serve died")
                    r = closed_loop_round(srv.api_url, api.token, comp, sessions, ref, args.round_seconds,
                                          args.wait_timeout)
                    r["round"] = k + 1
                    rounds.append(r)
                    log(f"  {n:3d} clients round {k + 1} {ref.split('.')[-1]:8s}: {r['completed']:6d} completed "
                        f"in {r['seconds']:.1f} s = {r['rate']:6.1f}/s; p50 {pct(r['lat'], 50):6.1f} ms p99 "
                        f"{pct(r['lat'], 99):6.1f} ms; statuses {r['statuses']}; errors {len(r['errors'])}; "
                        f"attune+actions CPU {100 * r['server_cpu_s'] / max(r['seconds'], 1e-9):.0f} %, "
                        f"driver CPU {100 * r['driver_cpu_s'] / max(r['seconds'], 1e-9):.0f} %; load {r['load']}")
            for s in sessions:
                s.close()
            res["by_clients"][n] = rounds
        time.sleep(1.0)
        qs = api.get_data(f"/api/v1/actions/{limited}/queue-stats")
        res["limited_queue_stats"] = qs
    finally:
        res["ws_frames"] = comp.frames
        res["ws_error"] = comp.error
        comp.close()
    # every execution of `limited` this phase started went through admission and ended: check the stats
    st = api.get_data("/api/v1/executions/stats", action_ref=limited)
    res["limited_exec_stats"] = st
    return res


def phase1_report(args, res: dict, errors: list[str]) -> None:
    print()
    print(f"1. Executions/s of `true` with vs without a concurrency policy (limit 64), closed loop, "
          f"{args.rounds} x A/B rounds of {args.round_seconds:g} s")
    print()
    print("| clients | round | plain (no policy) /s | limited (limit 64) /s | ratio |")
    print("|---:|---:|---:|---:|---:|")
    summary = []
    for n, rounds in res["by_clients"].items():
        by_round: dict[int, dict] = {}
        for r in rounds:
            by_round.setdefault(r["round"], {})["limited" if r["action"] == res["limited"] else "plain"] = r
        for k, pair in sorted(by_round.items()):
            a, b = pair["plain"], pair["limited"]
            print(f"| {n} | {k} | {a['rate']:.1f} | {b['rate']:.1f} | {b['rate'] / max(a['rate'], 1e-9):.3f} |")
        agg = {}
        for side in ("plain", "limited"):
            rs = [pair[side] for pair in by_round.values()]
            done = sum(r["completed"] for r in rs)
            secs = sum(r["seconds"] for r in rs)
            lat = [x for r in rs for x in r["lat"]]
            cpu = sum(r["server_cpu_s"] for r in rs)
            agg[side] = {"rate": done / secs if secs else 0.0, "done": done, "p50": pct(lat, 50),
                         "p99": pct(lat, 99), "cpu_ms": 1000.0 * cpu / max(done, 1),
                         "bad": sum(sum(v for s, v in r["statuses"].items() if s != "completed") for r in rs),
                         "errors": sum(len(r["errors"]) for r in rs)}
            for r in rs:
                if r["errors"]:
                    errors.append(f"{n} clients {side}: {len(r['errors'])} errors, e.g. {r['errors'][0]}")
            if agg[side]["bad"]:
                errors.append(f"{n} clients {side}: {agg[side]['bad']} executions not completed")
        summary.append((n, agg))
    print()
    print("| clients | plain /s | limited /s | ratio limited/plain | plain p50 / p99 ms | limited p50 / p99 ms | "
          "attune+action CPU ms/exec plain / limited |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, agg in summary:
        a, b = agg["plain"], agg["limited"]
        print(f"| {n} | {a['rate']:.1f} | {b['rate']:.1f} | **{b['rate'] / max(a['rate'], 1e-9):.3f}** | "
              f"{a['p50']:.1f} / {a['p99']:.1f} | {b['p50']:.1f} / {b['p99']:.1f} | "
              f"{a['cpu_ms']:.2f} / {b['cpu_ms']:.2f} |")
    qs, st = res.get("limited_queue_stats"), res.get("limited_exec_stats")
    print()
    print(f"limited's queue-stats after the rounds: {json.dumps(qs)}")
    print(f"limited's /executions/stats: total {st.get('total')}, active {st.get('active')}, by_status "
          f"{ {k: v for k, v in st.get('by_status', {}).items() if v} }")
    print(f"notifier frames read: {res['ws_frames']}")
    if res.get("ws_error"):
        errors.append(f"notifier WebSocket: {res['ws_error']}")
    if qs is not None and st is not None:
        if qs.get("queue_length") != 0 or qs.get("active_count") != 0:
            errors.append(f"limited: queue-stats not idle after the rounds: {qs}")
        if qs.get("max_concurrent") != 64:
            errors.append(f"limited: max_concurrent {qs.get('max_concurrent')} != 64")
        if qs.get("total_enqueued") != st.get("total") or qs.get("total_completed") != st.get("total"):
            errors.append(f"limited: queue-stats totals {qs.get('total_enqueued')}/{qs.get('total_completed')} != "
                          f"{st.get('total')} executions of the action")


# ------------------------------------------------------------------------------------- phase 2: 100,000 queued

def submit_process(api_url: str, token: str, action_ref: str, count: int, threads: int, out) -> None:
    """Child process: `threads` threads post `count` executions of action_ref in total, as fast as answered.
    Sends back (ids, http_ms, errors, error_samples, t_first, t_last)."""
    url = api_url + "/api/v1/executions/execute"
    body = json.dumps({"action_ref": action_ref}).encode()
    headers = {**JSON_HEADERS, "Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    left = [count]
    ids, http_ms = array("q"), array("f")
    errors: Counter = Counter()
    samples: list[str] = []

    def worker() -> None:
        s = requests.Session()
        my_ids, my_ms = array("q"), array("f")
        failures = 0
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            while True:
                t0 = time.monotonic()
                try:
                    r = s.post(url, data=body, headers=headers, timeout=60)
                    ok = r.status_code == 201
                    why = f"HTTP {r.status_code}" if not ok else ""
                except requests.RequestException as e:
                    ok, why, r = False, type(e).__name__, None
                if ok:
                    my_ms.append((time.monotonic() - t0) * 1000.0)
                    my_ids.append(r.json()["data"]["id"])
                    break
                failures += 1
                with lock:
                    errors[why] += 1
                    if len(samples) < 5:
                        samples.append(f"{why}: {r.text[:200] if r is not None else ''}")
                if failures > 100:
                    return
                time.sleep(0.1)  # retry this one: the count must be reached
        with lock:
            ids.extend(my_ids)
            http_ms.extend(my_ms)

    out.send(("ready",))
    out.recv()  # go
    t_first = time.time()
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.send((ids.tobytes(), http_ms.tobytes(), dict(errors), samples, t_first, time.time()))


class RssSampler:
    def __init__(self, pid: int, every: float = 0.5):
        self.pid, self.every = pid, every
        self.peak = proc_status(pid)["VmRSS"]
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_evt.wait(self.every):
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except OSError:
                return

    def stop(self) -> int:
        self.stop_evt.set()
        self.thread.join(5)
        return self.peak


def snap(pid: int, label: str, res: dict) -> dict:
    st = proc_status(pid)
    s = {"label": label, "rss": st["VmRSS"], "hwm": st["VmHWM"], "threads": st.get("Threads"),
         "cpu_s": proc_cpu_s(pid), "load": loadavg(), "t": time.time()}
    res.setdefault("snaps", []).append(s)
    log(f"  VmRSS {label}: {mib(s['rss']):.1f} MiB (VmHWM {mib(s['hwm']):.1f} MiB, {s['threads']} threads, attune "
        f"CPU {s['cpu_s']:.1f} s); load {s['load']}")
    return s


def wait_stats(api, ref: str, pred, timeout: float, what: str, every: float = 0.5):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = api.get_data(f"/api/v1/actions/{ref}/queue-stats")
        if pred(last):
            return last, time.monotonic() - t0
        time.sleep(every)
    raise BenchError(f"{what}: not reached within {timeout:.0f} s; last queue-stats {last}")


def phase2(args, srv, api, pack: str, tmp: Path, errors: list[str]) -> dict:
    n = args.queue_count
    pid = srv.proc.pid
    flag = tmp / "gate.open"
    gate = f"{pack}.gate"
    api.create_action(gate, f"while [ ! -e '{flag}' ]; do sleep 0.2; done", timeout_seconds=7200)
    pol = expect(api.post("/api/v1/policies", json={"ref": "gate1", "pack_ref": pack, "action_ref": gate,
                                                    "concurrency": {"limit": 1}}), 201)["data"]
    res: dict = {"n": n, "action": gate, "policy": pol["ref"]}
    log(f"phase 2: {n} executions of {gate} behind {pol['ref']} (limit 1); {uptime_line()}")
    snap(pid, "before submit", res)

    procs, pipes = [], []
    per = [n // args.submit_procs + (1 if i < n % args.submit_procs else 0) for i in range(args.submit_procs)]
    for i, cnt in enumerate(per):
        a, b = MP.Pipe()
        p = MP.Process(target=submit_process, args=(srv.api_url, api.token, gate, cnt, args.submit_threads, b),
                       daemon=True)
        p.start()
        procs.append(p)
        pipes.append(a)
    for a in pipes:
        if not a.poll(60):
            raise BenchError("submit process did not start")
        a.recv()
    sampler = RssSampler(pid)
    cpu0 = proc_cpu_s(pid)
    t0 = time.time()
    for a in pipes:
        a.send(("go",))
    ids, http_ms, errs, samples = array("q"), array("f"), Counter(), []
    t_last = t0
    progress_t = time.monotonic()
    for a in pipes:
        while not a.poll(5):
            if not srv.running():
                raise BenchError("attune serve died during the submission")
            if time.monotonic() - progress_t > 30:
                progress_t = time.monotonic()
                log(f"  submitting... {time.time() - t0:.0f} s; VmRSS {mib(proc_status(pid)['VmRSS']):.1f} MiB; "
                    f"load {loadavg()}")
            if time.time() - t0 > args.submit_timeout:
                raise BenchError(f"submission did not finish within {args.submit_timeout} s")
        b_ids, b_ms, e, smp, _tf, tl = a.recv()
        ids.frombytes(b_ids)
        http_ms.frombytes(b_ms)
        errs.update(e)
        samples += smp
        t_last = max(t_last, tl)
    for p in procs:
        p.join(10)
    submit_s = t_last - t0
    res.update(submit_s=submit_s, submitted=len(ids), distinct=len(set(ids)), http_p50=pct(http_ms, 50),
               http_p99=pct(http_ms, 99), http_max=max(http_ms) if http_ms else float("nan"),
               http_errors=dict(errs), http_error_samples=samples[:3], submit_cpu_s=proc_cpu_s(pid) - cpu0,
               driver_children_cpu_s=sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]))
    log(f"  submitted {len(ids)} in {submit_s:.1f} s = {len(ids) / submit_s:.0f}/s; HTTP p50 "
        f"{res['http_p50']:.1f} ms p99 {res['http_p99']:.1f} ms; errors {dict(errs)}")
    if len(ids) != n or res["distinct"] != n:
        errors.append(f"submitted {len(ids)} ({res['distinct']} distinct ids) of {n}")
    snap(pid, "after submit", res)

    # the admission stage may still be catching up with the log: wait until every execution is admitted
    want_q = n - 1
    qs, settle_s = wait_stats(api, gate, lambda q: q["total_enqueued"] >= n and q["queue_length"] >= want_q,
                              args.settle_timeout, f"queue_length {want_q}")
    res["settle_s"] = settle_s
    time.sleep(1.0)
    qs = api.get_data(f"/api/v1/actions/{gate}/queue-stats")
    res["queued_stats"] = qs
    snap(pid, "all admitted", res)  # before any call that scans the executions (they fill the block cache)
    ex_st = api.get_data("/api/v1/executions/stats", action_ref=gate)
    res["queued_exec_stats"] = ex_st
    log(f"  admitted everything {settle_s:.1f} s after the last answer: queue-stats {json.dumps(qs)}")
    by = ex_st.get("by_status", {})
    checks = {"queue_length == N-1": qs["queue_length"] == want_q, "active_count == 1": qs["active_count"] == 1,
              "total_enqueued == N": qs["total_enqueued"] == n, "total_completed == 0": qs["total_completed"] == 0,
              "max_concurrent == 1": qs["max_concurrent"] == 1,
              "oldest_enqueued_at set": qs.get("oldest_enqueued_at") is not None,
              "executions: N-1 scheduling": by.get("scheduling") == want_q,
              "executions: 1 scheduled/running": by.get("running", 0) + by.get("scheduled", 0) == 1,
              "executions: total N": ex_st.get("total") == n}
    res["queued_checks"] = checks
    for k, ok in checks.items():
        if not ok:
            errors.append(f"with {n} submitted: check failed: {k} (queue-stats {qs}; executions by status "
                          f"{ {k2: v for k2, v in by.items() if v} }, total {ex_st.get('total')})")

    # queue-stats latency with N-1 queued
    s = requests.Session()
    hdr = {"Authorization": f"Bearer {api.token}"}
    url = f"{srv.api_url}/api/v1/actions/{gate}/queue-stats"
    lat = []
    for _ in range(args.stats_gets):
        t = time.monotonic()
        r = s.get(url, headers=hdr, timeout=30)
        lat.append((time.monotonic() - t) * 1000.0)
        if r.status_code != 200:
            errors.append(f"queue-stats: HTTP {r.status_code}")
            break
    ex_lat = []
    for _ in range(args.exec_stats_gets):
        t = time.monotonic()
        r = s.get(f"{srv.api_url}/api/v1/executions/stats", params={"action_ref": gate}, headers=hdr, timeout=60)
        ex_lat.append((time.monotonic() - t) * 1000.0)
    res["stats_lat"] = lat
    res["exec_stats_lat"] = ex_lat
    log(f"  GET queue-stats x{len(lat)}: p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms max {max(lat):.2f} ms;"
        f" GET /executions/stats?action_ref x{len(ex_lat)}: p50 {pct(ex_lat, 50):.1f} ms")
    snap(pid, "after the stats calls", res)

    # drain: open the gate, raise the limit
    flag.touch()
    t_drain = time.monotonic()
    cpu1 = proc_cpu_s(pid, children=True)
    put = expect(api.put(f"/api/v1/policies/{pol['ref']}", json={"concurrency": {"limit": args.drain_limit}}),
                 200)["data"]
    log(f"  gate open, policy now {put['concurrency']}; draining")
    samples_d = []
    last_log = time.monotonic()
    last_done, last_change = -1, time.monotonic()
    qs = None
    while True:
        now = time.monotonic()
        qs = api.get_data(f"/api/v1/actions/{gate}/queue-stats")
        samples_d.append((now - t_drain, qs["total_completed"], qs["queue_length"], qs["active_count"]))
        if qs["total_completed"] >= n:
            break
        if qs["total_completed"] != last_done:
            last_done, last_change = qs["total_completed"], now
        if not srv.running():
            raise BenchError("attune serve died during the drain")
        if now - last_change > args.stall_seconds:
            errors.append(f"drain stuck: total_completed {qs['total_completed']} unchanged for "
                          f"{args.stall_seconds:.0f} s; queue-stats {qs}")
            break
        if now - t_drain > args.drain_timeout:
            errors.append(f"drain not finished within {args.drain_timeout:.0f} s; queue-stats {qs}")
            break
        if now - last_log > 30:
            last_log = now
            log(f"  drain {now - t_drain:.0f} s: completed {qs['total_completed']}, queued {qs['queue_length']}, "
                f"active {qs['active_count']}; VmRSS {mib(proc_status(pid)['VmRSS']):.1f} MiB; load {loadavg()}")
        time.sleep(0.5)
    drain_s = time.monotonic() - t_drain
    res.update(drain_s=drain_s, drain_samples=samples_d, drained_stats=qs,
               drain_cpu_s=proc_cpu_s(pid, children=True) - cpu1, rss_peak=sampler.stop())
    log(f"  drained {qs['total_completed']} in {drain_s:.1f} s = {qs['total_completed'] / drain_s:.0f}/s; "
        f"queue-stats {json.dumps(qs)}")
    # the projection of the last statuses may trail the stats record a moment
    t = time.monotonic()
    while True:
        ex_st = api.get_data("/api/v1/executions/stats", action_ref=gate)
        if ex_st["by_status"].get("completed", 0) + sum(ex_st["by_status"].get(k, 0) for k in
                                                        ("failed", "timeout", "cancelled", "abandoned")) >= n \
                or time.monotonic() - t > 60:
            break
        time.sleep(0.5)
    res["drained_exec_stats"] = ex_st
    by = ex_st["by_status"]
    if by.get("completed") != n or qs["queue_length"] != 0 or qs["active_count"] != 0 or \
            qs["total_completed"] != n:
        errors.append(f"after the drain: queue-stats {qs}; executions by status "
                      f"{ {k: v for k, v in by.items() if v} }")
    time.sleep(2.0)
    snap(pid, "after drain", res)
    return res


def phase2_report(args, res: dict) -> None:
    n = res["n"]
    sn = {s["label"]: s for s in res["snaps"]}
    print()
    print(f"2. Admission of {n} queued executions (`{res['action']}`, concurrency limit 1, then PUT to limit "
          f"{args.drain_limit}); submitters: {args.submit_procs} processes x {args.submit_threads} threads")
    print()
    print("| metric | value |")
    print("|---|---|")
    print(f"| submit {res['submitted']} executions | {res['submit_s']:.1f} s = **{res['submitted'] / res['submit_s']:.0f}"
          f"/s**; HTTP p50 / p99 / max {res['http_p50']:.1f} / {res['http_p99']:.1f} / {res['http_max']:.0f} ms; "
          f"errors {res['http_errors'] or 'none'}; attune CPU {res['submit_cpu_s']:.0f} s |")
    print(f"| all admitted (queue-stats) after the last answer | {res['settle_s']:.1f} s |")
    qs = res["queued_stats"]
    print(f"| queue-stats with everything queued | queue_length {qs['queue_length']}, active_count "
          f"{qs['active_count']}, total_enqueued {qs['total_enqueued']}, total_completed {qs['total_completed']}, "
          f"max_concurrent {qs['max_concurrent']}, oldest_enqueued_at {qs['oldest_enqueued_at']} |")
    failed = [k for k, ok in res["queued_checks"].items() if not ok]
    print(f"| checks ({len(res['queued_checks'])}) | {'all passed' if not failed else 'FAILED: ' + ', '.join(failed)} |")
    by = {k: v for k, v in res["queued_exec_stats"].get("by_status", {}).items() if v}
    print(f"| /executions/stats?action_ref (queued) | total {res['queued_exec_stats'].get('total')}, {by} |")
    lat = res["stats_lat"]
    print(f"| GET /actions/{{ref}}/queue-stats with {n - 1} queued ({len(lat)} calls) | p50 {pct(lat, 50):.2f} ms, "
          f"p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms |")
    el = res["exec_stats_lat"]
    print(f"| GET /executions/stats?action_ref= ({len(el)} calls, for comparison) | p50 {pct(el, 50):.1f} ms, "
          f"p99 {pct(el, 99):.1f} ms |")
    print(f"| drain after the gate opened and the limit was raised | {res['drain_s']:.1f} s = "
          f"**{res['drained_stats']['total_completed'] / res['drain_s']:.0f} completed/s**; attune + action CPU "
          f"{res['drain_cpu_s']:.0f} s ({1000 * res['drain_cpu_s'] / max(n, 1):.2f} ms/execution) |")
    qs = res["drained_stats"]
    by = {k: v for k, v in res["drained_exec_stats"].get("by_status", {}).items() if v}
    print(f"| queue-stats after the drain | queue_length {qs['queue_length']}, active_count {qs['active_count']}, "
          f"total_enqueued {qs['total_enqueued']}, total_completed {qs['total_completed']}; executions {by} |")
    for label in ("before submit", "after submit", "all admitted", "after the stats calls", "after drain"):
        s = sn.get(label)
        if s:
            print(f"| attune VmRSS {label} | {mib(s['rss']):.1f} MiB (VmHWM {mib(s['hwm']):.1f} MiB); load {s['load']} |")
    print(f"| attune VmRSS peak (sampled every 0.5 s, submit → drain) | {mib(res['rss_peak']):.1f} MiB |")
    b, a = sn["before submit"], sn["all admitted"]
    print(f"| VmRSS growth before submit → all admitted, per queued execution | "
          f"{(a['rss'] - b['rss']) * 1024 / max(n, 1):.0f} bytes |")
    print(f"| driver: submit processes' CPU | {res['driver_children_cpu_s']:.0f} s |")


# ------------------------------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", "--attune-bin", dest="binary", type=Path, default=None,
                    help="attune binary (default ATTUNE_BIN or build/api/cli/attune)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `attune serve` argument (repeatable), e.g. --serve-arg=--http-threads=8")
    ap.add_argument("--phases", default="12", help="which phases: 1, 2 or 12")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 s rounds, 2,000 queued (explicit options win)")
    ap.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64],
                    help="client thread counts of phase 1 (comma list)")
    ap.add_argument("--rounds", type=int, default=None, help="A/B pairs per client count (default 3)")
    ap.add_argument("--round-seconds", type=float, default=None, help="default 10 (3 with --quick)")
    ap.add_argument("--warmup-seconds", type=float, default=None, help="default 2 (1 with --quick)")
    ap.add_argument("--wait-timeout", type=float, default=60.0, help="bound on one execution's completion")
    ap.add_argument("--queue-count", type=int, default=None, help="executions to queue (default 100000; 2000 --quick)")
    ap.add_argument("--submit-procs", type=int, default=2)
    ap.add_argument("--submit-threads", type=int, default=8, help="threads per submit process")
    ap.add_argument("--submit-timeout", type=float, default=3600.0)
    ap.add_argument("--settle-timeout", type=float, default=600.0)
    ap.add_argument("--stats-gets", type=int, default=200)
    ap.add_argument("--exec-stats-gets", type=int, default=5,
                    help="GET /executions/stats?action_ref= calls timed for comparison (each counts N rows)")
    ap.add_argument("--drain-limit", type=int, default=64)
    ap.add_argument("--drain-timeout", type=float, default=3600.0)
    ap.add_argument("--stall-seconds", type=float, default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data dir and server log)")
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or 3
    args.round_seconds = args.round_seconds or (3.0 if q else 10.0)
    args.warmup_seconds = args.warmup_seconds or (1.0 if q else 2.0)
    args.queue_count = args.queue_count or (2000 if q else 100_000)
    args.binary = Path(args.binary) if args.binary else attune_bin()
    if args.queue_count < 2 or min(args.threads) < 1 or args.submit_procs < 1 or args.submit_threads < 1:
        ap.error("--queue-count must be >= 2; --threads, --submit-procs, --submit-threads positive")
    return args


def main() -> int:
    args = parse_args()
    if not args.binary.exists():
        print(f"attune binary not found: {args.binary} (build it, or pass --binary / ATTUNE_BIN)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="attune-policy-bench-"))
    srv = BenchServer(args.binary, tmp / "data", tmp / "attune.log", serve_args=args.serve_arg)
    errors: list[str] = []
    r1 = r2 = None
    t_begin = time.time()
    log(f"policy_bench: {args.binary}; {uptime_line()}")
    try:
        srv.start(timeout=60)
        SERVER_PID[0] = srv.proc.pid
        log(f"attune serve pid {srv.proc.pid}: {srv.api_url} {srv.ws_url}; data dir {srv.data_dir}")
        api = srv.admin_client()
        pack = api.create_pack()["ref"]
        if "1" in args.phases:
            r1 = phase1(args, srv, api, pack)
        if "2" in args.phases:
            r2 = phase2(args, srv, api, pack, tmp, errors)
    except (BenchError, AssertionError, OSError, requests.RequestException, KeyError) as e:
        errors.append(f"{type(e).__name__}: {e}")
        log(f"error: {e}")
    finally:
        alive = srv.running()
        code = srv.stop(grace=30)
        if not alive:
            errors.append(f"attune serve died during the run (exit code {code})")
        elif code != 0:
            errors.append(f"attune serve exited with code {code} after SIGTERM")
    print()
    print("=" * 100)
    print(f"Policy benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_begin))}, {args.binary}, "
          f"serve args {args.serve_arg or 'none'}; {os.cpu_count()} CPUs; {time.time() - t_begin:.0f} s wall; "
          f"load average at the end {loadavg()}")
    print(f"command: {' '.join([sys.executable] + sys.argv)}")
    print("=" * 100)
    if r1:
        phase1_report(args, r1, errors)
    if r2 and "snaps" in r2 and "stats_lat" in r2 and "drained_stats" in r2:
        phase2_report(args, r2)
    errors = list(dict.fromkeys(errors))
    if errors:
        print("ERRORS:", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        print(srv.log_tail(30), file=sys.stderr)
    if args.keep:
        print(f"kept: {tmp} (data dir, attune.log)")
    elif errors:
        shutil.rmtree(tmp / "data", ignore_errors=True)
        print(f"server log kept: {srv.log_path}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
