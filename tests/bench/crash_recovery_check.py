#!/usr/bin/python3
"""Data directory compatibility under the issue 12 crash: runs an OLD build of `attune serve` under a webhook
flood (16 closed-loop clients, retention keeping 20 records per partition) until it dies or --seconds pass,
tries to start the old build again on that directory, then starts the NEW build on it and checks that every
webhook the old build acknowledged kept its event, enforcement and execution, and that nothing is left in
flight (those that were running at the crash end `abandoned`). Prints one JSON line with the counts.

    git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/build -G Ninja && ninja -C /tmp/old/build attune
    /usr/bin/python3 tests/bench/crash_recovery_check.py --old /tmp/old/build/api/cli/attune [--new build/api/cli/attune]

Exits 1 when the new build cannot open the directory or anything acknowledged is missing or doubled.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "e2e"))
from attune_e2e import NON_TERMINAL, TERMINAL, Flood, Server, attune_bin, wait_for  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--old", required=True, type=Path, help="the earlier build's attune binary")
ap.add_argument("--new", type=Path, default=attune_bin(), help="this build's attune binary")
ap.add_argument("--seconds", type=float, default=240, help="flood at most this long")
args = ap.parse_args()
OLD, NEW = args.old, args.new
base = Path(tempfile.mkdtemp(prefix="attune-crashcheck-"))
data = base / "data"
print("data dir", data, flush=True)

old = Server(OLD, data, base / "old.log", admin_password="pw-" + "x" * 20, jwt_secret="s" * 48,
             extra_env={"ATTUNE_LOG_KEEP_RECORDS": "20"})
old.start()
api = old.admin_client()
flow = api.webhook_flow("true")
print("flow", flow.rule_ref, flush=True)
flood = Flood(f"{old.api_url}/api/v1/webhooks/{flow.key}", clients=16).start()
t0 = time.time()
while old.running() and time.time() - t0 < args.seconds:
    time.sleep(1)
flood.finish()
print(f"old build: running={old.running()} after {time.time()-t0:.0f}s, exit={old.proc.poll()}, "
      f"accepted={len(flood.accepted)}", flush=True)
print(old.log_tail(5), flush=True)
if old.running():
    old.kill9()

# Does the old build start again on its own directory?
again = Server(OLD, data, base / "old-again.log", admin_password="pw-" + "x" * 20, jwt_secret="s" * 48)
try:
    again.start(timeout=30)
    print("old build restarted on the crashed dir: running", again.running(), flush=True)
    time.sleep(3)
    print("old build after 3 s: running", again.running(), again.proc.poll(), flush=True)
    if again.running():
        again.kill9()
except Exception as e:
    print("old build restart failed:", repr(e)[:300], flush=True)
    print(again.log_tail(5), flush=True)

new = Server(NEW, data, base / "new.log", admin_password="pw-" + "x" * 20, jwt_secret="s" * 48)
new.start(timeout=60)
api = new.admin_client()
def total(path, **f):
    return api.list(path, page_size=1, **f)["pagination"]["total_items"]
wait_for(lambda: total("/api/v1/executions", rule_ref=flow.rule_ref, status=",".join(NON_TERMINAL)) == 0,
         timeout=300, desc="nothing left in flight")
ev = total("/api/v1/events", trigger_ref=flow.trigger_ref)
enf = total("/api/v1/enforcements", rule_ref=flow.rule_ref)
ex = total("/api/v1/executions", rule_ref=flow.rule_ref)
by = {s: total("/api/v1/executions", rule_ref=flow.rule_ref, status=s) for s in TERMINAL}
missing = [e for e in flood.accepted[::max(1, len(flood.accepted)//200)]
           if api.get(f"/api/v1/events/{e}").status_code != 200]
print(json.dumps({"accepted_by_old": len(flood.accepted), "events": ev, "enforcements": enf,
                  "executions": ex, "by_status": by, "sampled_acked_events_missing": len(missing)}), flush=True)
ok = (new.running() and not missing and ev >= len(flood.accepted) and enf == ev and ex == ev
      and sum(by.values()) == ex)
print("new build running:", new.running(), "->", "OK" if ok else "FAILED", flush=True)
new.stop()
sys.exit(0 if ok else 1)
