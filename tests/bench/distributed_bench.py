#!/usr/bin/python3
"""Distributed-mode benchmark (issues 5, 19): webhook -> rule -> shell `true` -> completed, measured side
by side in one run on (a) the embedded log (one `attune serve`) and (b) Kafka: tests/tools/mock_kafka
(librdkafka's mock cluster in its own process) with api, rules, executor and two workers as separate
`attune serve --broker ... --roles X` processes (tests/e2e/distributed/dist.py).

Completion is observed over the notifier WebSocket (one connection subscribed to enforcements and
executions: an event's enforcement, then that enforcement's execution reaching `completed`), not by
polling the API.

  1. sequential latency: one webhook at a time, POST -> `completed` notification (client-side), and
     event `created` -> execution `updated` from the stored rows (server-side, ms resolution);
     With --hops, the sequential executions' time per hop on Kafka, from the records' create times;
  2. closed loop: C clients (--clients, default 16,64), each posting a webhook (keep-alive) and
     waiting for its execution to complete before posting the next; completed executions/s over
     the whole phase, and the per-execution latency under that load.

    /usr/bin/python3 tests/bench/distributed_bench.py [--latency-n 200] [--closed-n 1600] [--clients 16,64]
        [--binary PATH] [--mock-bin PATH] [--mock-arg=--no-long-poll] [--kafka-config key=value ...]
        [--skip-embedded] [--hops]

Keep the volumes small: the mock keeps ~5 MiB per partition.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import websocket  # python3-websocket (websocket-client)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "e2e" / "distributed"))

import dist  # noqa: E402
from attune_e2e import Server, attune_bin, parse_ts  # noqa: E402
from dist import Cluster  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Tracker:
    """Follows the notifier: event -> enforcement -> execution completed, and wakes the waiter."""

    def __init__(self, ws_url: str, token: str):
        self.cv = threading.Condition()
        self.enf_of_event: dict[int, int] = {}
        self.done_enf: dict[int, float] = {}  # enforcement -> perf_counter() at `completed`
        self.failed: list = []
        self.ws = websocket.create_connection(ws_url + "/ws", header=[f"Authorization: Bearer {token}"])
        self.ws.recv()  # welcome
        for f in ("entity_type:enforcement", "entity_type:execution"):
            self.ws.send(json.dumps({"type": "subscribe", "filter": f}))
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                raw = self.ws.recv()
                if not raw:
                    return
                now = time.perf_counter()
                m = json.loads(raw)
                if m.get("type") != "notification":
                    continue
                ch, p = m["notification_type"], m["payload"]
                if ch == "enforcement_created":
                    with self.cv:
                        self.enf_of_event[p["event"]] = p["id"]
                        self.cv.notify_all()
                elif ch == "execution_status_changed" and p.get("enforcement") is not None:
                    if p["status"] == "completed":
                        with self.cv:
                            self.done_enf[p["enforcement"]] = now
                            self.cv.notify_all()
                    elif p["status"] in ("failed", "timeout", "abandoned", "cancelled"):
                        with self.cv:
                            self.failed.append(p)
                            self.done_enf[p["enforcement"]] = now
                            self.cv.notify_all()
        except Exception as e:  # closed at the end, or broken
            self.error = e
            with self.cv:
                self.cv.notify_all()

    def wait(self, event_id: int, timeout: float = 60.0) -> tuple[int, float]:
        """The enforcement of `event_id` and when its execution completed."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                enf = self.enf_of_event.get(event_id)
                if enf is not None and enf in self.done_enf:
                    return enf, self.done_enf[enf]
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    raise RuntimeError(f"event {event_id}: no completed execution "
                                       f"(enforcement {enf}, ws error {self.error!r})")
                self.cv.wait(left)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def cpu_ms(pids: dict) -> dict:
    """utime + stime of each process (ms)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(f[11]) + int(f[12])) * 1000 / tick
        except (OSError, IndexError, ValueError):
            out[name] = float("nan")
    return out


def run(srv, latency_n, closed_n, clients_list, after_sequential=None, pids=None):
    api = srv.admin_client()
    tr = Tracker(srv.ws_url, api.token)
    try:
        return measure(api, tr, latency_n, closed_n, clients_list, after_sequential, pids or {})
    finally:
        tr.close()
        if tr.failed:
            print(f"  ! {len(tr.failed)} executions ended other than completed: {tr.failed[:3]}")


def measure(api, tr, latency_n, closed_n, clients_list, after_sequential, pids):
    flow = api.webhook_flow("true")
    url = api.url(f"/api/v1/webhooks/{flow.key}")
    session = requests.Session()

    def fire(s, i):
        r = s.post(url, json={"payload": {"i": i}}, timeout=30)
        r.raise_for_status()
        return r.json()["data"]["event_id"]

    # Warm up (group joins on Kafka take seconds; first spawns).
    for i in range(20):
        tr.wait(fire(session, -i), timeout=120)
    out = {}
    client_ms, pairs = [], []
    for i in range(latency_n):
        t0 = time.perf_counter()
        ev = fire(session, i)
        enf, t1 = tr.wait(ev)
        client_ms.append((t1 - t0) * 1000)
        pairs.append((ev, enf))
    server_ms = []
    for ev, enf in pairs:
        e = api.get_data(f"/api/v1/events/{ev}")
        x = api.items("/api/v1/executions", enforcement=enf)[0]
        server_ms.append((parse_ts(x["updated"]) - parse_ts(e["created"])).total_seconds() * 1000)
    if after_sequential:
        after_sequential({ev for ev, _ in pairs})
    out.update(client_p50=pct(client_ms, 50), client_p99=pct(client_ms, 99),
               server_p50=pct(server_ms, 50), server_p99=pct(server_ms, 99))

    for clients in clients_list:
        per = max(1, closed_n // clients)
        lat: list[float] = []
        lock = threading.Lock()
        errors: list = []

        def client(k):
            s = requests.Session()
            mine = []
            try:
                for i in range(per):
                    t0 = time.perf_counter()
                    ev = fire(s, k * 1_000_000 + i)
                    _, t1 = tr.wait(ev)
                    mine.append((t1 - t0) * 1000)
            except Exception as e:
                errors.append(e)
            with lock:
                lat.extend(mine)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        cpu0 = cpu_ms(pids)
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        cpu1 = cpu_ms(pids)
        out[f"cpu{clients}"] = {n: (cpu1[n] - cpu0[n]) / (clients * per) for n in pids}
        if errors:
            raise RuntimeError(f"{clients} clients: {errors[0]!r}")
        out[f"rate{clients}"] = clients * per / took
        out[f"lat{clients}_p50"] = pct(lat, 50)
        out[f"lat{clients}_p99"] = pct(lat, 99)
    return out


HOPS = ["event", "requested", "dispatch", "result.running", "running", "result.finished", "completed"]


def hops(bootstrap: str, events: set) -> None:
    """Per-hop times of the sequential executions, from the create time of each record on the
    broker (read back with a plain consumer): which stage a record waits for."""
    from confluent_kafka import Consumer, TopicPartition  # python3-confluent-kafka
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "distributed-bench-hops",
                  "enable.auto.commit": False, "log_level": 3})
    want = {}
    for t in ("attune.events", "attune.enforcements", "attune.commands", "attune.dispatch",
              "attune.results", "attune.executions"):
        for p in c.list_topics(t, timeout=10).topics[t].partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            if hi > lo:
                want[(t, p)] = hi
    c.assign([TopicPartition(t, p, 0) for t, p in want])
    at: dict = {}  # execution id -> {hop: ms}
    event_ts, enf_event = {}, {}
    deadline = time.monotonic() + 60
    while want and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        if m.offset() + 1 >= want.get((m.topic(), m.partition()), 1 << 62):
            del want[(m.topic(), m.partition())]
        try:
            rec = json.loads(m.value())
        except ValueError:
            continue
        ts, typ, pl = m.timestamp()[1], rec.get("type"), rec.get("payload") or {}
        if typ == "event.created":
            event_ts[pl["id"]] = ts
        elif typ == "enforcement.created":
            enf_event[pl["id"]] = pl["event"]
        elif typ == "execution.requested":
            x = pl["execution"]
            at.setdefault(x["id"], {}).update(requested=ts, enforcement=x.get("enforcement"))
        elif typ == "execution.dispatch":
            at.setdefault(pl["execution"]["id"], {})["dispatch"] = ts
        elif typ in ("result.running", "result.finished"):
            at.setdefault(pl["id"], {})[typ] = ts
        elif typ == "execution.updated" and pl.get("status") in ("running", "completed"):
            at.setdefault(pl["id"], {})[pl["status"]] = ts
    c.close()
    rows = []
    for h in at.values():
        ev = enf_event.get(h.get("enforcement"))
        if ev in events and ev in event_ts and all(k in h for k in HOPS[1:]):
            h["event"] = event_ts[ev]
            rows.append(h)
    print(f"hops of {len(rows)} sequential executions (record create times, ms):")
    for a, b in zip(HOPS, HOPS[1:]):
        d = [h[b] - h[a] for h in rows]
        print(f"  {a:>15} -> {b:<15} p50 {pct(d, 50):5.0f}  p90 {pct(d, 90):5.0f}  max {max(d):5.0f}")
    d = [h["completed"] - h["event"] for h in rows]
    print(f"  {'event':>15} -> {'completed':<15} p50 {pct(d, 50):5.0f}  p90 {pct(d, 90):5.0f}  max {max(d):5.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--closed-n", type=int, default=1600, help="executions per closed-loop phase")
    ap.add_argument("--clients", default="16,64")
    ap.add_argument("--binary", help="attune binary (default: ATTUNE_BIN or the build)")
    ap.add_argument("--mock-bin", help="mock_kafka binary (default: ATTUNE_MOCK_KAFKA or next to the binary)")
    ap.add_argument("--mock-arg", action="append", default=[], help="extra mock_kafka argument")
    ap.add_argument("--kafka-config", action="append", default=[], help="extra --kafka-config for every role")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--hops", action="store_true",
                    help="after the Kafka run: per-hop times of the sequential executions")
    a = ap.parse_args()
    if a.binary:
        a.binary = str(Path(a.binary).resolve())
        os.environ["ATTUNE_BIN"] = a.binary
        if not os.environ.get("ATTUNE_MOCK_KAFKA"):
            dist.MOCK_BIN = Path(a.binary).parents[2] / "tests" / "tools" / "mock_kafka" / "mock_kafka"
    if a.mock_bin:
        dist.MOCK_BIN = Path(a.mock_bin).resolve()
    clients_list = [int(c) for c in a.clients.split(",") if c]
    dist.KAFKA_TEST_CONFIG = dist.KAFKA_TEST_CONFIG + a.kafka_config
    print(f"binary {attune_bin()}  mock {dist.MOCK_BIN} {' '.join(a.mock_arg)}  "
          f"load average before: {loadavg()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="attune-dist-bench-"))
    emb = None
    if not a.skip_embedded:
        srv = Server(attune_bin(), base / "embedded" / "data", base / "embedded.log")
        srv.start()
        try:
            emb = run(srv, a.latency_n, a.closed_n, clients_list, pids={"attune": srv.proc.pid})
        finally:
            srv.stop()
        print(f"embedded done, load average {loadavg()}", flush=True)
    (base / "kafka").mkdir()
    cluster = Cluster(base / "kafka", mock_args=tuple(a.mock_arg))
    cluster.start()
    try:
        pids = {"mock_kafka": cluster.broker.proc.pid}
        pids.update({n: p.proc.pid for n, p in cluster.procs.items()})
        kaf = run(cluster.procs["api"], a.latency_n, a.closed_n, clients_list,
                  (lambda evs: hops(cluster.broker.bootstrap, evs)) if a.hops else None, pids)
    finally:
        cluster.stop()
    print(f"kafka done, load average {loadavg()}  (logs in {base})", flush=True)
    rows = [("server_p50", "sequential p50 server-side (ms)"), ("server_p99", "sequential p99 server-side (ms)"),
            ("client_p50", "sequential p50 client-side (ms)"), ("client_p99", "sequential p99 client-side (ms)")]
    for c in clients_list:
        rows += [(f"rate{c}", f"{c} closed-loop clients: executions/s"),
                 (f"lat{c}_p50", f"{c} clients: latency p50 (ms)"), (f"lat{c}_p99", f"{c} clients: latency p99 (ms)")]
    print(f"{'metric':42} {'embedded':>10} {'kafka(mock)':>12} {'kafka/emb':>10}")
    for k, label in rows:
        e = emb[k] if emb else float("nan")
        print(f"{label:42} {e:10.1f} {kaf[k]:12.1f} {kaf[k] / e if emb else float('nan'):10.2f}")
    for c in clients_list:
        parts = [f"embedded {sum(emb[f'cpu{c}'].values()):.2f}"] if emb else []
        parts.append(f"kafka {sum(kaf[f'cpu{c}'].values()):.2f} = " +
                     " + ".join(f"{n} {v:.2f}" for n, v in kaf[f"cpu{c}"].items()))
        print(f"{c} clients: server CPU ms per execution: " + "; ".join(parts))


if __name__ == "__main__":
    main()
