#!/usr/bin/python3
"""Overload soak benchmark (issue "the server aborts under sustained webhook load").

Starts its own `attune serve` (embedded log, temp data dir, ephemeral ports, via tests/e2e/attune_e2e.py),
creates a pack, an inline shell action `true`, a webhook trigger and a rule (like foundation_bench.py), then
measures how the server behaves when it is offered more webhooks than it can complete:

  1. Calibration (skipped with --rate): a closed-loop flood for --calibrate-seconds: --clients HTTP clients,
     each on its own keep-alive requests.Session in its own thread, the threads spread over --sender-procs
     processes (default: one per CPU, at least 2), post the next webhook as soon as the previous one is
     answered. The sustainable rate is the number of executions completed per second in that window (from the
     executions' `updated` timestamps read back over the API), after a short warm-up.
     The backlog is then drained ("settle") before the flood.
  2. Flood for --flood-seconds: closed loop (--mode closed: as fast as the clients can go) or open loop paced
     at --rate-factor x the sustainable rate, spread over the client threads (--mode open; one schedule, process
     p of P sending its slots p, p + P, ...; --open-clients threads, by default enough to keep the schedule
     while an answer takes up to 50 ms on average; each has one request in flight, so the summary shows the
     rate actually sent, its ratio to the offered rate and how far behind schedule the senders fell).
     Then the drain: nothing more is sent, and the bench waits (at most --drain-timeout) until every accepted
     webhook's execution has finished.
  3. Throughout, a well-behaved notifier subscriber (websocket-client, own process, `entity_type:execution`)
     records every frame's arrival time (taken right after the frame is read, before JSON parsing), status,
     execution id, payload `updated` and the frame's `timestamp` (the server's publish time, API.md §17.4), and
     hands them to the bench in batches. Frame delay = arrival - updated = server part (timestamp - updated)
     + delivery part (arrival - timestamp: the server's send path, the kernel and the subscriber). A slow
     subscriber (--slow-subscriber, default on) subscribes to `all` and never reads: the bench watches its TCP
     socket (/proc/net/tcp queues and state, poll for hang-up) to see whether and when the server drops it,
     and reads its close frame (code, reason) only at the end.
  4. Every --sample-seconds: accepted webhooks (2xx answers) and accepted/s, completions seen on the
     WebSocket and per second, completed executions according to the API
     (GET /api/v1/executions?status=completed&page_size=1 -> pagination.total_items) and how long that call
     took, backlog = accepted - completed(API), attune VmRSS, data dir size, frame delay and its server and
     delivery parts (p50/p99/max of the frames that arrived in the interval), how far the open loop's senders
     were behind schedule, the subscriber's socket queues (KiB waiting in our receive queue / in the server's
     send queue: non-zero on our side means the delay is the driver's, not the server's) and the slow
     subscriber's state. The senders' and the subscriber's records reach the bench in batches (every 0.1 s),
     so after the run the client-side columns are recomputed from the complete records (the live log lines are
     approximate).
  5. After the drain: every execution is read back (GET /api/v1/executions in created_after/created_before
     windows, page_size 100) to get the true completion series. From it: the projection lag of each sample
     (count lag = truly completed at the end of the sample's API call - the API's count; time lag = age of the
     oldest completion the API did not count yet, 0 when it was caught up), completed/s during the flood vs
     the calibration baseline (the issue requires >= 0.5), executions lost (accepted but no execution, or not
     completed after the drain) or doubled.

Prints the samples as a markdown table (paste into tests/bench/README.md) and a summary. Exits non-zero only on
errors (server died or did not exit 0 on SIGTERM, executions lost or doubled, drain timed out, the bench itself
failed), never because a latency or throughput target is missed. Every loop is bounded in count and time.
The driver's processes (senders, subscriber, the bench with the sampler) each have their own GIL but share the
machine's cores with the server; their CPU use (whole run, and per process during the flood) is printed so the
numbers can be judged.

    /usr/bin/python3 tests/bench/overload_bench.py --quick    # ~50 s: 8 s calibration, 15 s closed-loop
                                                              # flood, drain, 1 s samples
    /usr/bin/python3 tests/bench/overload_bench.py            # soak: 15 s calibration, open loop at 2 x the
                                                              # sustainable rate for 600 s, drain (<= 900 s),
                                                              # 5 s samples
    # variants: --mode open|closed, --rate 400 (skip calibration), --rate-factor 1.5, --clients 32,
    #           --open-clients 128, --sender-procs 4,
    #           --flood-seconds 120, --binary PATH (or ATTUNE_BIN), --serve-arg=--http-threads=8 (repeatable),
    #           --no-slow-subscriber, --csv samples.csv, --table-every 6, --keep (keep the data dir and log)

Needs /usr/bin/python3 with python3-requests and python3-websocket (websocket-client).
"""
from __future__ import annotations

import argparse
import bisect
import calendar
import csv
import itertools
import json
import math
import multiprocessing as mp
import os
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from datetime import datetime, timedelta, timezone
from multiprocessing import connection as mpc
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

import requests  # noqa: E402
import websocket  # noqa: E402  (python3-websocket: websocket-client)

from attune_e2e import ALL_STATUSES, TERMINAL, attune_bin, jwt_claims, mint_jwt, parse_ts, rfc3339  # noqa: E402
from foundation_bench import EVENT_ID_RE, BenchServer, loadavg, log, pct, proc_cpu_s, proc_status  # noqa: E402

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING"}
POST_HEADERS = {"Content-Type": "application/json"}
STATUSES = list(ALL_STATUSES)
STATUS_IX = {s: i for i, s in enumerate(STATUSES)}


class BenchError(Exception):
    pass


class ServerDied(BenchError):
    pass


def iso_ms(ms: int) -> str:
    """RFC 3339 with milliseconds for an integer count of ms since the epoch (exact, no float rounding)."""
    return rfc3339(EPOCH + timedelta(milliseconds=ms))


def ts_epoch(s: str) -> float:
    return parse_ts(s).timestamp()


def fmt(v, spec: str = ".0f", none: str = "—") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, spec)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass  # RocksDB deleted it meanwhile
    return total


def close_info(data: bytes, t: float) -> dict:
    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
    return {"t": t, "code": code, "reason": data[2:].decode("utf-8", "replace")}


def signal_name(code) -> str:
    if code is None:
        return "?"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# ------------------------------------------------------------------------------------------- helper processes
#
# The senders and the well-behaved subscriber run in their own processes (multiprocessing, 'spawn': a fresh
# interpreter that imports this file as a module, so nothing below main() runs there), each with its own GIL.
# They talk to the bench over one-way pipes: commands in, batches of measurements out (every FLUSH_S).

MP = mp.get_context("spawn")
FLUSH_S = 0.1
NAN = float("nan")
COMPLETED_IX = STATUS_IX["completed"]
_TS_BASE: dict = {}


def ts_or_nan(s) -> float:
    """Epoch seconds of an RFC 3339 `...T..:..:..[.mmm]Z` string (NaN if it is not one); cached per second."""
    if not isinstance(s, str):
        return NAN
    if len(s) == 24 and s[19] == "." and s[23] == "Z":
        base = _TS_BASE.get(s[:19])
        if base is None:
            if len(_TS_BASE) > 100000:
                _TS_BASE.clear()
            try:
                base = _TS_BASE[s[:19]] = float(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")))
            except ValueError:
                return NAN
        try:
            return base + int(s[20:23]) / 1000.0
        except ValueError:
            return NAN
    try:
        return ts_epoch(s)
    except ValueError:
        return NAN


def _child_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle; it ends us


class _SenderPhase:
    """One phase (calibration or flood) inside a sender process: its threads and what they measured."""

    def __init__(self, p, nprocs, url, sessions, timeout, counter, mode, rate, t0_mono, t_end_mono):
        self.p, self.nprocs, self.url, self.sessions, self.timeout = p, nprocs, url, sessions, timeout
        self.counter, self.mode, self.rate, self.t0, self.t_end = counter, mode, rate, t0_mono, t_end_mono
        self.sched = itertools.count(0)  # this process's slots: global slot j * nprocs + p
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()
        self.max_behind = 0.0
        self.t_last_post = None          # time.time() when the last post of the phase was sent
        self._new()

    def _new(self) -> None:
        self.ack_t = array("d")          # time.time() of every 2xx answer
        self.http_ms = array("f")        # its response time
        self.event_ids = array("q")
        self.no_event_id = 0
        self.errors: Counter = Counter()
        self.error_samples: list = []
        self.ival_behind = 0.0           # max lag behind schedule since the last batch

    def take(self, done: bool) -> tuple:
        with self.lock:
            b = {"p": self.p, "ack_t": self.ack_t, "http_ms": self.http_ms, "event_ids": self.event_ids,
                 "no_event_id": self.no_event_id, "errors": dict(self.errors), "error_samples": self.error_samples,
                 "behind": self.ival_behind, "max_behind": self.max_behind, "t_last_post": self.t_last_post,
                 "done": done}
            self._new()
        return ("batch", b)

    def _error(self, key: str, detail: str) -> None:
        with self.lock:
            self.errors[key] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(detail[:300])

    def worker(self, s) -> None:
        P, p = self.nprocs, self.p
        while not self.stop_evt.is_set():
            if self.mode == "open":
                target = self.t0 + (next(self.sched) * P + p) / self.rate
                if target >= self.t_end:
                    return
                now = time.monotonic()
                if target > now and self.stop_evt.wait(target - now):
                    return
                lag = time.monotonic() - target  # measured when the post really goes out
                if lag > self.ival_behind:
                    self.ival_behind = lag
                    if lag > self.max_behind:
                        self.max_behind = lag
            elif time.monotonic() >= self.t_end:
                return
            body = b'{"payload": {"n": %d}}' % (next(self.counter) * P + p + 1)
            self.t_last_post = time.time()
            t0 = time.monotonic()
            try:
                r = s.post(self.url, data=body, headers=POST_HEADERS, timeout=self.timeout)
            except requests.RequestException as e:
                self._error(type(e).__name__, f"{type(e).__name__}: {e}")
                self.stop_evt.wait(0.05)  # do not spin when the server is gone
                continue
            ms = (time.monotonic() - t0) * 1000.0
            if 200 <= r.status_code < 300:
                m = EVENT_ID_RE.search(r.content)
                with self.lock:
                    self.ack_t.append(time.time())
                    self.http_ms.append(ms)
                    if m:
                        self.event_ids.append(int(m.group(1)))
                    else:
                        self.no_event_id += 1
            else:
                self._error(f"HTTP {r.status_code}", f"HTTP {r.status_code}: {r.text[:200]}")

    def run(self, cmd, out) -> bool:
        """Runs the phase, sending a batch every FLUSH_S and a final one (done). True if told to exit."""
        threads = [threading.Thread(target=self.worker, args=(s,), daemon=True, name=f"sender-{self.p}.{k}")
                   for k, s in enumerate(self.sessions)]
        for t in threads:
            t.start()
        exit_after = False
        next_flush = time.monotonic() + FLUSH_S
        while any(t.is_alive() for t in threads):
            try:
                if cmd.poll(max(0.0, next_flush - time.monotonic())):
                    what = cmd.recv()[0]
                    exit_after = exit_after or what == "exit"
                    self.stop_evt.set()
            except (EOFError, OSError):  # the bench is gone
                self.stop_evt.set()
                exit_after = True
            if time.monotonic() >= next_flush:
                out.send(self.take(False))
                next_flush = time.monotonic() + FLUSH_S
        for t in threads:
            t.join()
        out.send(self.take(True))
        return exit_after


def sender_process(p: int, nprocs: int, url: str, threads: int, timeout: float, cmd, out) -> None:
    """Entry point of sender process p of nprocs: one keep-alive session per thread, kept across phases (a
    phase with more threads than before adds sessions)."""
    _child_init()
    sessions = [requests.Session() for _ in range(threads)]
    counter = itertools.count(0)  # payload n = k * nprocs + p + 1: unique over the run
    try:
        out.send(("ready", p))
        while True:
            msg = cmd.recv()
            if msg[0] == "exit":
                return
            if msg[0] == "start":
                _, mode, rate, t0_mono, t_end_mono, n = msg
                sessions.extend(requests.Session() for _ in range(n - len(sessions)))
                ph = _SenderPhase(p, nprocs, url, sessions[:n], timeout, counter, mode, rate, t0_mono, t_end_mono)
                if ph.run(cmd, out):
                    return
    except (EOFError, OSError):  # the bench is gone
        return


class Load:
    """Webhook senders: `clients` threads spread over `procs` processes (CLOCK_MONOTONIC is shared, so the open
    loop's schedule is one: process p sends global slots p, p + procs, ...), each thread with its own keep-alive
    requests.Session. What they measure comes back in batches and is merged here (arrays in arrival order of the
    batches; ack_t is therefore only nearly sorted)."""

    def __init__(self, url: str, clients: int, procs: int, timeout: float):
        self.url, self.clients, self.timeout = url, clients, timeout
        n = self.nprocs = max(1, min(procs, clients))
        self.shares = self.split(clients)
        self.lock = threading.Lock()
        self.ack_t = array("d")
        self.http_ms = array("f")
        self.event_ids = array("q")
        self.no_event_id = 0
        self.errors: Counter = Counter()
        self.error_samples: list[str] = []
        self.max_behind = 0.0
        self.t_last_post = None
        self._ival_behind = 0.0
        self.pending: set = set()
        self.dead: dict = {}           # p -> description (a sender process that ended unexpectedly)
        self.closing = False
        self.procs, self.cmds, outs = [], [], []
        for p in range(n):
            cmd_r, cmd_w = MP.Pipe(duplex=False)
            out_r, out_w = MP.Pipe(duplex=False)
            pr = MP.Process(target=sender_process, args=(p, n, url, self.shares[p], timeout, cmd_r, out_w),
                            name=f"sender-{p}", daemon=True)
            pr.start()
            cmd_r.close()
            out_w.close()
            self.procs.append(pr)
            self.cmds.append(cmd_w)
            outs.append(out_r)
        for p, c in enumerate(outs):
            if not c.poll(60):
                self.close()
                raise BenchError(f"sender process {p} not ready within 60 s")
            msg = c.recv()
            if msg != ("ready", p):
                self.close()
                raise BenchError(f"sender process {p}: unexpected first message {msg!r}")
        self.reader = threading.Thread(target=self._reader, args=(outs,), daemon=True, name="sender-reader")
        self.reader.start()

    def split(self, clients: int) -> list:
        """Threads per process for `clients` threads in all."""
        n = self.nprocs
        return [clients // n + (1 if i < clients % n else 0) for i in range(n)]

    def pids(self) -> list:
        return [pr.pid for pr in self.procs]

    def cpu_s(self) -> list:
        out = []
        for pid in self.pids():
            try:
                out.append(proc_cpu_s(pid))
            except (OSError, ValueError, IndexError):
                out.append(None)
        return out

    def _reader(self, outs) -> None:
        conns = {c: p for p, c in enumerate(outs)}
        while conns:
            for c in mpc.wait(list(conns)):
                try:
                    kind, b = c.recv()
                except (EOFError, OSError):
                    p = conns.pop(c)
                    with self.lock:
                        self.pending.discard(p)
                        if not self.closing:
                            code = self.procs[p].exitcode
                            self.dead[p] = f"sender process {p} ended unexpectedly ({signal_name(code)})"
                    continue
                if kind == "batch":
                    self._merge(b)

    def _merge(self, b: dict) -> None:
        with self.lock:
            self.ack_t.extend(b["ack_t"])
            self.http_ms.extend(b["http_ms"])
            self.event_ids.extend(b["event_ids"])
            self.no_event_id += b["no_event_id"]
            self.errors.update(b["errors"])
            self.error_samples.extend(b["error_samples"][:max(0, 10 - len(self.error_samples))])
            self.max_behind = max(self.max_behind, b["max_behind"])
            self._ival_behind = max(self._ival_behind, b["behind"])
            if b["t_last_post"] is not None:
                self.t_last_post = max(self.t_last_post or 0.0, b["t_last_post"])
            if b["done"]:
                self.pending.discard(b["p"])

    def accepted(self) -> int:
        return len(self.ack_t)

    def error_count(self) -> int:
        return sum(self.errors.values())

    def behind_since_last(self) -> float:
        """Max lag behind the open loop's schedule reported since the previous call."""
        with self.lock:
            v, self._ival_behind = self._ival_behind, 0.0
        return v

    def _send_all(self, msg) -> None:
        for p, c in enumerate(self.cmds):
            if p in self.dead:
                continue
            try:
                c.send(msg)
            except (OSError, ValueError):
                pass

    def start(self, mode: str, rate, duration: float, clients: int) -> None:
        """Starts a phase with `clients` threads in all (at least one per process)."""
        assert not self.running()
        if self.dead:
            raise BenchError("; ".join(self.dead.values()))
        self.shares = self.split(max(clients, self.nprocs))
        t0 = time.monotonic() + 0.05
        with self.lock:
            self.max_behind = 0.0
            self._ival_behind = 0.0
            self.t_last_post = None
            self.pending = set(range(self.nprocs))
        for p, c in enumerate(self.cmds):
            if p not in self.dead:
                try:
                    c.send(("start", mode, rate, t0, t0 + duration, self.shares[p]))
                except (OSError, ValueError):
                    pass

    def running(self) -> bool:
        with self.lock:
            return bool(self.pending)

    def stop(self, timeout: float) -> None:
        self._send_all(("stop",))
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Ends the sender processes (asked first, then terminated)."""
        self.closing = True
        self._send_all(("exit",))
        deadline = time.monotonic() + 10
        for pr in self.procs:
            pr.join(max(0.1, deadline - time.monotonic()))
        for pr in self.procs:
            if pr.is_alive():
                pr.terminate()
                pr.join(5)


# ------------------------------------------------------------------------------------------- subscribers

class _FrameLog:
    """Inside the subscriber process: one record per notification frame, handed over in batches."""

    def __init__(self):
        self.frames = 0
        self.by_status: Counter = Counter()
        self.by_type: Counter = Counter()
        self.other: Counter = Counter()  # non-notification frames by type
        self.other_samples: list = []
        self._new()

    def _new(self) -> None:
        self.t = array("d")     # arrival: time.time() right after the frame was received, before json.loads
        self.st = array("b")    # index into STATUSES of the payload's status (-1: other)
        self.upd = array("d")   # payload `updated` (NaN: none)
        self.ts = array("d")    # frame `timestamp`: the server's publish time (NaN: none)
        self.ids = array("q")   # payload `id` (-1: none)

    def add(self, data, t: float) -> None:
        self.frames += 1
        msg = json.loads(data)
        if msg.get("type") != "notification":
            self.other[msg.get("type")] += 1
            if len(self.other_samples) < 5:
                self.other_samples.append(str(msg)[:200])
            return
        p = msg.get("payload") or {}
        st = p.get("status")
        self.by_status[st] += 1
        self.by_type[msg.get("notification_type")] += 1
        i = p.get("id")
        self.t.append(t)
        self.st.append(STATUS_IX.get(st, -1))
        self.upd.append(ts_or_nan(p.get("updated")))
        self.ts.append(ts_or_nan(msg.get("timestamp")))
        self.ids.append(i if isinstance(i, int) and 0 <= i < 2**63 else -1)

    def take(self) -> tuple:
        b = {"t": self.t, "st": self.st, "upd": self.upd, "ts": self.ts, "ids": self.ids, "frames": self.frames,
             "by_status": dict(self.by_status), "by_type": dict(self.by_type), "other": dict(self.other),
             "other_samples": list(self.other_samples)}
        self._new()
        return ("batch", b)


def subscriber_process(url: str, token: str, flt: str, cmd, out) -> None:
    """Entry point of the well-behaved subscriber: reads every frame as soon as it arrives, nothing else."""
    _child_init()
    closed = error = None
    try:
        # UTF-8 validation is pure Python in websocket-client (~60 us per frame); json.loads checks it anyway.
        ws = websocket.create_connection(url, header=[f"Authorization: Bearer {token}"], timeout=10,
                                         skip_utf8_validation=True)
        ports = (ws.sock.getsockname()[1], ws.sock.getpeername()[1])
    except Exception as e:  # noqa: BLE001 - reported
        out.send(("end", {"closed": None, "error": f"connect failed: {e!r}", "cpu_s": time.process_time()}))
        return
    log_ = _FrameLog()
    try:
        ws.recv()  # welcome
        ws.send(json.dumps({"type": "subscribe", "filter": flt}))
        ws.settimeout(FLUSH_S)
        out.send(("ready", ports))
        next_flush = time.monotonic() + FLUSH_S
        while True:
            try:
                op, frame = ws.recv_data_frame(True)
                t = time.time()
                if op == websocket.ABNF.OPCODE_CLOSE:
                    closed = close_info(frame.data, t)
                    break
                if op in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    log_.add(frame.data, t)
            except websocket.WebSocketTimeoutException:
                pass
            if time.monotonic() >= next_flush:
                out.send(log_.take())
                next_flush = time.monotonic() + FLUSH_S
                if cmd.poll():
                    break  # stop (or the bench is gone: EOF makes poll() true as well)
    except (websocket.WebSocketConnectionClosedException, OSError) as e:
        closed = {"t": time.time(), "code": None,
                  "reason": f"connection lost without a close frame ({type(e).__name__}: {e})"}
    except Exception as e:  # noqa: BLE001 - reported
        error = repr(e)
    try:
        out.send(log_.take())
        out.send(("end", {"closed": closed, "error": error, "cpu_s": time.process_time()}))
    except (OSError, ValueError):
        pass
    try:
        ws.close(timeout=2)
    except Exception:  # noqa: BLE001
        pass


class Subscriber:
    """A well-behaved notifier client in its own process (subscriber_process). Per frame: arrival time, status,
    payload `updated`, frame `timestamp`, execution id. Here: frame delay = arrival - updated, split into the
    server part (timestamp - updated) and the delivery part (arrival - timestamp)."""

    def __init__(self, ws_url: str, token: str, flt: str = "entity_type:execution"):
        self.url, self.token, self.filter = ws_url + "/ws", token, flt
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.lock = threading.Lock()
        self.arrival = array("d")    # arrival of frames that carry `updated` (in arrival order)
        self.delay_ms = array("f")   # arrival - updated
        self.srv_ms = array("f")     # timestamp - updated (NaN without a timestamp)
        self.dlv_ms = array("f")     # arrival - timestamp (NaN without a timestamp)
        self.status_ix = array("b")  # index into STATUSES of the frame's status (-1: other)
        self.by_status: Counter = Counter()
        self.by_type: Counter = Counter()
        self.other: Counter = Counter()
        self.other_samples: list[str] = []
        self.completed: dict = {}    # execution id -> arrival of its first `completed` frame
        self.frames = 0
        self.no_timestamp = 0        # notification frames with `updated` but no parseable `timestamp`
        self.closed = None           # {"t", "code", "reason"} when the server ended the connection
        self.error = None
        self.ports = None            # (our port, server port)
        self.cpu_s = None            # the subscriber process's CPU time when it ended
        self.proc = None
        self.stopping = False

    def start(self) -> None:
        cmd_r, self.cmd = MP.Pipe(duplex=False)
        out, out_w = MP.Pipe(duplex=False)
        self.proc = MP.Process(target=subscriber_process, args=(self.url, self.token, self.filter, cmd_r, out_w),
                               name="ws-subscriber", daemon=True)
        self.proc.start()
        cmd_r.close()
        out_w.close()
        self.reader = threading.Thread(target=self._reader, args=(out,), daemon=True, name="ws-reader")
        self.reader.start()

    def _reader(self, out) -> None:
        try:
            while True:
                kind, b = out.recv()
                if kind == "ready":
                    self.ports = tuple(b)
                    self.ready.set()
                elif kind == "batch":
                    self._merge(b)
                elif kind == "end":
                    self.closed, self.error, self.cpu_s = b["closed"], b["error"], b["cpu_s"]
                    return
        except (EOFError, OSError) as e:
            if self.error is None:
                self.error = (f"subscriber process ended without a report ({type(e).__name__}, "
                              f"{signal_name(self.proc.exitcode)})")
        finally:
            self.ready.set()
            self.ended.set()

    def _merge(self, b: dict) -> None:
        with self.lock:
            for t, st, u, f, i in zip(b["t"], b["st"], b["upd"], b["ts"], b["ids"]):
                if u == u:  # not NaN
                    self.arrival.append(t)
                    self.delay_ms.append((t - u) * 1000.0)
                    self.status_ix.append(st)
                    if f == f:
                        self.srv_ms.append((f - u) * 1000.0)
                        self.dlv_ms.append((t - f) * 1000.0)
                    else:
                        self.no_timestamp += 1
                        self.srv_ms.append(NAN)
                        self.dlv_ms.append(NAN)
                if st == COMPLETED_IX and i >= 0 and i not in self.completed:
                    self.completed[i] = t
            self.frames = b["frames"]
            self.by_status, self.by_type, self.other = Counter(b["by_status"]), Counter(b["by_type"]), \
                Counter(b["other"])
            self.other_samples = b["other_samples"]

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        try:
            self.cmd.send(("stop",))
        except (OSError, ValueError):
            pass
        self.ended.wait(timeout)
        if self.proc is not None:
            self.proc.join(max(0.1, timeout / 2))
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(5)

    def proc_cpu(self):
        try:
            return proc_cpu_s(self.proc.pid)
        except (OSError, ValueError, IndexError, AttributeError, TypeError):
            return None

    def queues(self) -> str:
        """Bytes waiting in our socket's receive queue / the server's send queue: who is behind."""
        if self.ports is None:
            return ""
        ours, srv = tcp_entries(*self.ports)
        return f"{ours['rxq'] // 1024 if ours else '-'}/{srv['txq'] // 1024 if srv else '-'}"

    def _slice(self, a: float, b: float):
        i, j = bisect.bisect_right(self.arrival, a), bisect.bisect_right(self.arrival, b)
        return i, j

    def delays_between(self, a: float, b: float, part: str = "total") -> list:
        """Frame delays (ms) of frames that arrived in (a, b]: part total (arrival - updated), server
        (timestamp - updated) or delivery (arrival - timestamp)."""
        with self.lock:
            i, j = self._slice(a, b)
            if part == "total":
                return list(self.delay_ms[i:j])
            vals = (self.srv_ms if part == "server" else self.dlv_ms)[i:j]
        return [v for v in vals if v == v]

    def delays_by_status(self, a: float, b: float, part: str = "total") -> dict:
        src = {"total": self.delay_ms, "server": self.srv_ms, "delivery": self.dlv_ms}[part]
        out: dict = {}
        with self.lock:
            i, j = self._slice(a, b)
            for ix, d in zip(self.status_ix[i:j], src[i:j]):
                if d == d:
                    out.setdefault(STATUSES[ix] if ix >= 0 else "other", []).append(d)
        return out


def tcp_entries(lport: int, rport: int):
    """(our side, server side) of the loopback connection lport<->rport from /proc/net/tcp{,6}."""
    ours = srv = None
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lp, rp = int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16)
                    if (lp, rp) not in ((lport, rport), (rport, lport)):
                        continue
                    tx, rx = (int(x, 16) for x in p[4].split(":"))
                    e = {"state": TCP_STATES.get(p[3], p[3]), "txq": tx, "rxq": rx}
                    if lp == lport:
                        ours = e
                    else:
                        srv = e
        except OSError:
            pass
    return ours, srv


class SlowSubscriber:
    """Subscribes to `all` and never reads. Watched from outside (TCP queues/state, poll for hang-up)."""

    def __init__(self, ws_url: str, token: str, rcvbuf: int):
        self.rcvbuf = rcvbuf
        sockopt = ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),) if rcvbuf > 0 else ()
        self.ws = websocket.create_connection(ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                              timeout=10, sockopt=sockopt)
        self.ws.recv()  # welcome
        self.ws.send(json.dumps({"type": "subscribe", "filter": "all"}))
        self.t_subscribed = time.time()
        sock = self.ws.sock
        self.lport, self.rport = sock.getsockname()[1], sock.getpeername()[1]
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        self.seen_server_side = False
        self.closed_at = None
        self.closed_how = None
        self.peak_server_txq = 0
        self.peak_rxq = 0
        self.last = ""
        self.final: dict = {}

    def probe(self, t: float) -> str:
        ours, srv = tcp_entries(self.lport, self.rport)
        try:
            ev = self.poller.poll(0)
        except OSError:
            ev = []
        flags = ev[0][1] if ev else 0
        if srv is not None:
            self.seen_server_side = True
            self.peak_server_txq = max(self.peak_server_txq, srv["txq"])
        if ours is not None:
            self.peak_rxq = max(self.peak_rxq, ours["rxq"])
        if self.closed_at is None:
            how = None
            if flags & (select.POLLHUP | select.POLLERR):
                how = "socket hang-up/error (reset)"
            elif flags & select.POLLRDHUP or (ours is not None and ours["state"] == "CLOSE_WAIT"):
                how = "server closed its side (FIN received)"
            elif srv is None and self.seen_server_side:
                how = "server's socket is gone"
            elif srv is not None and srv["state"] != "ESTABLISHED":
                how = f"server's socket in {srv['state']}"
            if how:
                self.closed_at, self.closed_how = t, how
        if self.closed_at is not None:
            self.last = f"dropped; srv {srv['state'] if srv else 'gone'}, ours {ours['state'] if ours else 'gone'}"
        elif srv is not None:
            self.last = f"open, srv sndq {srv['txq'] // 1024}K"
        else:
            self.last = "open"
        return self.last

    def finish(self, max_seconds: float) -> dict:
        """Read what is buffered (bounded) to find the close frame, then drop the connection."""
        res = {"frames": 0, "bytes": 0, "close": None, "end": None}
        deadline = time.monotonic() + max_seconds
        try:
            self.ws.settimeout(1.0)
            while True:
                if time.monotonic() >= deadline:
                    res["end"] = f"still sending after {max_seconds:.0f} s of reading"
                    break
                try:
                    op, frame = self.ws.recv_data_frame(True)
                except websocket.WebSocketTimeoutException:
                    res["end"] = "open and idle (nothing more to read)"
                    break
                if op == websocket.ABNF.OPCODE_CLOSE:
                    res["close"] = close_info(frame.data, time.time())
                    res["end"] = "close frame"
                    break
                res["frames"] += 1
                res["bytes"] += len(frame.data)
        except (websocket.WebSocketConnectionClosedException, OSError) as e:
            res["end"] = f"connection ended without a close frame ({type(e).__name__})"
        except Exception as e:  # noqa: BLE001 - reported
            res["end"] = f"read failed: {e!r}"
        try:
            self.ws.shutdown()
        except Exception:  # noqa: BLE001
            pass
        self.final = res
        return res


# ------------------------------------------------------------------------------------------- bench

class Bench:
    def __init__(self, args, srv: BenchServer):
        self.args, self.srv = args, srv
        self.pid = srv.proc.pid
        self.data_dir = srv.data_dir
        self.samples: list[dict] = []
        self.phases: dict = {}
        self.res: dict = {"notes": []}
        self.died = None  # (time, exit code, phase) when the server died during the run
        self.phase = "setup"
        self.sub = None
        self.slow = None
        self.load = None

    # -- setup
    def setup(self) -> None:
        admin = self.srv.admin_client()
        self.flow = admin.webhook_flow("true", prefix="overload")
        self.token = self._long_token(admin)
        self.api = self.srv.client(self.token)
        self.webhook_url = admin.url(f"/api/v1/webhooks/{self.flow.key}")
        log(f"flow: rule {self.flow.rule_ref}, action {self.flow.action_ref} (`true`), trigger "
            f"{self.flow.trigger_ref}")
        self.sub = Subscriber(self.srv.ws_url, self.token)
        self.sub.start()
        if not self.sub.ready.wait(30) or self.sub.error or self.sub.ports is None:
            raise BenchError(f"notifier subscriber failed: {self.sub.error or 'not subscribed within 30 s'}")
        log(f"subscriber process pid {self.sub.proc.pid} on local port {self.sub.ports[0]}, "
            f"subscribed to `{self.sub.filter}`")
        if self.args.slow_subscriber:
            self.slow = SlowSubscriber(self.srv.ws_url, self.token, self.args.slow_rcvbuf)
            log(f"slow subscriber on local port {self.slow.lport} (SO_RCVBUF {self.args.slow_rcvbuf}), "
                f"subscribed to `all`, never reads")
        self.load = Load(self.webhook_url, self.args.clients, self.args.sender_procs, self.args.http_timeout)
        log(f"{self.load.nprocs} sender processes (pids {', '.join(map(str, self.load.pids()))}) with "
            f"{'/'.join(map(str, self.load.shares))} client threads")

    def close_helpers(self) -> None:
        """Ends the helper processes (idempotent; also after a failure)."""
        if self.load is not None:
            if self.load.running():
                self.load.stop(self.args.http_timeout + 5)
            self.load.close()
        if self.sub is not None and self.sub.proc is not None and not self.sub.ended.is_set():
            self.sub.stop(10)

    def _long_token(self, admin) -> str:
        """The admin's access token re-signed with a 7-day expiry, so a long soak never sees 4401 / 401."""
        claims = dict(jwt_claims(admin.token))
        now = int(time.time())
        claims.update(iat=now, exp=now + 7 * 86400)
        tok = mint_jwt(self.srv.jwt_secret, claims)
        r = self.srv.client(tok).get("/auth/me")
        if r.status_code == 200:
            return tok
        self.res["notes"].append(f"long-lived token refused ({r.status_code}); using the 1 h login token")
        return admin.token

    # -- sampling
    def alive(self) -> None:
        if self.died is None and not self.srv.running():
            self.died = (time.time(), self.srv.proc.returncode, self.phase)
        if self.died is not None:
            raise ServerDied(f"attune serve died: {signal_name(self.died[1])}")

    def api_completed(self):
        t0 = time.time()
        try:
            r = self.api.get("/api/v1/executions", params={"status": "completed", "page_size": 1},
                             timeout=self.args.http_timeout)
            t1 = time.time()
            if r.status_code != 200:
                return None, t0, t1, f"HTTP {r.status_code}"
            return r.json()["pagination"]["total_items"], t0, t1, None
        except (requests.RequestException, ValueError, KeyError) as e:
            return None, t0, time.time(), type(e).__name__

    def sample(self, phase: str) -> dict:
        prev = self.samples[-1] if self.samples else None
        t = time.time()
        ws_done = len(self.sub.completed)
        api_done, ta, tb, api_err = self.api_completed()
        acc = self.load.accepted()  # after the API call: an execution can finish before its POST is answered
        try:
            st = proc_status(self.pid)
            rss = st["VmRSS"] / 1024.0
        except (OSError, KeyError):
            rss = None
        disk = dir_bytes(self.data_dir) / 1048576.0
        t_prev = prev["t"] if prev else self.t_start
        dt = max(1e-6, t - t_prev)
        i0 = prev["_ack_i"] if prev else 0
        http = list(self.load.http_ms[i0:acc])
        delays = self.sub.delays_between(t_prev, t)
        behind = self.load.behind_since_last()
        row = {
            "t": t, "elapsed": t - self.t_start, "phase": phase,
            "accepted": acc, "accepted_per_s": (acc - (prev["accepted"] if prev else 0)) / dt,
            "http_p50_ms": pct(http, 50) if http else None, "http_p99_ms": pct(http, 99) if http else None,
            "errors": self.load.error_count(),
            "ws_completed": ws_done, "ws_completed_per_s": (ws_done - (prev["ws_completed"] if prev else 0)) / dt,
            "api_completed": api_done, "api_t_end": tb, "api_ms": (tb - ta) * 1000.0, "api_error": api_err,
            "backlog": acc - api_done if api_done is not None else None,
            "rss_mib": rss, "disk_mib": disk,
            "frames": len(delays),
            "delay_p50_ms": pct(delays, 50) if delays else None,
            "delay_p99_ms": pct(delays, 99) if delays else None,
            "delay_max_ms": max(delays) if delays else None,
            "behind_s": behind if self.load.running() or behind > 0 else None,
            "sub_queues": self.sub.queues(),
            "slow": self.slow.probe(t) if self.slow else "",
            "count_lag": None, "time_lag_s": None,
            "_ack_i": acc,
        }
        self.samples.append(row)
        log(f"{phase:6s} t={row['elapsed']:6.1f}s acc={acc} ({row['accepted_per_s']:.0f}/s) "
            f"ws_done={ws_done} ({row['ws_completed_per_s']:.0f}/s) api_done={fmt(api_done)} "
            f"backlog={fmt(row['backlog'])} api={row['api_ms']:.0f}ms rss={fmt(rss, '.1f')}MiB "
            f"disk={disk:.1f}MiB delay p99={fmt(row['delay_p99_ms'], '.0f')}ms "
            f"behind={fmt(row['behind_s'], '.2f')}s err={row['errors']} subq={row['sub_queues']} "
            f"slow: {row['slow']}")
        return row

    def run_until(self, phase: str, done, deadline: float, poll_every: float = 0.25) -> bool:
        """Samples on the tick grid until done() (polled) is true or `deadline` (time.time()) passes."""
        self.phase = phase
        while True:
            now = time.time()
            if now >= self.next_tick:
                self.sample(phase)
                self.next_tick += self.args.sample_seconds
                if self.next_tick <= time.time():
                    self.next_tick = time.time() + self.args.sample_seconds
            if self.slow is not None and self.slow.closed_at is None:
                self.slow.probe(time.time())
            self.alive()
            if done():
                return True
            if time.time() >= deadline:
                return False
            time.sleep(max(0.0, min(poll_every, self.next_tick - time.time(), deadline - time.time())))

    # -- phases
    def send_phase(self, phase: str, mode: str, rate, seconds: float) -> dict:
        a0, e0 = self.load.accepted(), self.load.error_count()
        t0 = time.time()
        clients = open_clients(self.args, rate) if mode == "open" else self.args.clients
        desc = f"open loop at {rate:.0f}/s" if mode == "open" else "closed loop"
        log(f"{phase}: {desc}, {clients} clients for {seconds:.0f} s (load average {loadavg()})")
        cpu0 = self.helper_cpu()
        self.load.start(mode, rate, seconds, clients)
        ok = self.run_until(phase, lambda: not self.load.running(), t0 + seconds + self.args.http_timeout + 10)
        if not ok:
            self.load.stop(5)
            raise BenchError(f"{phase}: senders did not stop")
        t1 = time.time()
        cpu1 = self.helper_cpu()
        if self.load.dead:
            raise BenchError(f"{phase}: " + "; ".join(self.load.dead.values()))
        self.sample(phase)  # the interval up to the last answer belongs to this phase
        self.next_tick = time.time() + self.args.sample_seconds
        ph = {"t0": t0, "t1": t1, "t_planned_end": t0 + seconds, "mode": mode, "rate": rate, "clients": clients,
              "shares": list(self.load.shares),
              "accepted": self.load.accepted() - a0, "errors": self.load.error_count() - e0,
              "max_behind_s": self.load.max_behind}
        # the posts went out over the planned seconds, or longer when the senders fell behind schedule
        last = self.load.t_last_post
        ph["send_s"] = max(seconds, (last - t0) if last else 0.0)
        ph["accepted_per_s"] = ph["accepted"] / ph["send_s"]
        ph["sent_per_s"] = (ph["accepted"] + ph["errors"]) / ph["send_s"]
        ph["cpu"] = {k: (cpu1[k] - cpu0[k]) / max(1e-9, t1 - t0) for k in cpu0
                     if cpu0[k] is not None and cpu1.get(k) is not None}
        http = list(self.load.http_ms[a0:a0 + ph["accepted"]])
        ph["http_p50_ms"], ph["http_p99_ms"] = pct(http, 50), pct(http, 99)
        ph["http_mean_ms"] = sum(http) / len(http) if http else None
        self.phases[phase] = ph
        return ph

    def helper_cpu(self) -> dict:
        """CPU seconds so far of this process ("main"), each sender process ("s0", ...) and the subscriber ("sub")."""
        out = {"main": time.process_time()}
        for k, v in enumerate(self.load.cpu_s() if self.load is not None else []):
            out[f"s{k}"] = v
        out["sub"] = self.sub.proc_cpu() if self.sub is not None else None
        return out

    def stats(self):
        try:
            r = self.api.get("/api/v1/executions/stats", timeout=self.args.http_timeout)
            if r.status_code != 200:
                return None
            return r.json()["data"]
        except (requests.RequestException, ValueError, KeyError):
            return None

    def drain_phase(self, phase: str, timeout: float) -> dict:
        """Wait until every accepted webhook has a finished execution (terminal >= accepted, none active)."""
        t0 = time.time()
        state = {"last_poll": 0.0, "progress": (None, None), "t_progress": t0, "stats": None, "why": None}

        def done():
            now = time.time()
            if now - state["last_poll"] < 0.5:
                return False
            state["last_poll"] = now
            st = self.stats()
            if st is None:
                return False
            state["stats"] = st
            terminal = sum(st["by_status"].get(s, 0) for s in TERMINAL)
            if st["active"] == 0 and terminal >= self.load.accepted():
                state["why"] = "done"
                return True
            key = (terminal, st["active"])
            if key != state["progress"]:
                state["progress"], state["t_progress"] = key, now
            elif st["active"] == 0 and now - state["t_progress"] > self.args.stall_seconds:
                state["why"] = (f"stalled: {terminal} finished of {self.load.accepted()} accepted, none active, "
                                f"no change for {self.args.stall_seconds:.0f} s")
                return True
            return False

        log(f"{phase}: waiting for the backlog (at most {timeout:.0f} s)")
        ok = self.run_until(phase, done, t0 + timeout)
        t1 = time.time()
        why = state["why"] if ok else f"timed out after {timeout:.0f} s"
        ph = {"t0": t0, "t1": t1, "seconds": t1 - t0, "complete": ok and why == "done", "why": why,
              "stats": state["stats"]}
        self.phases[phase] = ph
        log(f"{phase}: {why} in {t1 - t0:.1f} s")
        return ph

    # -- reading executions back
    def fetch_executions(self, t_from: float, t_to: float) -> list[dict]:
        """Every execution created in [t_from, t_to), in time windows of ~500 rows (no deep offsets)."""
        rows: dict = {}
        a, hi = int(t_from * 1000), int(t_to * 1000) + 1
        w = 2000
        requests_left = 200000
        deadline = time.monotonic() + self.args.fetch_timeout
        while a < hi:
            b = min(a + w, hi)
            page, total = 1, 0
            while True:
                requests_left -= 1
                if requests_left < 0 or time.monotonic() > deadline:
                    raise BenchError(f"reading executions back took too long ({len(rows)} read)")
                r = self.api.get("/api/v1/executions", timeout=60,
                                 params={"created_after": iso_ms(a), "created_before": iso_ms(b), "order": "asc",
                                         "page": page, "page_size": 100})
                if r.status_code != 200:
                    raise BenchError(f"GET /api/v1/executions -> {r.status_code} {r.text[:200]}")
                body = r.json()
                for ex in body["items"]:
                    rows[ex["id"]] = {k: ex.get(k) for k in ("id", "status", "enforcement", "created", "updated")}
                total = body["pagination"]["total_items"]
                if not body["pagination"]["has_next"] or not body["items"]:
                    break
                page += 1
            w = int(min(600_000, max(10, w * 500 / max(total, 50))))
            a = b
        return list(rows.values())

    def count(self, path: str, **params):
        r = self.api.get(path, params=dict(params, page_size=1), timeout=60)
        if r.status_code != 200:
            return None
        return r.json()["pagination"]["total_items"]

    # -- the run
    def run(self) -> None:
        a = self.args
        self.t_start = time.time()
        self.next_tick = self.t_start
        self.cpu0 = self.helper_cpu()
        self.run_until("start", lambda: True, self.t_start)  # one sample before any load
        if a.rate is None:
            cal = self.send_phase("calib", "closed", None, a.calibrate_seconds)
            settle = self.drain_phase("settle", a.drain_timeout)
            if not settle["complete"]:
                raise BenchError(f"the calibration backlog did not drain: {settle['why']}")
            warm = min(3.0, 0.2 * a.calibrate_seconds)
            rows = self.fetch_executions(cal["t0"] - 60, time.time() + 1)
            w0, w1 = cal["t0"] + warm, cal["t_planned_end"]
            done = sum(1 for ex in rows if ex["status"] == "completed" and w0 <= ts_epoch(ex["updated"]) < w1)
            cal["warm"] = warm
            self.res["sustainable"] = done / max(1e-9, w1 - w0)
            self.res["sustainable_src"] = (f"calibration: closed loop, {a.clients} clients, "
                                           f"{a.calibrate_seconds:.0f} s (completions counted after {warm:.0f} s "
                                           f"warm-up)")
            log(f"calibration: accepted {cal['accepted_per_s']:.0f}/s, completed {self.res['sustainable']:.0f}/s "
                f"(sustainable rate)")
        else:
            self.res["sustainable"] = a.rate
            self.res["sustainable_src"] = "--rate (no calibration)"
        if self.res["sustainable"] <= 0:
            raise BenchError("sustainable rate is 0: nothing completed during calibration")
        rate = a.rate_factor * self.res["sustainable"] if a.mode == "open" else None
        self.res["offered"] = rate
        self.send_phase("flood", a.mode, rate, a.flood_seconds)
        self.drain_phase("drain", a.drain_timeout)
        self.sample("end")
        cpu1 = self.helper_cpu()
        self.res["driver_cpu"] = {k: cpu1[k] - v for k, v in self.cpu0.items()
                                  if v is not None and cpu1.get(k) is not None}
        self.res["driver_cpu_s"] = sum(self.res["driver_cpu"].values())
        self.res["wall_s"] = time.time() - self.t_start
        try:
            self.res["vmhwm_mib"] = proc_status(self.pid)["VmHWM"] / 1024.0
        except (OSError, KeyError):
            pass

    def finish(self) -> None:
        """After the run (or a failure): slow subscriber's close frame, subscriber stop, read-back, accounting."""
        if self.load is not None and self.load.running():
            self.load.stop(self.args.http_timeout + 5)
        if self.slow is not None:
            self.slow.probe(time.time())
            log("slow subscriber: reading what is buffered for it (bounded)")
            self.slow.finish(self.args.slow_read_seconds)
        self.close_helpers()
        self.refine_samples()
        if not self.srv.running():
            if self.died is None and self.srv.proc is not None:
                self.died = (time.time(), self.srv.proc.returncode, "after the run")
            return
        log("reading every execution back")
        t0 = time.time()
        rows = self.fetch_executions(self.t_start - 120, time.time() + 1)
        self.res["fetch_s"] = time.time() - t0
        self.res["rows"] = rows
        self.res["api_exec_total"] = self.count("/api/v1/executions")
        self.res["api_events"] = self.count("/api/v1/events", trigger_ref=self.flow.trigger_ref)
        self.res["api_enforcements"] = self.count("/api/v1/enforcements", rule_ref=self.flow.rule_ref)
        self.analyse(rows)

    def refine_samples(self) -> None:
        """Recomputes the per-sample client-side figures from the helpers' complete records (the live values were
        read while batches were still on their way): accepted (answers up to the end of the sample's API call)
        and HTTP latencies of the interval, WS completions and frame delays (total, server part, delivery part) of
        the frames that arrived in the interval."""
        if not self.samples or self.load is None or self.sub is None:
            return
        ack, http = self.load.ack_t, self.load.http_ms
        order = sorted(range(len(ack)), key=ack.__getitem__)
        acks = [ack[k] for k in order]
        https = [http[k] for k in order]
        ws_done = sorted(self.sub.completed.values())
        prev = None
        for s in self.samples:
            t_acc = s["api_t_end"]
            acc = bisect.bisect_right(acks, t_acc)
            i0 = prev["accepted"] if prev else 0
            t_prev = prev["t"] if prev else self.t_start
            dt = max(1e-6, s["t"] - t_prev)
            h = https[i0:acc]
            ws = bisect.bisect_right(ws_done, s["t"])
            s.update(accepted=acc, accepted_per_s=(acc - i0) / dt,
                     http_p50_ms=pct(h, 50) if h else None, http_p99_ms=pct(h, 99) if h else None,
                     ws_completed=ws, ws_completed_per_s=(ws - (prev["ws_completed"] if prev else 0)) / dt,
                     backlog=acc - s["api_completed"] if s["api_completed"] is not None else None)
            for part, key in (("total", "delay"), ("server", "srv"), ("delivery", "dlv")):
                d = self.sub.delays_between(t_prev, s["t"], part)
                if part == "total":
                    s["frames"] = len(d)
                s[f"{key}_p50_ms"] = pct(d, 50) if d else None
                s[f"{key}_p99_ms"] = pct(d, 99) if d else None
                s[f"{key}_max_ms"] = max(d) if d else None
            prev = s

    def analyse(self, rows: list[dict]) -> None:
        res = self.res
        done = sorted(ts_epoch(ex["updated"]) for ex in rows if ex["status"] == "completed")
        res["done_times"] = done
        for s in self.samples:
            if s["api_completed"] is None:
                continue
            c, te = s["api_completed"], s["api_t_end"]
            true = bisect.bisect_right(done, te)
            s["count_lag"] = true - c
            s["time_lag_s"] = max(0.0, te - done[c]) if true > c and c < len(done) else 0.0

        def rate_in(a, b):
            return (bisect.bisect_left(done, b) - bisect.bisect_left(done, a)) / max(1e-9, b - a)

        fl = self.phases.get("flood")
        if fl:
            res["flood_completed_per_s"] = rate_in(fl["t0"], fl["t_planned_end"])
        cal = self.phases.get("calib")
        if cal:
            res["calib_completed_per_s"] = rate_in(cal["t0"] + cal.get("warm", 0.0), cal["t_planned_end"])
        statuses = Counter(ex["status"] for ex in rows)
        enf = Counter(ex["enforcement"] for ex in rows)
        ev_ids = Counter(self.load.event_ids)
        accepted = self.load.accepted()
        events = res["api_events"]
        acc_ids = len(ev_ids)
        res["statuses"] = statuses
        res["lost"] = {
            "ack_without_event": (max(0, acc_ids + self.load.no_event_id - events)
                                  if events is not None else None),
            "event_without_execution": max(0, (events or 0) - len(enf)) if events is not None else None,
            "not_completed": sum(n for s, n in statuses.items() if s != "completed"),
        }
        res["doubled"] = {
            "executions_per_enforcement": sum(n - 1 for n in enf.values() if n > 1),
            "enforcements_over_events": max(0, (res["api_enforcements"] or 0) - (events or 0)),
            "duplicate_event_ids_acked": sum(n - 1 for n in ev_ids.values() if n > 1),
        }
        res["unacked_events"] = max(0, (events or 0) - acc_ids) if events is not None else None
        res["accepted"] = accepted
        if res["api_exec_total"] is not None and res["api_exec_total"] != len(rows):
            res["notes"].append(f"read back {len(rows)} executions but the API counts {res['api_exec_total']}")


# ------------------------------------------------------------------------------------------- report

COLUMNS = [
    ("t s", "elapsed", ".1f"), ("phase", "phase", "s"), ("accepted", "accepted", "d"),
    ("acc/s", "accepted_per_s", ".0f"), ("HTTP p99 ms", "http_p99_ms", ".1f"),
    ("WS done", "ws_completed", "d"), ("WS done/s", "ws_completed_per_s", ".0f"),
    ("API done", "api_completed", "d"), ("backlog", "backlog", "d"), ("API ms", "api_ms", ".0f"),
    ("count lag", "count_lag", "d"), ("time lag s", "time_lag_s", ".2f"),
    ("RSS MiB", "rss_mib", ".1f"), ("disk MiB", "disk_mib", ".1f"),
    # frame delay = arrival - updated = server part (timestamp - updated) + delivery part (arrival - timestamp)
    ("frame delay p50/p99/max ms", "delay", "tri"), ("server part p50/p99/max ms", "srv", "tri"),
    ("delivery part p50/p99/max ms", "dlv", "tri"), ("senders behind s", "behind_s", ".2f"),
    ("sub rcvq/srv sndq KiB", "sub_queues", "s"), ("slow sub", "slow", "s"),
]
CSV_FIELDS = ["t", "elapsed", "phase", "accepted", "accepted_per_s", "http_p50_ms", "http_p99_ms", "errors",
              "ws_completed", "ws_completed_per_s", "api_completed", "api_ms", "api_error", "backlog",
              "count_lag", "time_lag_s", "rss_mib", "disk_mib", "frames", "delay_p50_ms", "delay_p99_ms",
              "delay_max_ms", "srv_p50_ms", "srv_p99_ms", "srv_max_ms", "dlv_p50_ms", "dlv_p99_ms", "dlv_max_ms",
              "behind_s", "sub_queues", "slow"]


def table_rows(samples: list[dict], every: int) -> list[dict]:
    if every <= 1:
        return samples
    out = []
    for i, s in enumerate(samples):
        first_or_last = (i == 0 or i == len(samples) - 1 or samples[i - 1]["phase"] != s["phase"]
                         or samples[i + 1]["phase"] != s["phase"])
        if first_or_last or i % every == 0:
            out.append(s)
    return out


def fmt_ms(v) -> str:
    """Compact ms: one decimal below 10, none above."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.1f}" if abs(v) < 10 else f"{v:.0f}"


def cell(s: dict, key: str, spec: str) -> str:
    if spec == "tri":
        if s.get(f"{key}_p50_ms") is None:
            return "—"
        return "/".join(fmt_ms(s.get(f"{key}_{q}_ms")) for q in ("p50", "p99", "max"))
    return fmt(s.get(key), spec)


def print_table(samples: list[dict], every: int, slow: bool, behind: bool) -> None:
    cols = [c for c in COLUMNS if (slow or c[1] != "slow") and (behind or c[1] != "behind_s")]
    print("| " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "|".join("---" if c[2] == "s" else "--:" for c in cols) + "|")
    for s in table_rows(samples, every):
        print("| " + " | ".join(cell(s, key, spec) for _, key, spec in cols) + " |")


def write_csv(path: Path, samples: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for s in samples:
            w.writerow({k: ("" if s.get(k) is None else round(s[k], 3) if isinstance(s[k], float) else s[k])
                        for k in CSV_FIELDS})


def triple(vals, unit="ms", spec=".1f") -> str:
    if not vals:
        return "—"
    return f"{pct(vals, 50):{spec}} / {pct(vals, 99):{spec}} / {max(vals):{spec}} {unit}"


def sender_cpu(parts: dict) -> list:
    """The sender processes' entries ("s0", "s1", ...) of a helper_cpu() dict, in process order."""
    return [v for k, v in sorted(((k, v) for k, v in parts.items() if re.fullmatch(r"s\d+", k)),
                                 key=lambda kv: int(kv[0][1:]))]


def report(args, b: Bench, exit_desc: str) -> list[str]:
    """Prints the table and summary; returns the list of errors (non-empty => exit 1)."""
    res, ph = b.res, b.phases
    errors: list[str] = []
    fl, dr, cal = ph.get("flood"), ph.get("drain"), ph.get("calib")
    print()
    print(f"## Overload bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load average at end {loadavg()}")
    print()
    mode = (f"open loop at {res['offered']:.0f}/s ({args.rate_factor:g} × {res['sustainable']:.0f}/s)"
            if args.mode == "open" and res.get("offered") else "closed loop")
    oc = f" (open loop: {fl['clients']})" if fl and fl["mode"] == "open" and fl["clients"] != args.clients else ""
    print(f"`{args.binary} serve {' '.join(args.serve_arg)}`; {args.clients} HTTP clients{oc} in {args.sender_procs} "
          f"sender processes; flood "
          f"{args.flood_seconds:g} s, {mode}; samples every {args.sample_seconds:g} s; slow subscriber "
          f"{'on (SO_RCVBUF %d)' % args.slow_rcvbuf if args.slow_subscriber else 'off'}")
    print()
    if b.samples:
        print_table(b.samples, args.table_every, b.slow is not None,
                    any(p.get("mode") == "open" for p in ph.values()))
        print()
    rows = []

    def row(k, v):
        rows.append((k, v))

    if cal:
        row("calibration (closed loop)", f"accepted {cal['accepted_per_s']:.0f}/s, completed "
            f"{res.get('calib_completed_per_s', res.get('sustainable', float('nan'))):.0f}/s; HTTP p50/p99 "
            f"{cal['http_p50_ms']:.1f}/{cal['http_p99_ms']:.1f} ms; {cal['errors']} failed posts; sender processes "
            f"{' / '.join(f'{100 * v:.0f}' for v in sender_cpu(cal.get('cpu', {})))} % of one core")
    if res.get("sustainable") is not None:
        row("sustainable rate (baseline)", f"{res['sustainable']:.0f} completed/s — {res['sustainable_src']}")
    if fl:
        offered = ""
        if fl["mode"] == "open":
            offered = (f"offered {fl['rate']:.0f}/s, sent {fl['sent_per_s']:.0f}/s = "
                       f"**{fl['sent_per_s'] / fl['rate']:.2f}** of offered (max {fl['max_behind_s']:.2f} s behind "
                       f"schedule")
            if fl["http_mean_ms"]:  # one request in flight per client: Little's law bounds the rate
                offered += (f"; {fl['clients']} clients at the mean HTTP time {fl['http_mean_ms']:.1f} ms can send "
                            f"≤ {1000 * fl['clients'] / fl['http_mean_ms']:.0f}/s")
            offered += "); "

        longer = f" instead of {args.flood_seconds:g}" if fl["send_s"] > args.flood_seconds + 0.5 else ""
        row("flood accepted/s", f"{offered}accepted {fl['accepted_per_s']:.0f}/s ({fl['accepted']} in "
            f"{fl['send_s']:.1f} s{longer}); HTTP p50/p99 {fmt(fl['http_p50_ms'], '.1f')}/"
            f"{fmt(fl['http_p99_ms'], '.1f')} ms; {fl['errors']} failed posts")
        base = res.get("calib_completed_per_s", res.get("sustainable"))
        fc = res.get("flood_completed_per_s")
        if fc is not None and base:
            ratio = fc / base
            row("completed/s flood vs baseline", f"{fc:.0f}/s vs {base:.0f}/s = **{ratio:.2f}** "
                f"(issue requires ≥ 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
        row("frame delay over the flood p50 / p99 / max", triple(b.sub.delays_between(fl["t0"], fl["t1"])))
        row("… server part (frame timestamp − updated), flood",
            triple(b.sub.delays_between(fl["t0"], fl["t1"], "server")))
        row("… delivery part (arrival − frame timestamp), flood",
            triple(b.sub.delays_between(fl["t0"], fl["t1"], "delivery")))
        for part, label in (("total", "… by frame status (flood)"),
                            ("server", "… server part by frame status (flood)")):
            by = b.sub.delays_by_status(fl["t0"], fl["t1"], part)
            if by:
                row(label, "; ".join(f"{k} {triple(v)}"
                                     for k, v in sorted(by.items(), key=lambda kv: STATUS_IX.get(kv[0], 99))))
    if dr and b.sub:
        row("frame delay during the drain p50 / p99 / max", triple(b.sub.delays_between(dr["t0"], dr["t1"])))
        row("… server / delivery part (drain)", f"{triple(b.sub.delays_between(dr['t0'], dr['t1'], 'server'))}; "
            f"{triple(b.sub.delays_between(dr['t0'], dr['t1'], 'delivery'))}")
    lags = [s["time_lag_s"] for s in b.samples if s["time_lag_s"] is not None and s["phase"] in ("flood", "drain")]
    clags = [s["count_lag"] for s in b.samples if s["count_lag"] is not None and s["phase"] in ("flood", "drain")]
    if lags:
        row("projection time lag p99 / max (flood + drain samples)",
            f"{pct(lags, 99):.2f} / {max(lags):.2f} s (count lag max {max(clags)})")
    api_ms = [s["api_ms"] for s in b.samples if s["phase"] in ("flood", "drain")]
    if api_ms:
        row("sample API call (status=completed count) p50 / p99 / max", triple(api_ms))
    rss = [s["rss_mib"] for s in b.samples if s["rss_mib"] is not None]
    if rss:
        hwm = f" (VmHWM {res['vmhwm_mib']:.1f} MiB)" if res.get("vmhwm_mib") else ""
        row("RSS start → peak → end", f"{rss[0]:.1f} → {max(rss):.1f} → {rss[-1]:.1f} MiB{hwm}")
    if b.samples:
        row("data dir at end", f"{b.samples[-1]['disk_mib']:.1f} MiB")
        bl = [s["backlog"] for s in b.samples if s["backlog"] is not None]
        if bl:
            row("peak backlog (accepted − completed per API)", f"{max(bl)}")
    if dr:
        row("drain", f"{dr['seconds']:.1f} s — {dr['why']}")
        if not dr["complete"]:
            errors.append(f"drain did not complete: {dr['why']}")
    if "rows" in res:
        st = res["statuses"]
        lost, dbl = res["lost"], res["doubled"]
        n_lost = sum(v or 0 for v in lost.values())
        n_dbl = sum(v or 0 for v in dbl.values())
        st_txt = ", ".join(f"{k} {v}" for k, v in sorted(st.items()))
        lost_txt = ", ".join(f"{k} {fmt(v, 'd')}" for k, v in lost.items())
        dbl_txt = ", ".join(f"{k} {v}" for k, v in dbl.items())
        row("executions lost / doubled", f"**{n_lost} / {n_dbl}** — accepted {res['accepted']}, events "
            f"{fmt(res['api_events'], 'd')}, enforcements {fmt(res['api_enforcements'], 'd')}, executions "
            f"{len(res['rows'])} ({st_txt}); lost: {lost_txt}; doubled: {dbl_txt}; events without a 2xx "
            f"answer {fmt(res['unacked_events'], 'd')}")
        if n_lost:
            errors.append(f"{n_lost} executions lost ({lost})")
        if n_dbl:
            errors.append(f"{n_dbl} executions doubled ({dbl})")
        row("read back", f"{len(res['rows'])} executions in {res['fetch_s']:.1f} s")
    if b.load is not None:
        errs = ", ".join(f"{k} {v}" for k, v in b.load.errors.most_common()) or "none"
        row("failed webhook posts (whole run)", f"{b.load.error_count()} ({errs})"
            + (f"; e.g. {b.load.error_samples[0]!r}" if b.load.error_samples else "")
            + (f"; {b.load.no_event_id} 2xx without event_id" if b.load.no_event_id else ""))
    if b.sub is not None:
        api_done = res.get("statuses", {}).get("completed")
        sub_state = ("closed by the server: code %s, reason %r at t=%.1f s" %
                     (b.sub.closed["code"], b.sub.closed["reason"], b.sub.closed["t"] - b.t_start)
                     if b.sub.closed else "not closed by the server")
        if b.sub.error:
            sub_state += f"; error {b.sub.error}"
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(b.sub.by_status.items(), key=lambda kv: str(kv[0])))
        other = f"; other frames {dict(b.sub.other)}" if b.sub.other else ""
        cpu = f"; its process used {b.sub.cpu_s:.1f} s CPU" if b.sub.cpu_s is not None else ""
        if b.sub.no_timestamp:
            cpu += f"; {b.sub.no_timestamp} frames without a parseable `timestamp`"
        row("WS subscriber (entity_type:execution)", f"{b.sub.frames} frames ({by_status}){other}; distinct "
            f"executions seen completed {len(b.sub.completed)} of {fmt(api_done, 'd')} completed in the API; "
            f"{sub_state}{cpu}")
        if b.sub.error:
            errors.append(f"notifier subscriber failed: {b.sub.error}")
    if b.slow is not None:
        s = b.slow
        fin = s.final
        when = (f"server dropped it at t={s.closed_at - b.t_start:.1f} s ({s.closed_how})" if s.closed_at
                else "server did not drop it during the run")
        close = (f"close frame code {fin['close']['code']} reason {fin['close']['reason']!r}" if fin.get("close")
                 else f"no close frame ({fin.get('end')})")
        row("slow subscriber (`all`, never reads)", f"{when}; peak server send queue "
            f"{s.peak_server_txq // 1024} KiB, our receive queue {s.peak_rxq // 1024} KiB; at the end read "
            f"{fin.get('frames', 0)} buffered frames ({fin.get('bytes', 0) / 1048576:.1f} MiB), then {close}")
    row("attune serve", exit_desc)
    levels, firsts = scan_server_log(b.srv.log_path)
    row("server log warnings / errors", (", ".join(f"{v} {k}" for k, v in levels.items()) + " — "
                                         + "; ".join(f"`{x}`" for x in firsts)) if levels else "none")
    if "driver_cpu_s" in res:
        parts = res["driver_cpu"]
        senders = sum(sender_cpu(parts))
        row("driver (this script) CPU", f"{res['driver_cpu_s']:.0f} s over {res['wall_s']:.0f} s "
            f"({100 * res['driver_cpu_s'] / max(1, res['wall_s']):.0f} % of one core): main process "
            f"{parts.get('main', 0):.0f} s, {b.load.nprocs} sender processes {senders:.0f} s, subscriber process "
            f"{parts.get('sub', 0):.0f} s")
    if fl and fl.get("cpu"):
        c = fl["cpu"]
        snd = " / ".join(f"{100 * v:.0f}" for v in sender_cpu(c))
        row("driver CPU during the flood (% of one core)",
            f"sender processes {snd} ({'/'.join(map(str, fl['shares']))} threads); subscriber process "
            f"{fmt(100 * c['sub'] if 'sub' in c else None)}; main process "
            f"{fmt(100 * c['main'] if 'main' in c else None)}")
    for n in res["notes"]:
        row("note", n)
    print("| metric | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print()
    return errors


# ------------------------------------------------------------------------------------------- main

LOG_LEVEL_RE = re.compile(r"^\[(?:err|out)\] \S+ (warning|error|critical) (?:\[\d+\] )?(.*)$")


def scan_server_log(path: Path) -> tuple[Counter, list[str]]:
    """Warnings/errors the server logged: counts per level and the first few distinct messages."""
    levels: Counter = Counter()
    firsts: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = LOG_LEVEL_RE.match(line.rstrip("\n"))
                if not m:
                    continue
                levels[m.group(1)] += 1
                if len(firsts) < 3:
                    firsts.append(f"{m.group(1)}: {m.group(2)[:200]}")
    except OSError:
        pass
    return levels, firsts


OPEN_BUDGET_S = 0.05  # the open loop keeps its schedule while the mean answer takes up to this long
OPEN_MAX = 512


def open_clients(args, rate: float) -> int:
    """Threads for an open loop at `rate`/s: each has one request in flight, so (Little's law) rate x mean HTTP
    time of them are busy; size for OPEN_BUDGET_S per request unless --open-clients says otherwise."""
    if args.open_clients:
        return args.open_clients
    return max(args.clients, min(OPEN_MAX, math.ceil(rate * OPEN_BUDGET_S)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", "--attune-bin", dest="binary", type=Path, default=None,
                    help="attune binary (default ATTUNE_BIN or build/api/cli/attune)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `attune serve` argument (repeatable), e.g. --serve-arg=--http-threads=8")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data dir and server log)")
    ap.add_argument("--quick", action="store_true",
                    help="short run: 8 s calibration, 15 s closed-loop flood, 1 s samples (explicit options "
                         "still win)")
    ap.add_argument("--clients", type=int, default=16,
                    help="HTTP client threads (keep-alive sessions), spread over --sender-procs processes")
    ap.add_argument("--open-clients", type=int, default=None,
                    help="HTTP client threads of an open-loop flood (default: enough for the offered rate at "
                         "%g ms per request, at least --clients, at most %d)" % (1000 * OPEN_BUDGET_S, OPEN_MAX))
    ap.add_argument("--sender-procs", type=int, default=None,
                    help="sender processes sharing the clients and the open loop's schedule "
                         "(default: the number of CPUs, at least 2, at most 8)")
    ap.add_argument("--calibrate-seconds", type=float, default=None, help="default 15 (8 with --quick)")
    ap.add_argument("--rate", type=float, default=None,
                    help="sustainable completed/s to assume instead of calibrating")
    ap.add_argument("--rate-factor", type=float, default=2.0, help="open loop: offered = factor x sustainable")
    ap.add_argument("--mode", choices=("open", "closed"), default=None,
                    help="flood pacing (default: open for the soak, closed with --quick)")
    ap.add_argument("--flood-seconds", type=float, default=None, help="default 600 (15 with --quick)")
    ap.add_argument("--drain-timeout", type=float, default=900.0)
    ap.add_argument("--stall-seconds", type=float, default=60.0,
                    help="end a drain early when nothing is active and nothing changed for this long")
    ap.add_argument("--sample-seconds", type=float, default=None, help="default 5 (1 with --quick)")
    ap.add_argument("--slow-subscriber", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--slow-rcvbuf", type=int, default=16384,
                    help="SO_RCVBUF of the slow subscriber's socket (0 = system default)")
    ap.add_argument("--slow-read-seconds", type=float, default=10.0,
                    help="at the end, read the slow subscriber's buffered frames for at most this long")
    ap.add_argument("--http-timeout", type=float, default=30.0)
    ap.add_argument("--fetch-timeout", type=float, default=900.0, help="bound for reading executions back")
    ap.add_argument("--csv", type=Path, default=None, help="also write the samples to this CSV file")
    ap.add_argument("--table-every", type=int, default=1,
                    help="print every N-th sample (plus each phase's first and last) in the table")
    args = ap.parse_args()
    if args.mode is None:
        args.mode = "closed" if args.quick else "open"
    if args.flood_seconds is None:
        args.flood_seconds = 15.0 if args.quick else 600.0
    if args.calibrate_seconds is None:
        args.calibrate_seconds = 8.0 if args.quick else 15.0
    if args.sample_seconds is None:
        args.sample_seconds = 1.0 if args.quick else 5.0
    args.binary = Path(args.binary) if args.binary else attune_bin()
    if args.sender_procs is None:
        args.sender_procs = max(2, min(8, os.cpu_count() or 2))
    args.sender_procs = min(args.sender_procs, args.clients)
    if args.open_clients is not None and args.open_clients < 1:
        ap.error("--open-clients must be positive")
    if min(args.clients, args.sender_procs) < 1 or min(args.sample_seconds, args.flood_seconds, args.rate_factor) <= 0:
        ap.error("--clients, --sender-procs, --sample-seconds, --flood-seconds and --rate-factor must be positive")
    return args


def main() -> int:
    args = parse_args()
    if not args.binary.exists():
        print(f"attune binary not found: {args.binary} (build it, or pass --binary / ATTUNE_BIN)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="attune-overload-"))
    srv = BenchServer(args.binary, tmp / "data", tmp / "attune.log", serve_args=args.serve_arg)
    errors: list[str] = []
    bench = None
    try:
        srv.start(timeout=60)
        log(f"attune serve pid {srv.proc.pid}: {srv.api_url} {srv.ws_url}; data dir {srv.data_dir}")
        bench = Bench(args, srv)
        bench.setup()
        try:
            bench.run()
        except BenchError as e:
            errors.append(str(e))
            log(f"error: {e}")
        try:
            bench.finish()
        except (BenchError, requests.RequestException, ValueError, KeyError) as e:
            errors.append(f"after the run: {e}")
            log(f"error after the run: {e}")
    except (BenchError, AssertionError, OSError, requests.RequestException) as e:
        errors.append(f"{type(e).__name__}: {e}")
        log(f"error: {e}")
    finally:
        if bench is not None:
            bench.close_helpers()
        died = bench.died if bench is not None else None
        if died is None and srv.proc is not None and srv.proc.poll() is not None:
            died = (time.time(), srv.proc.returncode, bench.phase if bench is not None else "setup")
        if died is not None:
            srv.stop()
            t0 = bench.t_start if bench is not None and hasattr(bench, "t_start") else died[0]
            exit_desc = (f"**died during the run** ({signal_name(died[1])}, noticed in phase {died[2]} at "
                         f"t={died[0] - t0:.1f} s)")
            errors.append(f"attune serve died: {signal_name(died[1])}")
        else:
            code = srv.stop(grace=30)
            exit_desc = f"survived; {signal_name(code)} after SIGTERM"
            if srv.last_stop_needed_kill:
                exit_desc += " (did not exit within 30 s of SIGTERM: SIGKILLed)"
            if code != 0:
                errors.append(f"attune serve exited with {signal_name(code)}")
    if bench is not None:
        errors = report(args, bench, exit_desc) + errors
        if args.csv and bench.samples:
            write_csv(args.csv, bench.samples)
            print(f"samples written to {args.csv}")
    errors = list(dict.fromkeys(errors))
    if errors:
        print("ERRORS:", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        print(srv.log_tail(30), file=sys.stderr)
    if args.keep:
        print(f"kept: {tmp} (data dir, attune.log)")
    elif errors:
        shutil.rmtree(tmp / "data", ignore_errors=True)
        print(f"server log kept: {srv.log_path}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
