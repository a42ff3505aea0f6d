#!/usr/bin/env python3
"""Disk and RSS of `attune serve` over many executions, with and without `--history-keep` (issue 13).

The cheapest path that still goes through every stage and store: a webhook on a trigger with one
rule whose action has no runtime. Each webhook is an event (rules: dedupe entry), an enforcement, an
execution (executor: state; projections: rows and indexes) dispatched to the worker (worker: `seen`
entry), which fails it at once ("runtime ... is not supported") — no process is spawned, so the
rate is bounded by the pipeline, not by posix_spawn.

Load comes from `wrk` (keep-alive, one constant body) in chunks of --chunk-seconds; after each
chunk the script waits until every accepted webhook has become a terminal execution
(attune_executions_total on /metrics), then samples: executions so far, the data directory's size
on disk (sum of file sizes), VmRSS and VmHWM of the attune process, and the executions the API still
lists (`total_items`). It stops at --executions or --max-seconds, whichever comes first.

  apt-get install -y wrk
  /usr/bin/python3 tests/bench/history_bench.py --executions 1000000                 # keep all
  /usr/bin/python3 tests/bench/history_bench.py --executions 1000000 --history-keep 10000

Exits non-zero only on errors (server died, webhooks refused, executions lost), never on a number.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from attune_e2e import Server, attune_bin, expect, uid  # noqa: E402

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{"payload": {"host": "web-01", "level": "info"}}]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format('WRK_RESULT {"requests": %d, "status_errors": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "timeout": %d}\\n', summary.requests, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def run_wrk(url: str, seconds: int, connections: int, script: str) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", script, url], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_RESULT "))
    return json.loads(line[len("WRK_RESULT "):])


def metrics_text(api) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200, r.status_code
    return r.text


def executions_total(api) -> int:
    text = metrics_text(api)
    return int(sum(float(m.group(1)) for m in
                   re.finditer(r'^attune_executions_total\{status="[a-z]+"\} (\S+)$', text, re.M)))


def webhooks_accepted(api) -> int:
    text = metrics_text(api)
    m = re.search(r'^attune_webhook_requests_total\{outcome="accepted"\} (\S+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executions", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=int, default=3600, help="stop sending after this long")
    ap.add_argument("--history-keep", default="", help="passed to attune serve (default: keep all)")
    ap.add_argument("--chunk-seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--attune-bin", default=str(attune_bin()))
    ap.add_argument("--keep-data", action="store_true", help="leave the data directory behind")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    base = Path(tempfile.mkdtemp(prefix="attune-history-bench-"))
    env = {"ATTUNE_HISTORY_KEEP": args.history_keep} if args.history_keep else {}
    srv = Server(Path(args.attune_bin), base / "data", base / "attune.log", extra_env=env)
    srv.start()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        api = srv.admin_client()
        p = api.create_pack(f"bench_{uid(6)}")["ref"]
        action = expect(api.post("/api/v1/actions", json={
            "ref": f"{p}.noruntime", "pack_ref": p, "label": "no runtime", "entrypoint": "true"}), 201)["data"]
        trigger = api.create_trigger(f"{p}.hook")
        key = api.enable_webhook(trigger["ref"])
        api.create_rule(f"{p}.rule", trigger["ref"], action["ref"])
        url = f"{srv.api_url}/api/v1/webhooks/{key}"
        pid = srv.proc.pid
        print(f"# attune pid {pid}, history keep: {args.history_keep or 'all'}, data {base / 'data'}")
        print("executions  elapsed_s  exec/s  data_MiB  rss_MiB  hwm_MiB  listed  cpu_s")
        t0 = time.monotonic()
        sent = 0
        while True:
            done = executions_total(api)
            if done >= args.executions or time.monotonic() - t0 > args.max_seconds:
                break
            w = run_wrk(url, args.chunk_seconds, args.connections, script)
            errors = w["status_errors"] + w["connect"] + w["timeout"]
            if errors:
                print(f"# wrk errors: {w}", file=sys.stderr)
            if not srv.running():
                raise SystemExit(f"attune died\n{srv.log_tail()}")
            sent = webhooks_accepted(api)
            deadline = time.monotonic() + 600
            while executions_total(api) < sent:  # drain: every accepted webhook ended
                if time.monotonic() > deadline:
                    raise SystemExit(f"{sent - executions_total(api)} executions missing after 600 s")
                time.sleep(0.5)
            done = executions_total(api)
            listed = expect(api.get("/api/v1/executions", params={"page_size": 1}), 200)["pagination"]["total_items"]
            elapsed = time.monotonic() - t0
            print(f"{done:10d}  {elapsed:9.0f}  {done / elapsed:6.0f}  {dir_bytes(base / 'data') / 2**20:8.1f}"
                  f"  {proc_kib(pid, 'VmRSS') / 1024:7.1f}  {proc_kib(pid, 'VmHWM') / 1024:7.1f}"
                  f"  {listed:6d}  {cpu_seconds(pid):5.0f}", flush=True)
        # A quiet minute: the retention pass of the log (every 60 s) and RocksDB compactions.
        time.sleep(65)
        listed = expect(api.get("/api/v1/executions", params={"page_size": 1}), 200)["pagination"]["total_items"]
        print(f"# after 65 s idle: data {dir_bytes(base / 'data') / 2**20:.1f} MiB, "
              f"RSS {proc_kib(pid, 'VmRSS') / 1024:.1f} MiB (HWM {proc_kib(pid, 'VmHWM') / 1024:.1f}), "
              f"listed {listed}, executions {executions_total(api)}, webhooks accepted "
              f"{webhooks_accepted(api)}")
        rc = srv.stop()
        print(f"# data directory after a clean stop: {dir_bytes(base / 'data') / 2**20:.1f} MiB (exit {rc})")
    finally:
        os.unlink(script)
        if srv.running():
            srv.kill9()
        if not args.keep_data:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
