#!/usr/bin/python3
"""Python and node.js runner benchmark (issue 14): completed executions/s through the platform, side by side
in one run, for

  * a python action `pass`: warm (fork server, the default) and cold (the same action with a PYTHON* env var,
    which the runner always starts cold),
  * a node.js action returning `{}` (exported function),
  * the shell runner's `true` (inline),
  * raw `posix_spawn`+wait rates of `python3 -c pass`, `node -e 0` and `/bin/true` (2 threads, no platform).

Starts its own `attune serve` (temp data dir, ephemeral ports) with --packs-dir, uploads one pack holding the
actions, waits for its environments, then for each action submits N executions from C concurrent clients
(POST /executions/execute) and waits until all are completed; rate = N / (last completion - first submit).

    nice -n 5 /usr/bin/python3 tests/bench/runner_bench.py [--n 300] [--clients 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from attune_e2e import TERMINAL, Server, attune_bin, uid, wait_for  # noqa: E402
from runner_packs import upload, wait_environment, write_pack  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def raw_spawn_rate(argv: list[str], seconds: float, threads: int = 2) -> tuple[float, float]:
    """posix_spawn + waitpid of argv in `threads` loops for `seconds`: (spawns/s, ms CPU per spawn)."""
    count = [0] * threads
    stop = time.monotonic() + seconds
    devnull = os.open(os.devnull, os.O_RDWR)

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                 file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
            os.waitpid(pid, 0)
            count[i] += 1

    c0 = os.times()
    t0 = time.monotonic()
    ts = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system) + \
          (c1.user - c0.user) + (c1.system - c0.system)
    n = sum(count)
    os.close(devnull)
    return n / elapsed, 1000.0 * cpu / max(n, 1)


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its reaped children, in s. Forked python children are children of
    attune serve (CLONE_PARENT) and are counted; the fork server's own share (one fork per execution) is not,
    since it is reaped only when it exits."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def run_batch(api, action_ref: str, n: int, clients: int, env_vars: dict | None = None) -> dict:
    """n executions of action_ref from `clients` threads; all must complete."""
    ids: list[int] = []
    lock = threading.Lock()

    def submit(_):
        body = {}
        if env_vars:
            body["env_vars"] = env_vars
        ex = api.execute(action_ref, {}, **body)
        with lock:
            ids.append(ex["id"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(submit, range(n)))
    submitted = time.monotonic() - t0

    def all_done():  # stats are per action over all batches: done when nothing is left in flight
        stats = api.get_data("/api/v1/executions/stats", action_ref=action_ref)
        finished = sum(stats["by_status"][s] for s in TERMINAL)
        return stats if finished == stats["total"] else None

    stats = wait_for(all_done, timeout=600, interval=0.05, desc=f"{n} executions of {action_ref}")
    elapsed = time.monotonic() - t0
    bad = {s: c for s, c in stats["by_status"].items() if c and s != "completed"}
    if bad:
        raise SystemExit(f"{action_ref}: not all completed: {bad}")
    durations = []
    for ex_id in ids[:: max(1, n // 50)]:
        ex = api.get_data(f"/api/v1/executions/{ex_id}")
        durations.append(ex["result"]["duration_ms"])
    return {"rate": n / elapsed, "submit_s": submitted, "elapsed_s": elapsed,
            "duration_ms_p50": statistics.median(durations)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="executions per action")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--raw-seconds", type=float, default=5.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        base = Path(tmp)
        (base / "packs").mkdir()
        (base / "wheels").mkdir()
        srv = Server(attune_bin(), base / "data", base / "attune.log",
                     extra_env={"ATTUNE_PACKS_DIR": str(base / "packs"),
                                "ATTUNE_PIP_FIND_LINKS": str(base / "wheels"), "ATTUNE_PIP_EXTRA_ARGS": "--no-index"})
        srv.start(timeout=60)
        try:
            api = srv.admin_client()
            ref = f"bench_{uid(6)}"
            # requirements.txt (empty of packages) and package.json: both runtimes use a built environment.
            write_pack(base / ref, ref, {
                "py_pass": {"runner_type": "python", "entry_point": "py_pass.py", "script": "pass\n",
                            "output_format": "text"},
                "node_empty": {"runner_type": "nodejs", "entry_point": "node_empty.js",
                               "script": "module.exports = () => ({});\n"},
                "sh_true": {"runner_type": "shell", "entry_point": "sh_true.sh", "script": "true\n",
                            "output_format": "text"},
            }, {"requirements.txt": "# no packages: a plain virtualenv\n",
                "package.json": f'{{"name": "{ref}", "version": "1.0.0"}}\n'})
            upload(api, base / ref)
            env = wait_environment(api, ref, timeout=300)
            assert env and env["status"] == "ready", env
            rows = []
            pid = srv.proc.pid
            for label, action, env_vars in (
                    ("shell `true`", f"{ref}.sh_true", None),
                    ("python `pass`, warm (fork server)", f"{ref}.py_pass", None),
                    ("python `pass`, cold (PYTHONDONTWRITEBYTECODE set)", f"{ref}.py_pass",
                     {"PYTHONDONTWRITEBYTECODE": "1"}),
                    ("node.js `() => ({})`", f"{ref}.node_empty", None)):
                run_batch(api, action, 20, args.clients, env_vars)  # warm-up (fork server start, caches)
                c0 = proc_cpu_seconds(pid)
                r = run_batch(api, action, args.n, args.clients, env_vars)
                cpu_ms = 1000.0 * (proc_cpu_seconds(pid) - c0) / args.n
                log(f"{label}: {r['rate']:.0f}/s, p50 duration {r['duration_ms_p50']} ms, "
                    f"{cpu_ms:.1f} ms CPU/execution (server + its children)")
                rows.append((label, r, cpu_ms))
        finally:
            srv.stop(grace=10)

    raw = []
    for label, argv in (("raw posix_spawn `/bin/true`", ["/bin/true"]),
                        ("raw posix_spawn `python3 -c pass`", ["/usr/bin/python3", "-c", "pass"]),
                        ("raw posix_spawn `node -e 0`", ["/usr/bin/node", "-e", "0"])):
        rate, cpu = raw_spawn_rate(argv, args.raw_seconds)
        log(f"{label}: {rate:.0f}/s, {cpu:.1f} ms CPU each")
        raw.append((label, rate, cpu))

    print()
    print(f"| what ({args.n} executions, {args.clients} clients; raw: 2 threads) | completed/s | "
          f"p50 duration_ms | CPU ms/execution |")
    print("|---|---|---|---|")
    for label, r, cpu in rows:
        print(f"| {label} | {r['rate']:.0f} | {r['duration_ms_p50']} | {cpu:.1f} |")
    for label, rate, cpu in raw:
        print(f"| {label} | {rate:.0f} | — | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
