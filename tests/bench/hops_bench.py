#!/usr/bin/python3
"""Hops and writes per execution (issue 19): what one webhook -> rule -> shell `true` -> completed costs
in RocksDB writes, counted from the write-ahead log.

Starts its own `attune serve` (embedded log), sends N webhooks at a light rate (so stages do not batch:
the per-execution cost of the sequential case), waits for every `completed` on the notifier, then reads
the data directory's WAL with RocksDB's `ldb dump_wal` (Debian package rocksdb-tools) before and after:
write batches (= commits reaching RocksDB) per execution, and puts/deletes per execution per column
family (store), named from `ldb list_column_families`.

    /usr/bin/python3 tests/bench/hops_bench.py [--bin build/api/cli/attune] [--n 200] [--rate 20]
"""
import argparse, asyncio, collections, glob, re, shutil, subprocess, sys, tempfile
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "e2e"))
import foundation_bench as fb


def wal_ops(data: Path):
    puts = collections.Counter(); dels = collections.Counter(); writes = 0
    for wal in sorted(glob.glob(str(data / "**" / "*.log"), recursive=True)):
        out = subprocess.run(["ldb", "dump_wal", f"--walfile={wal}", "--print_value=false", "--header=false"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            writes += 1
            for m in re.finditer(r"(PUT|DELETE|SINGLE_DELETE|DELETE_RANGE)\(([0-9]+)\)", line):
                (puts if m.group(1) == "PUT" else dels)[int(m.group(2))] += 1
    return puts, dels, writes


async def main(args):
    if not shutil.which("ldb"):
        sys.exit("hops_bench: needs RocksDB's ldb (apt-get install rocksdb-tools)")
    tmp = Path(tempfile.mkdtemp(prefix="walc-"))
    srv = fb.BenchServer(Path(args.bin), tmp / "data", tmp / "server.log")
    srv.start()
    client = srv.admin_client()
    tr = fb.Tracker(); stop = asyncio.Event(); ready = asyncio.Event()
    ws_task = asyncio.create_task(fb.ws_reader(srv.ws_url, client.token, tr, ready, stop))
    await asyncio.wait_for(ready.wait(), 10)
    drv = fb.Driver(srv.api_url, tr, 8)
    flow = client.webhook_flow("true", prefix="walc")
    await asyncio.sleep(1)
    p0, d0, w0 = wal_ops(tmp / "data")
    r = await drv.run(flow.key, args.rate, args.n / args.rate, "x")
    await fb.wait_drain(tr, r["events"], 30)
    await asyncio.sleep(1)
    p1, d1, w1 = wal_ops(tmp / "data")
    n = len(r["events"])
    stop.set(); await ws_task
    srv.stop()
    print(f"{n} executions at {args.rate}/s: WAL write batches/exec {(w1-w0)/n:.1f}, "
          f"puts/exec {(sum(p1.values())-sum(p0.values()))/n:.1f}, deletes/exec {(sum(d1.values())-sum(d0.values()))/n:.1f}")
    out = subprocess.run(["ldb", f"--db={tmp / 'data' / 'db'}", "list_column_families"],
                         capture_output=True, text=True).stdout
    names = re.findall(r"[\w.]+", out.split("{", 1)[-1]) if "{" in out else []
    for cf in sorted(set(p1) | set(d1)):
        name = names[cf] if cf < len(names) else "?"
        print(f"  {cf:2d} {name:22s} puts {(p1[cf]-p0[cf])/n:6.2f}  deletes {(d1[cf]-d0[cf])/n:5.2f}")
    print("(column family ids follow creation order; the names are those of ldb's list, which is that order for")
    print(" a data directory created by this run)")
    if args.keep:
        print("data dir", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=str(HERE.parents[1] / "build" / "api" / "cli" / "attune"))
ap.add_argument("--keep", action="store_true", help="keep the data directory")
ap.add_argument("--n", type=int, default=200)
ap.add_argument("--rate", type=float, default=20)
asyncio.run(main(ap.parse_args()))
