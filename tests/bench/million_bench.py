#!/usr/bin/env python3
"""A million executions in the store (issue 19): cold restart to ready, RSS, and the first page of
every list filter, on a data directory the running system wrote.

Phases (one `attune serve` at a time on --data-dir, fixed free ports):
 1. seed (skipped with --reuse when --data-dir holds a seeded store): a fresh serve creates the admin
    and the packs --packs (POST /api/v1/packs), stops; `bench_million seed` writes the log records
    of --executions executions into the stopped data directory (event.created, enforcement.created,
    execution.updated requested + final — see million_bench.cc for the shape); serve starts again and
    its own stages apply them (rules evaluates the events, the "api" stage writes the projection
    rows, indexes and counters) until GET /executions reports them all and every stage's lag is 0;
    it runs a log-retention pass and stops cleanly.
 2. restarts: --restarts times: start → GET /health answers 200 (polled every 2 ms from the
    process start) → RSS; the list suite (client side, one keep-alive session, --reps each) → RSS;
    clean stop (SIGTERM). Then start, --kill-load-seconds of execute POSTs, kill -9, start again →
    ready time and RSS.
 3. server side (--server-side): `bench_million lists` on the stopped directory times the same
    queries inside Projections (no HTTP).

  /usr/bin/python3 tests/bench/million_bench.py --bin build/api/cli/attune \\
      --tool build/tests/bench/bench_million --data-dir /work/scratch/million --executions 1000000
  # again on the same store (e.g. another binary): add --reuse

Prints everything it measured; exits non-zero only on errors.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1 << 20)


class Serve:
    def __init__(self, binary: Path, data_dir: Path, password: str, jwt: str, extra: list[str]):
        self.binary, self.data_dir, self.password, self.jwt, self.extra = binary, data_dir, password, jwt, extra
        self.proc: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir / "serve.log", "a")

    def start(self, timeout: float = 600) -> float:
        """Starts serve; returns seconds from the spawn to the first 200 of GET /health."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE")}
        env["ATTUNE_BOOTSTRAP_ADMIN"] = f"admin:{self.password}"
        env["ATTUNE__SECURITY__JWT_SECRET"] = self.jwt
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir / "data"), "--listen",
               f"127.0.0.1:{self.port}", "--ws-listen", "127.0.0.1:0", *self.extra]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        s = requests.Session()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}; see {self.data_dir}/serve.log")
            try:
                if s.get(self.url + "/health", timeout=1).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("serve not ready")
            time.sleep(0.002)

    def stop(self, sig=signal.SIGTERM) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=300)
        return time.monotonic() - t0

    def session(self) -> requests.Session:
        s = requests.Session()
        r = s.post(self.url + "/auth/login", json={"login": "admin", "password": self.password})
        r.raise_for_status()
        data = r.json()["data"]
        s.headers["Authorization"] = f"Bearer {data['access_token']}"
        s.headers["Connection"] = "keep-alive"
        s.admin_id = data["user"]["id"]
        return s


def total(s: requests.Session, url: str, path: str = "/api/v1/executions", **params) -> int:
    r = s.get(url + path, params={"page_size": 1, **params})
    r.raise_for_status()
    return r.json()["pagination"]["total_items"]


def lag(s: requests.Session, url: str) -> float:
    text = s.get(url + "/metrics").text
    n = 0.0
    for line in text.splitlines():
        if line.startswith("attune_stage_lag_records"):
            n += float(line.rsplit(" ", 1)[1])
    return n


def seed(args, meta_path: Path) -> dict:
    data = args.data_dir / "data"
    if data.exists():
        raise RuntimeError(f"{data} exists: remove it or pass --reuse")
    meta = {"password": os.urandom(12).hex(), "jwt": os.urandom(32).hex(), "packs": args.packs.split(","),
            "executions": args.executions}
    srv = Serve(args.bin, args.data_dir, meta["password"], meta["jwt"], [])
    srv.start()
    s = srv.session()
    meta["admin_id"] = s.admin_id
    for p in meta["packs"]:
        s.post(srv.url + "/api/v1/packs", json={"ref": p, "label": p, "version": "1.0.0"}).raise_for_status()
    srv.stop()
    t0 = time.monotonic()
    out = subprocess.run([str(args.tool), "seed", str(data), str(args.executions), str(meta["admin_id"]),
                          args.packs], check=True, capture_output=True, text=True)
    log(out.stdout.strip() + f" ({time.monotonic() - t0:.0f} s)")
    srv = Serve(args.bin, args.data_dir, meta["password"], meta["jwt"], ["--log-retention-interval", "5"])
    t0 = time.monotonic()
    srv.start()
    s = srv.session()
    while True:
        n = total(s, srv.url)
        lg = lag(s, srv.url)
        log(f"applied: {n} executions listed, lag {lg:.0f} records, load {loadavg()}")
        if n >= args.executions and lg == 0:
            break
        time.sleep(10)
    meta["apply_seconds"] = time.monotonic() - t0
    time.sleep(12)  # a log-retention pass (every 5 s here) drops the consumed records
    srv.stop()
    meta["data_mib"] = dir_mib(data)
    meta_path.write_text(json.dumps(meta))
    log(f"seeded: applied in {meta['apply_seconds']:.0f} s, data dir {meta['data_mib']:.0f} MiB")
    return meta


def queries(meta: dict, s: requests.Session, url: str) -> list[tuple[str, str, dict]]:
    p = meta["packs"]
    first = s.get(url + "/api/v1/executions", params={"rule_ref": f"{p[0]}.r0", "page_size": 1}).json()["items"][0]
    enforcement = first["enforcement"]
    child = [r for r in s.get(url + "/api/v1/executions", params={"page_size": 100}).json()["items"]
             if r.get("parent")]
    parent = child[0]["parent"] if child else 1
    event = s.get(url + f"/api/v1/enforcements/{enforcement}").json()["data"]["event"]
    newest = first["created"]
    t = time.mktime(time.strptime(newest[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone

    def iso(sec: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))

    day = 86400
    a0 = f"{p[0]}.a0"
    E, V, N = "/api/v1/executions", "/api/v1/events", "/api/v1/enforcements"
    return [
        ("executions", E, {}),
        ("executions order=asc", E, {"order": "asc"}),
        ("executions page=101 (offset 5000)", E, {"page": 101}),
        ("status=completed", E, {"status": "completed"}),
        ("status=running", E, {"status": "running"}),
        ("status=failed,timeout", E, {"status": "failed,timeout"}),
        ("action_ref", E, {"action_ref": a0}),
        ("pack_ref", E, {"pack_ref": p[1]}),
        ("rule_ref", E, {"rule_ref": f"{p[2]}.r1"}),
        ("rule (id)", E, {"rule": 3001}),
        ("trigger_ref", E, {"trigger_ref": f"{p[0]}.t0"}),
        ("enforcement", E, {"enforcement": enforcement}),
        ("parent", E, {"parent": parent}),
        ("status=completed&action_ref", E, {"status": "completed", "action_ref": a0}),
        ("status=running&action_ref", E, {"status": "running", "action_ref": a0}),
        ("status=requested&action_ref", E, {"status": "requested", "action_ref": f"{p[3]}.a2"}),
        ("status=failed&action_ref=core.echo", E, {"status": "failed", "action_ref": "core.echo"}),
        ("status=completed&pack_ref", E, {"status": "completed", "pack_ref": p[1]}),
        ("status=failed&rule_ref", E, {"status": "failed", "rule_ref": f"{p[2]}.r1"}),
        ("status=completed&trigger_ref", E, {"status": "completed", "trigger_ref": f"{p[0]}.t0"}),
        ("action_ref&rule_ref", E, {"action_ref": a0, "rule_ref": f"{p[0]}.r0"}),
        ("pack_ref&action_ref", E, {"action_ref": a0, "pack_ref": p[0]}),
        ("status=completed&action_ref&pack_ref", E, {"status": "completed", "action_ref": a0, "pack_ref": p[0]}),
        ("created_after (last day)", E, {"created_after": iso(t - day)}),
        ("created_after+before (1 h, 10 days ago)", E,
         {"created_after": iso(t - 10 * day), "created_before": iso(t - 10 * day + 3600)}),
        ("created_after (last 20 days)", E, {"created_after": iso(t - 20 * day)}),
        ("status=completed&created_after (day)", E, {"status": "completed", "created_after": iso(t - day)}),
        ("action_ref&created_after (day)", E, {"action_ref": a0, "created_after": iso(t - day)}),
        ("result_contains (no index)", E, {"result_contains": "ok 42\\n"}),
        ("stats", "/api/v1/executions/stats", {}),
        ("stats action_ref", "/api/v1/executions/stats", {"action_ref": a0}),
        ("events", V, {}),
        ("events trigger_ref", V, {"trigger_ref": f"{p[0]}.t0"}),
        ("events trigger (id)", V, {"trigger": 2001}),
        ("events source=webhook", V, {"source": "webhook"}),
        ("events created_after (day)", V, {"created_after": iso(t - day)}),
        ("enforcements", N, {}),
        ("enforcements rule_ref", N, {"rule_ref": f"{p[1]}.r2"}),
        ("enforcements rule (id)", N, {"rule": 3002}),
        ("enforcements status=processed", N, {"status": "processed"}),
        ("enforcements trigger_ref", N, {"trigger_ref": f"{p[0]}.t1"}),
        ("enforcements event", N, {"event": event}),
        ("enforcements rule_ref&status", N, {"rule_ref": f"{p[1]}.r2", "status": "processed"}),
        ("enforcements created_after (day)", N, {"created_after": iso(t - day)}),
    ]


def list_suite(meta: dict, srv: Serve, reps: int, max_seconds: float) -> list[dict]:
    s = srv.session()
    rows = []
    for name, path, params in queries(meta, s, srv.url):
        params = {"page_size": 50, **params} if not path.endswith("stats") else params
        times = []
        if reps > 2 and "result_contains" not in name:
            for _ in range(2):  # warm-up (block cache after the restart), not counted
                s.get(srv.url + path, params=params)
        t_end = time.monotonic() + max_seconds
        body = None
        for i in range(reps):
            t0 = time.perf_counter()
            r = s.get(srv.url + path, params=params)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{name}: {r.status_code} {r.text[:200]}")
            body = r.json()
            if time.monotonic() > t_end:
                break
        times.sort()
        tot = body["pagination"]["total_items"] if "pagination" in body else body["data"]["total"]
        rows.append({"name": name, "p50": statistics.median(times), "p99": times[min(len(times) - 1, len(times) * 99 // 100)],
                     "max": times[-1], "n": len(times), "total": tot,
                     "items": len(body.get("items", []))})
        log(f"  {name:44s} p50 {rows[-1]['p50']:8.2f} ms  p99 {rows[-1]['p99']:8.2f}  total {tot}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--tool", type=Path, required=True, help="bench_million (seed / lists)")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--executions", type=int, default=1_000_000)
    ap.add_argument("--packs", default="pk0,pk1,pk2,pk3,pk4")
    ap.add_argument("--reuse", action="store_true", help="use the store seeded earlier in --data-dir")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--max-seconds", type=float, default=10.0, help="per query")
    ap.add_argument("--server-side", action="store_true", help="also run `bench_million lists`")
    ap.add_argument("--kill-load-seconds", type=float, default=5.0, help="writes before the kill -9")
    args = ap.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    meta_path = args.data_dir / "million.json"
    log(f"binary {args.bin}; load {loadavg()}")
    meta = json.loads(meta_path.read_text()) if args.reuse else seed(args, meta_path)
    data = args.data_dir / "data"
    log(f"store: {meta['executions']} executions, data dir {dir_mib(data):.0f} MiB")

    results = {"restarts": [], "lists": None}
    for i in range(args.restarts):
        srv = Serve(args.bin, args.data_dir, meta["password"], meta["jwt"], [])
        ready = srv.start()
        t0 = time.monotonic()
        s = srv.session()
        n = total(s, srv.url)
        first_list = ready + time.monotonic() - t0
        time.sleep(1)
        rss0 = rss_mib(srv.proc.pid)
        lists = None
        if i == 0:
            lists = list_suite(meta, srv, args.reps, args.max_seconds)
            results["lists"] = lists
        rss1 = rss_mib(srv.proc.pid)
        stop = srv.stop()
        results["restarts"].append({"ready_s": ready, "first_list_s": first_list, "listed": n, "rss_ready": rss0,
                                    "rss_after_lists": rss1, "stop_s": stop})
        log(f"restart {i + 1}: ready in {ready * 1000:.0f} ms (login + first list answered at "
            f"{first_list * 1000:.0f} ms, {n} listed); RSS {rss0[0]:.0f} MiB (HWM {rss0[1]:.0f}); "
            f"after lists {rss1[0]:.0f} MiB (HWM {rss1[1]:.0f}); clean stop {stop * 1000:.0f} ms; load {loadavg()}")
    # kill -9 while serving under writes (execute POSTs of an action running `true` with the
    # default core.shell runtime), then a cold start.
    srv = Serve(args.bin, args.data_dir, meta["password"], meta["jwt"], [])
    srv.start()
    s = srv.session()
    action = f"{meta['packs'][0]}.norun"
    if s.get(srv.url + f"/api/v1/actions/{action}").status_code == 404:
        s.post(srv.url + "/api/v1/actions", json={"ref": action, "pack_ref": meta["packs"][0],
                                                  "label": "norun", "entrypoint": "true"}).raise_for_status()
    posted = [0]
    stop_at = time.monotonic() + args.kill_load_seconds

    def load():
        ls = srv.session()
        while time.monotonic() < stop_at:
            try:
                if ls.post(srv.url + "/api/v1/executions/execute", json={"action_ref": action}).status_code == 201:
                    posted[0] += 1
            except requests.RequestException:
                return

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    srv.stop(signal.SIGKILL)
    log(f"kill -9 after {posted[0]} executes in {args.kill_load_seconds:.0f} s")
    srv = Serve(args.bin, args.data_dir, meta["password"], meta["jwt"], [])
    ready = srv.start()
    t0 = time.monotonic()
    n = total(srv.session(), srv.url)
    first_list = ready + time.monotonic() - t0
    time.sleep(1)
    rss0 = rss_mib(srv.proc.pid)
    srv.stop()
    results["kill9"] = {"ready_s": ready, "first_list_s": first_list, "rss": rss0, "listed": n}
    log(f"after kill -9: ready in {ready * 1000:.0f} ms (first list at {first_list * 1000:.0f} ms); RSS {rss0[0]:.0f} MiB; listed {n}")
    if args.server_side:
        out = subprocess.run([str(args.tool), "lists", str(data), str(meta["admin_id"]), ",".join(meta["packs"])],
                             check=True, capture_output=True, text=True)
        print(out.stdout)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
