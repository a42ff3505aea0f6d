#!/usr/bin/python3
"""Distributed-mode benchmark (issue 5): webhook -> rule -> shell `true` -> completed, measured side by
side in one run on (a) the embedded log (one `attune serve`) and (b) Kafka: tests/tools/mock_kafka (librdkafka's
mock cluster in its own process) with api, rules, executor and worker as four separate processes.

  1. latency webhook POST -> execution `completed`, one at a time (server-side: event `created` ->
     execution `updated` timestamps; client-side: POST until the API reports completed, polled every 2 ms);
  2. sustained completed executions/s: N webhooks sent by 4 client threads, time until all completed.

    /usr/bin/python3 tests/bench/distributed_bench.py [--latency-n 100] [--burst-n 400]

Keep --burst-n small: the mock keeps ~5 MiB per partition.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "e2e" / "distributed"))

from attune_e2e import Server, attune_bin, parse_ts, random_password  # noqa: E402
from dist import Cluster  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(api, latency_n, burst_n):
    flow = api.webhook_flow("true")
    # Warm up (group joins on Kafka take seconds).
    api.fire(flow.key, {"warm": 1})
    api.wait_rule_executions(flow.rule_ref, 1, timeout=60)
    client_ms, server_ms = [], []
    for i in range(latency_n):
        t0 = time.perf_counter()
        ev = api.fire(flow.key, {"i": i})["event_id"]
        while True:
            enfs = api.items("/api/v1/enforcements", event=ev)
            exs = api.items("/api/v1/executions", enforcement=enfs[0]["id"]) if enfs else []
            if exs and exs[0]["status"] == "completed":
                client_ms.append((time.perf_counter() - t0) * 1000)
                e = api.get_data(f"/api/v1/events/{ev}")
                server_ms.append((parse_ts(exs[0]["updated"]) - parse_ts(e["created"])).total_seconds() * 1000)
                break
            time.sleep(0.002)
    flow2 = api.webhook_flow("true")
    api.fire(flow2.key, {"warm": 1})
    api.wait_rule_executions(flow2.rule_ref, 1, timeout=60)
    t0 = time.perf_counter()

    def send(k):
        for i in range(k):
            api.fire(flow2.key, {"i": i})
    threads = [threading.Thread(target=send, args=(burst_n // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = 1 + 4 * (burst_n // 4)
    deadline = time.monotonic() + 300
    while api.list("/api/v1/executions", rule_ref=flow2.rule_ref, status="completed")["pagination"]["total_items"] < want:
        assert time.monotonic() < deadline, "executions did not complete"
        time.sleep(0.005)
    rate = 4 * (burst_n // 4) / (time.perf_counter() - t0)
    return {"client_p50": pct(client_ms, 50), "client_p99": pct(client_ms, 99),
            "server_p50": pct(server_ms, 50), "server_p99": pct(server_ms, 99), "rate": rate}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-n", type=int, default=100)
    ap.add_argument("--burst-n", type=int, default=400)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="attune-dist-bench-"))
    srv = Server(attune_bin(), base / "embedded" / "data", base / "embedded.log")
    srv.start()
    try:
        emb = run(srv.admin_client(), a.latency_n, a.burst_n)
    finally:
        srv.stop()
    (base / "kafka").mkdir()
    cluster = Cluster(base / "kafka")
    cluster.start()
    try:
        kaf = run(cluster.procs["api"].admin_client(), a.latency_n, a.burst_n)
    finally:
        cluster.stop()
    print(f"{'metric':34} {'embedded':>10} {'kafka(mock)':>12} {'kafka/emb':>10}")
    for k, label in [("server_p50", "latency p50 server-side (ms)"), ("server_p99", "latency p99 server-side (ms)"),
                     ("client_p50", "latency p50 client-side (ms)"), ("client_p99", "latency p99 client-side (ms)"),
                     ("rate", "sustained executions/s")]:
        print(f"{label:34} {emb[k]:10.1f} {kaf[k]:12.1f} {kaf[k] / emb[k]:10.2f}")


if __name__ == "__main__":
    main()
