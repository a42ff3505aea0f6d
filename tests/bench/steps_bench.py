#!/usr/bin/python3
"""Where a webhook's execution spends its time (issue 19): the steps of one execution at a time, and
attune's CPU and context switches per execution at fixed open-loop rates.

Starts its own `attune serve` (embedded log, temp data dir, ephemeral ports) with a webhook → rule →
inline shell `true` flow, then
  1. N webhooks one at a time (each waits for its `completed`): p50/p90 of POST → enforcement_created
     → scheduled → running → completed, from the arrival times of the notifier's frames;
  2. for each rate R in --rates: open-loop webhooks at R/s for --seconds, then attune's CPU per
     execution (utime+stime of the process, without the actions), the actions' CPU, and context
     switches per execution (all of attune's threads).

    /usr/bin/python3 tests/bench/steps_bench.py [--bin build/api/cli/attune] [--n 200] [--rates 50,400]
"""
import argparse, asyncio, shutil, sys, tempfile
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "e2e"))
import foundation_bench as fb

STEPS = ["POST -> enforcement_created", "-> scheduled", "-> running", "-> completed", "total"]


def steps_ms(tr: fb.Tracker, ev: int) -> list[float]:
    enf = tr.enf_of_event[ev]
    times = [tr.sent[ev], tr.t_enf[enf], tr.t_status[(enf, "scheduled")],
             tr.t_status[(enf, "running")], tr.done_of_enf[enf]]
    return [(b - a) * 1000 for a, b in zip(times, times[1:])] + [(times[-1] - times[0]) * 1000]


async def main(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="steps-"))
    srv = fb.BenchServer(Path(args.bin).resolve(), tmp / "data", tmp / "server.log")
    srv.start()
    stop = asyncio.Event()
    ws_task = None
    try:
        client = srv.admin_client()
        tr = fb.Tracker()
        ready = asyncio.Event()
        ws_task = asyncio.create_task(fb.ws_reader(srv.ws_url, client.token, tr, ready, stop))
        await asyncio.wait_for(ready.wait(), 10)
        flow = client.webhook_flow("true", prefix="steps")
        one = fb.Driver(srv.api_url, tr, 1)
        warm = await one.run(flow.key, 20, 2, "warm-up")
        await fb.wait_drain(tr, warm["events"], 30)

        rows = []
        for i in range(args.n):
            r = await one.run(flow.key, 1000, 0.001, f"one-{i}")  # exactly one webhook
            await fb.wait_drain(tr, r["events"], 10)
            rows += [steps_ms(tr, ev) for ev in r["events"]]
        print(f"{len(rows)} executions one at a time (load {fb.loadavg()}), p50 / p90 ms:")
        for j, name in enumerate(STEPS):
            col = [r[j] for r in rows]
            print(f"  {name:28s} {fb.pct(col, 50):6.2f} / {fb.pct(col, 90):6.2f}")

        pid = srv.proc.pid
        for rate in args.rates:
            drv = fb.Driver(srv.api_url, tr, args.conns)
            cpu0, ch0, cs0 = fb.proc_cpu_s(pid), fb.proc_cpu_s(pid, children=True), fb.ctx_switches(pid)
            r = await drv.run(flow.key, rate, args.seconds, f"rate-{rate:g}")
            await fb.wait_drain(tr, r["events"], 60)
            cpu1, ch1, cs1 = fb.proc_cpu_s(pid), fb.proc_cpu_s(pid, children=True), fb.ctx_switches(pid)
            n = len(r["events"])
            print(f"open loop {rate:g}/s for {args.seconds:g} s ({n} executions, load {fb.loadavg()}): "
                  f"attune CPU {1000 * (cpu1 - cpu0) / n:.2f} ms/execution, actions "
                  f"{1000 * (ch1 - ch0 - (cpu1 - cpu0)) / n:.2f} ms, "
                  f"context switches {(cs1 - cs0) / n:.0f}/execution")
        return 0
    finally:
        stop.set()
        if ws_task is not None:
            await ws_task
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--bin", default=str(HERE.parents[1] / "build" / "api" / "cli" / "attune"))
ap.add_argument("--n", type=int, default=200, help="executions one at a time")
ap.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[50.0, 400.0])
ap.add_argument("--seconds", type=float, default=8)
ap.add_argument("--conns", type=int, default=64, help="HTTP connections of the open-loop driver")
sys.exit(asyncio.run(main(ap.parse_args())))
