#!/usr/bin/python3
"""Workflow benchmark (issue 16, "Performance"): engine overhead and with_items scale.

Starts its own `attune serve` (temp data dir, ephemeral ports, via tests/e2e/attune_e2e.py) and measures,
side by side in one run:

  a. step overhead: a 40-task sequential workflow of inline shell `true` vs the same 40 actions started
     one after another by this client (execute, poll GET /executions/{id} every 1 ms until terminal,
     next); per-step time of each and the difference per step;
  b. a with_items workflow of `--items-b` (1,000) `true` children at concurrency 50: wall time, and the
     raw posix_spawn+wait rate of /bin/sh -c true (bench_spawn, as foundation_bench.py does) measured in
     the same run;
  c. with `--items-c N` (e.g. 10000): the same at N items: wall time and the server's peak RSS (VmHWM,
     and the VmRSS sampled every 0.2 s); `--repeat-c K` runs it K times on the same server.

Prints a results table. Exits non-zero only on errors (server failure, a workflow not completing),
never because a target is missed.

    /usr/bin/python3 tests/bench/workflow_bench.py [--bin PATH] [--phases abc] [--items-c 10000]
        [--spawn-bin build/tests/bench/bench_spawn]

Needs /usr/bin/python3 with python3-requests.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from attune_e2e import Server, attune_bin, parse_ts  # noqa: E402


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])  # KiB
    return out


def median(values):
    s = sorted(values)
    return s[len(s) // 2] if s else float("nan")


def wait_terminal(api, ex_id: int, timeout: float, interval: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"/api/v1/executions/{ex_id}")
        if r.status_code == 200:
            ex = r.json()["data"]
            if ex["status"] in ("completed", "failed", "timeout", "cancelled", "abandoned"):
                return ex
        if time.monotonic() > deadline:
            raise BenchError(f"execution {ex_id} not terminal within {timeout}s")
        time.sleep(interval)


def create_workflow(api, ref: str, definition: dict) -> None:
    pack_ref, _, name = ref.partition(".")
    r = api.post("/api/v1/workflows", json={"ref": ref, "pack_ref": pack_ref, "label": name,
                                            "version": "1.0.0", "definition": definition})
    if r.status_code != 201:
        raise BenchError(f"create workflow {ref}: {r.status_code} {r.text}")


def server_span_s(ex: dict) -> float:
    """created → updated of the row (the workflow's whole life, server clock)."""
    return (parse_ts(ex["updated"]) - parse_ts(ex["created"])).total_seconds()


# ------------------------------------------------------------------------------------- phases

def phase_steps(api, pack: str, action: str, steps: int, rounds: int) -> dict:
    tasks = []
    for i in range(steps):
        t = {"name": f"s{i}", "action": action}
        if i + 1 < steps:
            t["next"] = [{"do": [f"s{i + 1}"]}]
        tasks.append(t)
    create_workflow(api, f"{pack}.seq", {"version": "1.0", "tasks": tasks})
    wf_client, wf_server, chain = [], [], []
    # warm-up: one of each
    wait_terminal(api, api.execute(f"{pack}.seq")["id"], 120, 0.001)
    wait_terminal(api, api.execute(action)["id"], 30, 0.001)
    for r in range(rounds):
        t0 = time.monotonic()
        ex = wait_terminal(api, api.execute(f"{pack}.seq")["id"], 120, 0.001)
        t1 = time.monotonic()
        if ex["status"] != "completed":
            raise BenchError(f"sequential workflow ended {ex['status']}: {ex.get('result')}")
        wf_client.append((t1 - t0) / steps)
        wf_server.append(server_span_s(ex) / steps)
        t0 = time.monotonic()
        for _ in range(steps):
            ex = wait_terminal(api, api.execute(action)["id"], 30, 0.001)
            if ex["status"] != "completed":
                raise BenchError(f"action ended {ex['status']}")
        chain.append((time.monotonic() - t0) / steps)
        log(f"round {r + 1}: workflow {wf_client[-1] * 1000:.2f} ms/step (server {wf_server[-1] * 1000:.2f}),"
            f" client chain {chain[-1] * 1000:.2f} ms/step")
    return {"wf_client": median(wf_client), "wf_server": median(wf_server), "chain": median(chain),
            "rounds": rounds, "steps": steps}


def phase_items(api, srv: Server, pack: str, action: str, items: int, concurrency: int,
                timeout: float) -> dict:
    ref = f"{pack}.items{items}"
    create_workflow(api, ref, {
        "version": "1.0",
        "tasks": [{"name": "each", "action": action, "with_items": "{{ parameters.items }}",
                   "concurrency": concurrency, "input": {}}],
    }) if not api.get(f"/api/v1/workflows/{ref}").ok else None
    pid = srv.proc.pid
    before = proc_status(pid)
    peak = [before["VmRSS"]]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            try:
                peak[0] = max(peak[0], proc_status(pid)["VmRSS"])
            except OSError:
                return

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        ex = wait_terminal(api, api.execute(ref, {"items": list(range(items))})["id"], timeout, 0.05)
    finally:
        stop.set()
        th.join()
    wall = time.monotonic() - t0
    after = proc_status(pid)
    if ex["status"] != "completed":
        raise BenchError(f"with_items {items} ended {ex['status']}: {str(ex.get('result'))[:300]}")
    log(f"with_items {items} @ {concurrency}: {wall:.2f} s, {items / wall:.0f} children/s; VmRSS "
        f"{before['VmRSS'] / 1024:.1f} -> {after['VmRSS'] / 1024:.1f} MiB (sampled peak "
        f"{peak[0] / 1024:.1f}, VmHWM {after['VmHWM'] / 1024:.1f})")
    return {"items": items, "wall": wall, "server": server_span_s(ex), "rss_before": before["VmRSS"],
            "rss_after": after["VmRSS"], "rss_peak": peak[0], "hwm": after["VmHWM"]}


def run_spawn_bench(spawn_bin: Path, seconds: float) -> float:
    """posix_spawn+wait of /bin/sh -c true on 1 thread (what an inline shell action costs), per s."""
    if not spawn_bin.exists():
        raise BenchError(f"{spawn_bin} not found: cmake --build build --target bench_spawn (or --spawn-bin)")
    out = subprocess.run([str(spawn_bin), str(seconds), "/bin/sh", "-c", "true"], capture_output=True,
                         text=True, timeout=seconds * 4 + 30)
    if out.returncode != 0:
        raise BenchError(f"bench_spawn failed ({out.returncode}): {out.stderr}")
    log(out.stdout.strip())
    rates = {}
    for line in out.stdout.splitlines():
        m = re.search(r"threads=(\d+) .*spawns_per_s=([\d.]+)", line)
        if m:
            rates[int(m.group(1))] = float(m.group(2))
    return rates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=attune_bin())
    ap.add_argument("--phases", default="ab", help="subset of 'abc'")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--items-b", type=int, default=1000)
    ap.add_argument("--items-c", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--timeout-c", type=float, default=1800.0)
    ap.add_argument("--repeat-c", type=int, default=1, help="run phase c this many times on one server")
    ap.add_argument("--spawn-bin", type=Path, default=REPO / "build" / "tests" / "bench" / "bench_spawn")
    ap.add_argument("--spawn-seconds", type=float, default=2.0)
    args = ap.parse_args()

    log(f"binary {args.bin}; load average {open('/proc/loadavg').read().split()[:3]}")
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="attune-wfbench-") as tmp:
        srv = Server(args.bin, Path(tmp) / "data", Path(tmp) / "attune.log")
        srv.start(timeout=60)
        try:
            api = srv.admin_client()
            pack = api.create_pack()["ref"]
            api.create_action(f"{pack}.noop", "true")
            action = f"{pack}.noop"
            if "a" in args.phases:
                res["a"] = phase_steps(api, pack, action, args.steps, args.rounds)
            if "b" in args.phases:
                res["spawn"] = run_spawn_bench(args.spawn_bin, args.spawn_seconds)
                res["b"] = phase_items(api, srv, pack, action, args.items_b, args.concurrency, 600)
            if "c" in args.phases:
                res["c"] = [phase_items(api, srv, pack, action, args.items_c, args.concurrency,
                                        args.timeout_c) for _ in range(args.repeat_c)]
        except Exception:
            print(srv.log_tail(40), file=sys.stderr)
            raise
        finally:
            srv.stop(grace=20)

    print()
    print(f"Results ({args.bin})")
    if "a" in res:
        a = res["a"]
        print(f"a. {a['steps']}-step sequential workflow vs client-driven chain (median of {a['rounds']} rounds)")
        print(f"   workflow:     {a['wf_client'] * 1000:7.2f} ms/step (client wall; server created->updated "
              f"{a['wf_server'] * 1000:.2f} ms/step)")
        print(f"   client chain: {a['chain'] * 1000:7.2f} ms/step (execute + 1 ms polling)")
        print(f"   difference:   {(a['wf_client'] - a['chain']) * 1000:+7.2f} ms/step (target <= +1 ms)")
    if "b" in res:
        b, sp = res["b"], res["spawn"]
        print(f"b. with_items {b['items']} x true @ concurrency {args.concurrency}: {b['wall']:.2f} s "
              f"({b['items'] / b['wall']:.0f} children/s); raw /bin/sh -c true spawn+wait "
              f"{sp.get(1, 0):.0f}/s on 1 thread, {sp.get(2, 0):.0f}/s on 2; ratio "
              f"{b['items'] / b['wall'] / max(sp.get(1, 1), 1):.2f} of 1-thread raw")
    for k, c in enumerate(res.get("c", [])):
        print(f"c{k + 1}. with_items {c['items']} x true @ concurrency {args.concurrency}: {c['wall']:.1f} s "
              f"({c['items'] / c['wall']:.0f} children/s); server VmRSS {c['rss_before'] / 1024:.1f} -> "
              f"{c['rss_after'] / 1024:.1f} MiB, sampled peak {c['rss_peak'] / 1024:.1f} MiB, "
              f"VmHWM {c['hwm'] / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"workflow_bench: {e}", file=sys.stderr)
        sys.exit(2)
