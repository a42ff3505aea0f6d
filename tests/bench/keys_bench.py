#!/usr/bin/python3
"""Datastore benchmark (issue 6, "Performance"): key get/set through the REST API.

Starts its own `attune serve` (temp data dir, ephemeral ports), creates --keys encrypted system keys,
then drives it with wrk (2 client threads, keep-alive) for each workload:

  get   GET /api/v1/keys/<random key>            (admin token: the value is decrypted per request)
  set   PUT /api/v1/keys/<random key> {"value"}  (encrypt + log write + wait until readable)
  mixed 50 % get, 50 % set

at each connection count of --connections, and prints requests/s, latency and the server's CPU time
per request (utime+stime of the attune process over the run / requests) — the load-independent cost,
with the rate two idle cores would allow at that cost. Non-2xx responses
are counted and make the run fail. Target: >= 20,000 ops/s. Exits non-zero only on errors, never
because a target is missed.

    /usr/bin/python3 tests/bench/keys_bench.py [--keys 1000] [--seconds 10] [--connections 2,16]
        [--binaries old/attune,build/api/cli/attune]   # side by side, workload by workload

Needs wrk (Debian package `wrk`) and /usr/bin/python3 with python3-requests.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from attune_e2e import Server, attune_bin  # noqa: E402

TARGET = 20000.0

LUA = textwrap.dedent("""
    local keys = %(keys)d
    local token = "%(token)s"
    local mode = "%(mode)s"
    local n = 0
    wrk.headers["Authorization"] = "Bearer " .. token
    wrk.headers["Connection"] = "keep-alive"
    wrk.headers["Content-Type"] = "application/json"
    request = function()
      n = n + 1
      local path = "/api/v1/keys/bk" .. math.random(1, keys)
      if mode == "get" or (mode == "mixed" and n %% 2 == 0) then
        return wrk.format("GET", path)
      end
      return wrk.format("PUT", path, nil, '{"value": {"n": ' .. n .. ', "secret": "s3cr3t-' .. n .. '"}}')
    end
""")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}")
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:(.*)", text)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    return {"rps": rps, "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1).strip() if errors else "",
            "p50": lat.get("50", "?"), "p99": lat.get("99", "?")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", default="2,16")
    ap.add_argument("--binaries", default="",
                    help="comma-separated attune binaries to compare side by side (default: the one "
                         "ATTUNE_BIN or the build names); each workload runs on each in turn")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    binaries = [Path(b) for b in args.binaries.split(",") if b] or [attune_bin()]
    base = Path(tempfile.mkdtemp(prefix="attune-keys-bench-"))
    servers = []
    try:
        for i, binary in enumerate(binaries):
            srv = Server(binary, base / f"data{i}", base / f"attune{i}.log")
            srv.start(timeout=60)
            servers.append(srv)
            api = srv.admin_client()
            log(f"{binary}: server {srv.api_url}; creating {args.keys} encrypted keys")
            t0 = time.time()
            for k in range(1, args.keys + 1):
                r = api.post("/api/v1/keys", json={"local_ref": f"bk{k}", "value": {"n": k, "secret": f"s3cr3t-{k}"}})
                assert r.status_code == 201, r.text
            log(f"created in {time.time() - t0:.1f} s (one client, no keep-alive tuning)")
            srv.token = api.token
        load = os.getloadavg()[0]
        rows = []
        for mode in ("get", "set", "mixed"):
            for c in (int(x) for x in args.connections.split(",")):
                for i, srv in enumerate(servers):
                    script = base / f"{mode}{i}.lua"
                    script.write_text(LUA % {"keys": args.keys, "token": srv.token, "mode": mode})
                    # The other servers are paused meanwhile: their background work (log
                    # compaction, RocksDB flushes) must not take CPU from the one measured.
                    others = [o for o in servers if o is not srv]
                    for o in others:
                        os.kill(o.proc.pid, signal.SIGSTOP)
                    try:
                        cpu0 = cpu_seconds(srv.proc.pid)
                        res = run_wrk(srv.api_url, script, c, args.seconds)
                        cpu = cpu_seconds(srv.proc.pid) - cpu0
                    finally:
                        for o in others:
                            os.kill(o.proc.pid, signal.SIGCONT)
                    res["cpu_us"] = cpu * 1e6 / max(1.0, res["rps"] * args.seconds)
                    # What two idle cores would allow at this CPU cost per request.
                    res["cpu_bound"] = 2e6 / res["cpu_us"] if res["cpu_us"] > 0 else float("inf")
                    if res["non2xx"]:
                        raise RuntimeError(f"{mode} c={c}: {res['non2xx']} non-2xx responses")
                    rows.append((mode, c, i, res))
                    log(f"{mode:5} c={c:<3} #{i} {res['rps']:>10.0f} req/s  p50 {res['p50']:>8}  p99 {res['p99']:>8}"
                        f"  server CPU {res['cpu_us']:.0f} us/req  {res['socket_errors']}")
        print()
        print(f"load average before the runs: {load:.1f} (2 shared cores)")
        for i, binary in enumerate(binaries):
            print(f"#{i}: {binary}")
        print(f"{'workload':8} {'conns':>5} {'#':>2} {'req/s':>10} {'p50':>9} {'p99':>9} {'CPU us/req':>10} "
              f"{'2-core bound':>12}  target {TARGET:.0f}" + ("  req/s vs #0" if len(servers) > 1 else ""))
        first = {}
        for mode, c, i, res in rows:
            if i == 0:
                first[(mode, c)] = res["rps"]
            ratio = f"  {res['rps'] / first[(mode, c)]:.2f}x" if len(servers) > 1 else ""
            print(f"{mode:8} {c:>5} {i:>2} {res['rps']:>10.0f} {res['p50']:>9} {res['p99']:>9} {res['cpu_us']:>10.1f} "
                  f"{res['cpu_bound']:>12.0f}  {'met' if res['rps'] >= TARGET else 'missed'}{ratio}")
        return 0
    finally:
        for srv in servers:
            srv.stop(grace=10)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
