#!/usr/bin/python3
"""Pack install benchmark (issue 14, "Performance"): upload + install of a pack with N actions.

Starts its own `attune serve` (temp data dir, ephemeral ports), builds a pack of --actions shell
actions (each its own YAML and script file) plus one trigger and --rules rules, and measures:

  upload      POST /api/v1/packs/upload of the tar.gz (new ref)      wall time until 201
  reinstall   the same archive again with force=true (ids kept)      wall time until 201
  register    POST /api/v1/packs/register of the same directory      wall time until 201

each --repeat times, and the server's RSS before, after and its peak (VmHWM), plus the server CPU
time per install. Then it runs one action of the pack to show the install is usable.

    /usr/bin/python3 tests/bench/pack_install_bench.py [--actions 500] [--rules 50] [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from attune_e2e import Server, attune_bin  # noqa: E402
from foundation_bench import proc_cpu_s, proc_status  # noqa: E402
from packs_util import register, tar_pack, upload, write_pack  # noqa: E402


def pack_files(ref: str, actions: int, rules: int) -> dict:
    files = {"pack.yaml": f"ref: {ref}\nversion: 1.0.0\nlabel: Bench\n",
             "triggers/tick.yaml": "name: tick\n"}
    for i in range(actions):
        files[f"actions/a{i}.yaml"] = (f"name: a{i}\nrunner_type: shell\nentry_point: a{i}.sh\n"
                                       "parameters:\n  message: {type: string, default: hi}\n"
                                       "  count: {type: integer, minimum: 0}\n")
        files[f"actions/a{i}.sh"] = f"#!/bin/sh\necho action {i}\n"
    for i in range(rules):
        files[f"rules/r{i}.yaml"] = (f"name: r{i}\ntrigger: tick\naction: "
                                     f"{{ref: a{i % actions}, parameters: {{message: '{{{{ trigger.payload.m }}}}'}}}}\n")
    return files


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actions", type=int, default=500)
    ap.add_argument("--rules", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="attune-packbench-") as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        srv = Server(attune_bin(), tmp / "data", tmp / "attune.log",
                     extra_env={"ATTUNE_PACKS_DIR": str(tmp / "src")})
        srv.start()
        try:
            api = srv.admin_client()
            pid = srv.proc.pid
            files = pack_files("bench", args.actions, args.rules)
            executable = tuple(k for k in files if k.endswith(".sh"))
            archive = tar_pack(files, executable=executable)
            write_pack(tmp / "src" / "bench", files, executable=executable)
            print(f"pack: {args.actions} actions, {args.rules} rules, {len(files)} files, "
                  f"archive {len(archive) / 1024:.0f} KiB")
            base = proc_status(pid)
            print(f"server RSS before: {base['VmRSS'] / 1024:.0f} MiB")
            results = {}
            for label in ("upload", "reinstall", "register"):
                times, cpus = [], []
                for r in range(args.repeat):
                    if label == "upload":
                        api.delete("/api/v1/packs/bench")
                    cpu0, t0 = proc_cpu_s(pid), time.perf_counter()
                    if label == "register":
                        resp = register(api, "bench", force=True)
                    else:
                        resp = upload(api, archive, force=(label == "reinstall") or None)
                    elapsed = time.perf_counter() - t0
                    if resp.status_code != 201:
                        print(f"{label}: {resp.status_code} {resp.text[:300]}")
                        return 1
                    times.append(elapsed * 1000)
                    cpus.append((proc_cpu_s(pid) - cpu0) * 1000)
                results[label] = (times, cpus)
                print(f"{label:9s}: median {statistics.median(times):7.1f} ms  "
                      f"min {min(times):7.1f} ms  max {max(times):7.1f} ms  "
                      f"server CPU median {statistics.median(cpus):7.1f} ms")
            end = proc_status(pid)
            print(f"server RSS after: {end['VmRSS'] / 1024:.0f} MiB, peak (VmHWM) {end['VmHWM'] / 1024:.0f} MiB")
            ex = api.execute("bench.a7", {"message": "x"})
            done = api.wait_execution(ex["id"])
            print(f"bench.a7 -> {done['status']}: {done['result']['stdout'].strip()}")
            return 0 if done["status"] == "completed" else 1
        finally:
            srv.stop()


if __name__ == "__main__":
    sys.exit(main())
