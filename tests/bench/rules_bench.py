#!/usr/bin/env python3
"""End-to-end rules benchmark (issue 3): webhook events/s accepted AND evaluated by the rules stage with 100
non-matching rules on one webhook trigger, against a real `attune serve` (embedded log, temp dir, ephemeral
ports, started like the e2e harness).

Load comes from `wrk` (keep-alive connections, one constant webhook body). Afterwards one final event that
matches only a sentinel rule is fired; events of a trigger are evaluated in order, so once the sentinel's
enforcement is visible every accepted event has been evaluated. The run is then verified over HTTP: the
trigger has at least as many events as 200 responses, and the only enforcement on it is the sentinel's.

  evaluated/s = 200 responses / (time from the start of the load until the sentinel enforcement is visible)

Usage: ATTUNE_BIN=build-rules/api/cli/attune python3 tests/bench/rules_bench.py [--rules 100]
       [--duration 10] [--connections 64] [--threads 1] [--http-threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from attune_e2e import Server, attune_bin, expect, uid  # noqa: E402

# Never true for the load: priority 1 fails the first comparison, or the array form's first criterion.
EXPRESSION = "trigger.payload.priority >= 7 and trigger.payload.env in ['prod', 'staging']"
CRITERIA = [{"field": "priority", "operator": "gte", "value": 7},
            {"field": "env", "operator": "in", "value": ["prod", "staging"]}]
LOAD_PAYLOAD = {"priority": 1, "env": "dev", "host": "web-01", "message": "disk usage normal"}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format('WRK_RESULT {"requests": %%d, "duration_us": %%d, "status_errors": %%d, '
    .. '"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def setup(api, n_rules: int) -> dict:
    pack = api.create_pack(f"bench_{uid(6)}")
    p = pack["ref"]
    action = api.create_action(f"{p}.noop", "true")
    trigger = api.create_trigger(f"{p}.hook")
    key = api.enable_webhook(trigger["ref"])
    for i in range(n_rules):
        conditions = {"expression": EXPRESSION} if i % 2 == 0 else CRITERIA
        api.create_rule(f"{p}.r{i:03d}", trigger["ref"], action["ref"], conditions=conditions,
                        action_params={"host": "{{ trigger.payload.host }}"})
    sentinel = api.create_rule(f"{p}.sentinel", trigger["ref"], action["ref"],
                               conditions={"expression": "event.payload.sentinel == true"})
    return {"key": key, "trigger_ref": trigger["ref"], "sentinel_ref": sentinel["ref"]}


def run_wrk(url: str, args) -> dict:
    body = json.dumps({"payload": LOAD_PAYLOAD})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % body)
        script = f.name
    try:
        cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "10s",
               "-s", script, url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    line = next(l for l in out.splitlines() if l.startswith("WRK_RESULT "))
    return json.loads(line[len("WRK_RESULT "):])


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--duration", type=int, default=10, help="seconds of load")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--http-threads", type=int, default=0,
                    help="ATTUNE_HTTP_THREADS for the server (0: its default)")
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data + server log)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    base = Path(tempfile.mkdtemp(prefix="rules-bench-"))
    extra_env = {"ATTUNE_HTTP_THREADS": str(args.http_threads)} if args.http_threads else {}
    srv = Server(attune_bin(), base / "data", base / "attune.log", extra_env=extra_env)
    srv.start(timeout=60)
    try:
        api = srv.admin_client()
        t0 = time.monotonic()
        cfg = setup(api, args.rules)
        print(f"setup: {args.rules} non-matching rules + 1 sentinel on {cfg['trigger_ref']} "
              f"in {time.monotonic() - t0:.1f} s")
        url = api.url(f"/api/v1/webhooks/{cfg['key']}")

        cpu0 = cpu_seconds(srv.proc.pid)
        start = time.monotonic()
        w = run_wrk(url, args)
        load_end = time.monotonic()
        accepted = w["requests"] - w["status_errors"]
        sentinel_event = expect(requests.post(url, json={"payload": {"sentinel": True}}, timeout=30), 200)
        sentinel_event = sentinel_event["data"]["event_id"]
        deadline = time.monotonic() + args.drain_timeout
        while True:
            items = api.items("/api/v1/enforcements", rule_ref=cfg["sentinel_ref"], event=sentinel_event)
            if items:
                break
            if time.monotonic() > deadline:
                print(f"sentinel enforcement not visible after {args.drain_timeout} s", file=sys.stderr)
                return 1
            time.sleep(0.02)
        evaluated_at = time.monotonic()
        cpu = cpu_seconds(srv.proc.pid) - cpu0

        events = api.list("/api/v1/events", trigger_ref=cfg["trigger_ref"], page_size=1)["pagination"]["total_items"]
        enfs = api.list("/api/v1/enforcements", trigger_ref=cfg["trigger_ref"], page_size=10)
        ok = events >= accepted + 1 and enfs["pagination"]["total_items"] == 1 and \
            enfs["items"][0]["rule_ref"] == cfg["sentinel_ref"]
        load_s = w["duration_us"] / 1e6
        total_s = evaluated_at - start
        print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s: {w['requests']} responses, "
              f"{accepted} accepted (200), {w['status_errors']} non-2xx, socket errors "
              f"connect/read/write/timeout {w['connect']}/{w['read']}/{w['write']}/{w['timeout']}; "
              f"latency p50 {w['p50_us'] / 1000:.2f} ms p99 {w['p99_us'] / 1000:.2f} ms")
        print(f"accepted:            {accepted / load_s:10.0f} events/s ({accepted} in {load_s:.2f} s)")
        print(f"drain after load:    {evaluated_at - load_end:10.2f} s until the sentinel enforcement was visible")
        print(f"accepted+evaluated:  {accepted / total_s:10.0f} events/s ({accepted} in {total_s:.2f} s, "
              f"{args.rules} rules each)")
        print(f"server CPU:          {cpu * 1e6 / max(accepted, 1):10.1f} µs per event "
              f"({cpu:.2f} CPU-s from the start of the load until evaluated; load average "
              f"{os.getloadavg()[0]:.1f})")
        print(f"verify: {events} events on the trigger (>= {accepted} + 1 sentinel), "
              f"{enfs['pagination']['total_items']} enforcement(s) (only the sentinel's): {'OK' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        rc = srv.stop(grace=20)
        if args.keep:
            print(f"kept {base} (server exit {rc})")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
