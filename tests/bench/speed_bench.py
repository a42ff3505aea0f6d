#!/usr/bin/python3
"""Speed benchmark (issue 19): webhook -> shell `true` -> completed, attune vs raw spawn vs Node-RED.

Measures in one run, side by side on the same machine:

  1. raw spawn: bench_spawn (posix_spawn + waitpid of /bin/true and /bin/sh -c true, 1 and 2 threads),
     spawns/s and CPU per spawn (bench_spawn's own CPU plus its children's, from getrusage);
  2. attune, embedded (`attune serve`, temp data dir, ephemeral ports): pack + inline shell action `true`
     + webhook trigger + rule, then
       a. sustained throughput: C closed-loop clients (16 and 64) each POST the webhook and wait for that
          execution's `completed` on the notifier WebSocket (event_id -> enforcement_created.event ->
          execution_status_changed.enforcement), completed/s over a window after a warm-up; afterwards
          every accepted webhook must be a `completed` execution in GET /executions (count matches);
       b. attune's own CPU per completed execution (utime+stime of the process, /proc/<pid>/stat fields
          14-15, without its reaped children) and, separately, the children's (cutime+cstime, the actions);
       c. sequential latency: one client, POST -> `completed` frame, N sequential runs, p50/p90/p99/max;
       d. attune throughput / raw 2-thread spawn rate;
  3. Node-RED doing the same job (installed with npm into a scratch dir, never by the product):
     `http in` POST /hook -> `exec` (spawn mode, `/bin/sh -c true`, as attune's shell runner) -> `function`
     (counts completions in flow context) -> `http response`; the client learns completion from the
     response. Same closed-loop and sequential measurements, node's CPU without children; ratios.

Prints a results table with the targets next to the results. Exits non-zero only on errors (a server
died, executions lost or failed, HTTP errors), never because a target is missed. Every wait is bounded.

    /usr/bin/python3 tests/bench/speed_bench.py [--quick] [--skip-nodered] [--clients 16,64]
        [--seconds 15] [--latency-n 500] [--attune-bin PATH] [--spawn-bin PATH] [--keep]

Needs /usr/bin/python3 with python3-requests and python3-websockets; node + npm for the Node-RED part.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

from attune_e2e import Server, attune_bin  # noqa: E402
from foundation_bench import loadavg, pct, proc_cpu_s  # noqa: E402

import websockets  # noqa: E402  (python3-websockets, asyncio API)

TARGETS = {"ratio_raw": 0.6, "cpu_ms": 0.5, "p50_ms": 1.5, "p99_ms": 5.0}
EVENT_ID_RE = re.compile(rb'"event_id"\s*:\s*(\d+)')
NODERED_DIR = Path("/tmp/attune-nodered-bench")
NODERED_VERSION = "4.1"
CALL_TIMEOUT = 30.0     # one webhook round trip, or one wait for its `completed`
DRAIN_TIMEOUT = 60.0    # after a window: in-flight runs finish within this


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# Every child process we start, so that atexit (and SIGTERM/SIGINT) can kill what is still running.
_children: list[subprocess.Popen] = []


def _kill_children() -> None:
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_children)


# ------------------------------------------------------------------------------------- raw spawn

def run_bench_spawn(spawn_bin: Path, seconds: float) -> dict:
    """bench_spawn for /bin/true and /bin/sh -c true: {(label, threads): rate} plus CPU per spawn.

    Unlike foundation_bench.run_spawn_bench this also takes getrusage(RUSAGE_CHILDREN) around each
    program, so the CPU per spawn (parent + child, over the 1- and 2-thread cases) is known."""
    if not spawn_bin.exists():
        raise BenchError(f"{spawn_bin} not found (ninja -C build bench_spawn, or pass --spawn-bin)")
    res: dict = {}
    for label, argv in (("true", ["/bin/true"]), ("sh", ["/bin/sh", "-c", "true"])):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([str(spawn_bin), str(seconds), *argv], capture_output=True, text=True,
                             timeout=seconds * 4 + 30)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise BenchError(f"bench_spawn failed ({out.returncode}): {out.stderr}")
        spawns = 0
        for line in out.stdout.splitlines():
            m = re.search(r"threads=(\d+) spawns=(\d+) .*spawns_per_s=([\d.]+)", line)
            if m:
                res[(label, int(m.group(1)))] = float(m.group(3))
                spawns += int(m.group(2))
        if (label, 2) not in res or spawns == 0:
            raise BenchError(f"unexpected bench_spawn output: {out.stdout!r}")
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        res[(label, "cpu_ms")] = 1000.0 * cpu / spawns
        log(out.stdout.strip() + f"\n           CPU per spawn (parent + child): "
                                  f"{res[(label, 'cpu_ms')]:.3f} ms")
    return res


# ------------------------------------------------------------------------------------- HTTP client

class HttpConn:
    """One keep-alive HTTP/1.1 connection (raw asyncio streams: the driver must stay cheap)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        return await asyncio.wait_for(self._request(method, path, body), CALL_TIMEOUT)

    async def _request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write((f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                           f"Connection: keep-alive\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length, chunked, close = 0, False, False
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                k, v = k.strip().lower(), v.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"transfer-encoding" and b"chunked" in v:
                    chunked = True
                elif k == b"connection" and v == b"close":
                    close = True
            if chunked:
                data = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    data += chunk[:-2]
            else:
                data = await self.reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ------------------------------------------------------------------------------------- closed loop

class LoopResult:
    """Runs of one phase and the measurements around its window; rates, CPU and latencies count only
    runs completed inside the window (not the warm-up or the drain)."""

    def __init__(self):
        self.runs: list[tuple[float, float]] = []  # (t_send, t_completed), monotonic
        self.errors: list[str] = []
        self.window = (0.0, 0.0)
        self.cpu = (0.0, 0.0)           # server's own CPU seconds at window start / end
        self.cpu_children = (0.0, 0.0)  # server's reaped children
        self.driver_cpu = 0.0           # this process's CPU seconds over the window
        self.load = ""

    def in_window(self) -> int:
        a, b = self.window
        return sum(1 for _, t in self.runs if a <= t < b)

    def rate(self) -> float:
        a, b = self.window
        return self.in_window() / max(1e-9, b - a)

    def cpu_ms_per_run(self) -> float:
        return 1000.0 * (self.cpu[1] - self.cpu[0]) / max(1, self.in_window())

    def children_ms_per_run(self) -> float:
        return 1000.0 * (self.cpu_children[1] - self.cpu_children[0]) / max(1, self.in_window())

    def lat_ms(self) -> list[float]:
        a, b = self.window
        return [(t1 - t0) * 1000.0 for t0, t1 in self.runs if a <= t1 < b]


async def closed_loop(one_run, clients: int, warmup: float, seconds: float, pid: int) -> LoopResult:
    """`clients` tasks, each calling `one_run(conn)` (-> (t_send, t_done)) back to back. Completions are
    counted over [t0 + warmup, t0 + warmup + seconds); CPU of `pid` is read at both ends. Then every
    client finishes its run in flight (bounded by CALL_TIMEOUT per call) and stops."""
    res = LoopResult()
    stop = False

    async def client(conn: HttpConn):
        while not stop:
            try:
                res.runs.append(await one_run(conn))
            except (BenchError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                res.errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                if len(res.errors) > 100:
                    return

    conns = [one_run.new_conn() for _ in range(clients)]
    tasks = [asyncio.create_task(client(c)) for c in conns]
    try:
        await asyncio.sleep(warmup)
        a, c0, k0, d0 = time.monotonic(), proc_cpu_s(pid), proc_cpu_s(pid, children=True), time.process_time()
        await asyncio.sleep(seconds)
        b, c1, k1, d1 = time.monotonic(), proc_cpu_s(pid), proc_cpu_s(pid, children=True), time.process_time()
        res.window, res.cpu, res.cpu_children = (a, b), (c0, c1), (k0 - c0, k1 - c1)
        res.driver_cpu, res.load = d1 - d0, loadavg()
        stop = True
        done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
        if pending:
            res.errors.append(f"{len(pending)} clients still waiting {DRAIN_TIMEOUT}s after the window")
    finally:
        stop = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in conns:
            c.close()
    return res


async def sequential(one_run, n: int, warm: int, pid: int) -> LoopResult:
    """`warm` + `n` runs one after another on one connection; only the last `n` are kept (and the CPU
    of `pid` read around them)."""
    res = LoopResult()
    conn = one_run.new_conn()
    try:
        for i in range(warm + n):
            if i == warm:
                res.cpu = (proc_cpu_s(pid), 0.0)
                res.cpu_children = (proc_cpu_s(pid, children=True) - res.cpu[0], 0.0)
                res.window = (time.monotonic(), 0.0)
            try:
                r = await one_run(conn)
            except (BenchError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                res.errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                if len(res.errors) > 10:
                    break
                continue
            if i >= warm:
                res.runs.append(r)
    finally:
        conn.close()
    c1 = proc_cpu_s(pid)
    res.cpu, res.cpu_children = (res.cpu[0], c1), (res.cpu_children[0], proc_cpu_s(pid, children=True) - c1)
    res.window = (res.window[0], time.monotonic() + 1e-9)
    res.load = loadavg()
    return res


# ------------------------------------------------------------------------------------- attune

class Completions:
    """Joins webhook receipts with notifier frames: event -> enforcement -> execution `completed`.

    Frames may arrive before the HTTP answer that names the event, so both sides are remembered and
    whichever comes second resolves the waiter."""

    def __init__(self):
        self.enf_of_event: dict[int, int] = {}
        self.event_of_enf: dict[int, int] = {}
        self.done: dict[int, float] = {}        # enforcement -> monotonic arrival of `completed`
        self.failed: dict[int, str] = {}        # enforcement -> other terminal status
        self.waiters: dict[int, asyncio.Future] = {}
        self.frames = 0
        self.closed = ""  # why the notifier connection ended; then every wait fails at once

    def close(self, reason: str) -> None:
        self.closed = reason
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(BenchError(f"notifier WebSocket closed: {reason}"))

    def _settle(self, ev: int) -> None:
        fut = self.waiters.get(ev)
        if fut is None or fut.done():
            return
        enf = self.enf_of_event.get(ev)
        if enf in self.done:
            fut.set_result(self.done[enf])
        elif enf in self.failed:
            fut.set_exception(BenchError(f"event {ev}: execution {self.failed[enf]}"))

    def on_enforcement(self, ev: int, enf: int) -> None:
        self.enf_of_event[ev] = enf
        self.event_of_enf[enf] = ev
        self._settle(ev)

    def on_terminal(self, enf: int, status: str, t: float) -> None:
        if status == "completed":
            self.done[enf] = t
        else:
            self.failed[enf] = status
        ev = self.event_of_enf.get(enf)
        if ev is not None:
            self._settle(ev)

    async def wait(self, ev: int) -> float:
        if self.closed:
            raise BenchError(f"notifier WebSocket closed: {self.closed}")
        fut = asyncio.get_running_loop().create_future()
        self.waiters[ev] = fut
        self._settle(ev)
        try:
            return await asyncio.wait_for(fut, CALL_TIMEOUT)
        finally:
            del self.waiters[ev]


async def ws_reader(ws_url: str, token: str, comp: Completions, ready: asyncio.Event):
    """Feeds `comp` until cancelled; if the connection ends otherwise, every waiter fails at once."""
    try:
        await _ws_read(ws_url, token, comp, ready)
    except asyncio.CancelledError:
        comp.close("cancelled")
        raise
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException, ValueError,
            KeyError) as e:
        comp.close(f"{type(e).__name__}: {e}")
        ready.set()  # wake a setup still waiting for the subscription


async def _ws_read(ws_url: str, token: str, comp: Completions, ready: asyncio.Event):
    async with websockets.connect(ws_url + "/ws", extra_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None, max_queue=None, ping_interval=None,
                                  compression=None) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # welcome
        await ws.send(json.dumps({"type": "subscribe", "filter": "notification_type:enforcement_created"}))
        await ws.send(json.dumps({"type": "subscribe", "filter": "notification_type:execution_status_changed"}))
        ready.set()
        while True:
            raw = await ws.recv()
            t = time.monotonic()
            comp.frames += 1
            if "enforcement_created" in raw:
                p = json.loads(raw)["payload"]
                comp.on_enforcement(p["event"], p["id"])
            elif any(s in raw for s in ('"completed"', '"failed"', '"timeout"', '"cancelled"', '"abandoned"')):
                p = json.loads(raw)["payload"]
                if p.get("status") in ("completed", "failed", "timeout", "cancelled", "abandoned"):
                    comp.on_terminal(p["enforcement"], p["status"], t)


class AttuneRun:
    """One run: POST the webhook, then wait for the execution's `completed` frame."""

    def __init__(self, api_url: str, key: str, comp: Completions):
        u = urlsplit(api_url)
        self.host, self.port = u.hostname, u.port
        self.path = f"/api/v1/webhooks/{key}"
        self.body = json.dumps({"payload": {"bench": "speed"}}).encode()
        self.comp = comp
        self.accepted = 0

    def new_conn(self) -> HttpConn:
        return HttpConn(self.host, self.port)

    async def __call__(self, conn: HttpConn) -> tuple[float, float]:
        t0 = time.monotonic()
        status, body = await conn.request("POST", self.path, self.body)
        m = EVENT_ID_RE.search(body)
        if status != 200 or not m:
            raise BenchError(f"webhook HTTP {status}: {body[:200]!r}")
        self.accepted += 1
        return t0, await self.comp.wait(int(m.group(1)))


def recorded(client, rule_ref: str) -> tuple[int, int]:
    """(executions of the rule, of which completed) as GET /executions reports them."""
    total = client.list("/api/v1/executions", rule_ref=rule_ref, page_size=1)["pagination"]["total_items"]
    done = client.list("/api/v1/executions", rule_ref=rule_ref, status="completed",
                       page_size=1)["pagination"]["total_items"]
    return total, done


class AttuneSide:
    """The attune phases: a fresh webhook flow (pack action `true`, trigger, rule) per phase, completion
    seen on the notifier WebSocket, and afterwards GET /executions must hold every accepted webhook's
    execution as `completed`."""

    name = "attune"

    def __init__(self, args, srv: Server):
        self.args, self.srv, self.pid = args, srv, srv.proc.pid
        self.out: dict = {"loops": {}, "checks": []}
        self.comp = Completions()
        self.client = None
        self.ws_task = None
        self.pack = None

    async def setup(self) -> None:
        self.client = self.srv.admin_client()
        ready = asyncio.Event()
        self.ws_task = asyncio.create_task(ws_reader(self.srv.ws_url, self.client.token, self.comp, ready))
        await asyncio.wait_for(ready.wait(), 10)
        if self.comp.closed:
            raise BenchError(f"notifier WebSocket: {self.comp.closed}")

    def _flow(self):
        flow = self.client.webhook_flow("true", prefix="speed", pack_ref=self.pack)
        self.pack = flow.pack_ref
        return flow, AttuneRun(self.srv.api_url, flow.key, self.comp)

    def _check(self, label: str, run: AttuneRun, flow) -> None:
        if self.comp.closed:
            raise BenchError(f"notifier WebSocket closed: {self.comp.closed}")
        if not self.srv.running():
            raise BenchError("attune serve died")
        total, done = recorded(self.client, flow.rule_ref)
        self.out["checks"].append((label, run.accepted, total, done))
        log(f"  {label}: {run.accepted} webhooks accepted, GET /executions: {total} executions, "
            f"{done} completed")
        if not (run.accepted == total == done):
            raise BenchError(f"{label}: {run.accepted} webhooks accepted but GET /executions shows {total} "
                             f"executions ({done} completed)")

    async def loop(self, clients: int) -> None:
        flow, run = self._flow()
        res = await closed_loop(run, clients, self.args.warmup, self.args.seconds, self.pid)
        if res.errors:
            raise BenchError(f"{len(res.errors)} errors, e.g. {res.errors[:3]}")
        self._check(f"{clients} clients", run, flow)
        self.out["loops"][clients] = res

    async def seq(self) -> None:
        flow, run = self._flow()
        res = await sequential(run, self.args.latency_n, self.args.latency_warm, self.pid)
        if res.errors:
            raise BenchError(f"{len(res.errors)} errors, e.g. {res.errors[:3]}")
        self._check("sequential", run, flow)
        self.out["seq"] = res

    async def close(self) -> None:
        if self.ws_task is not None:
            self.ws_task.cancel()
            await asyncio.gather(self.ws_task, return_exceptions=True)


def attune_version(binary: Path) -> str:
    for flag in ("--version", "version"):
        try:
            r = subprocess.run([str(binary), flag], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().splitlines()[0]
    return "(version unknown)"


# ------------------------------------------------------------------------------------- Node-RED

NODERED_FUNC = """\
const ok = msg.payload !== null && typeof msg.payload === 'object' && msg.payload.code === 0;
const k = ok ? 'completed' : 'failed';
const n = (flow.get(k) || 0) + 1;
flow.set(k, n);
msg.statusCode = ok ? 200 : 500;
msg.payload = {status: k, n: n};
return msg;
"""

NODERED_COUNT = """\
msg.payload = {completed: flow.get('completed') || 0, failed: flow.get('failed') || 0};
return msg;
"""


def nodered_flows(mode: str) -> list:
    """POST /hook -> exec -> count -> response, and GET /count. The exec node's third output (return
    code) feeds the counter. mode "spawn": child_process.spawn of `/bin/sh -c true` (what attune's shell
    runner runs); mode "exec": child_process.exec of `true` (Node-RED runs it with /bin/bash -c)."""
    z = "speedbench"
    command = "/bin/sh -c true" if mode == "spawn" else "true"
    return [
        {"id": z, "type": "tab", "label": "speed bench"},
        {"id": "hook_in", "type": "http in", "z": z, "url": "/hook", "method": "post", "upload": False,
         "swaggerDoc": "", "wires": [["run_true"]]},
        {"id": "run_true", "type": "exec", "z": z, "command": command, "addpay": "", "append": "",
         "useSpawn": "true" if mode == "spawn" else "false", "timer": "", "winHide": False, "oldrc": False,
         "name": "true",
         "wires": [[], [], ["count"]]},
        {"id": "count", "type": "function", "z": z, "name": "record completion", "func": NODERED_FUNC,
         "outputs": 1, "wires": [["hook_out"]]},
        {"id": "hook_out", "type": "http response", "z": z, "statusCode": "", "headers": {}, "wires": []},
        {"id": "count_in", "type": "http in", "z": z, "url": "/count", "method": "get", "upload": False,
         "swaggerDoc": "", "wires": [["count_read"]]},
        {"id": "count_read", "type": "function", "z": z, "func": NODERED_COUNT, "outputs": 1,
         "wires": [["count_out"]]},
        {"id": "count_out", "type": "http response", "z": z, "statusCode": "", "headers": {}, "wires": []},
    ]


NODERED_SETTINGS = """\
// Written by tests/bench/speed_bench.py: a scratch Node-RED for the speed benchmark.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: 0,
    flowFile: %(flow_file)s,
    userDir: %(user_dir)s,
    flowFilePretty: true,
    credentialSecret: false,
    logging: { console: { level: "info", metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false }, tours: false },
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
};
"""


def install_nodered(scratch: Path, version: str) -> Path:
    """red.js of node-red installed under `scratch` (npm install --prefix, skipped when present)."""
    red = scratch / "node_modules" / "node-red" / "red.js"
    pkg = scratch / "node_modules" / "node-red" / "package.json"
    if red.exists() and json.loads(pkg.read_text()).get("version", "").startswith(version):
        return red
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("node or npm not on PATH")
    scratch.mkdir(parents=True, exist_ok=True)
    log(f"npm install --prefix {scratch} node-red@{version}")
    try:
        r = subprocess.run(["npm", "install", "--prefix", str(scratch), "--no-audit", "--no-fund",
                            f"node-red@{version}"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BenchError("npm install timed out after 600 s") from None
    if r.returncode != 0 or not red.exists():
        raise BenchError(f"npm install failed ({r.returncode}): {(r.stderr or r.stdout)[-300:].strip()}")
    return red


class NodeRed:
    """A Node-RED process on an ephemeral port with the benchmark flow (written before start)."""

    READY_RE = re.compile(r"Server now running at (http://[\d.]+:\d+)/")

    def __init__(self, red_js: Path, user_dir: Path, mode: str):
        self.red_js, self.user_dir, self.mode = red_js, user_dir, mode
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = user_dir / "node-red.log"
        self.version = json.loads((red_js.parent / "package.json").read_text())["version"]

    def start(self, timeout: float = 60.0) -> None:
        self.user_dir.mkdir(parents=True, exist_ok=True)
        flow_file = self.user_dir / "flows.json"
        flow_file.write_text(json.dumps(nodered_flows(self.mode), indent=2))
        settings = self.user_dir / "settings.js"
        settings.write_text(NODERED_SETTINGS % {"flow_file": json.dumps(str(flow_file)),
                                                 "user_dir": json.dumps(str(self.user_dir))})
        logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(["node", str(self.red_js), "--settings", str(settings),
                                      "--userDir", str(self.user_dir)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=str(self.user_dir))
        _children.append(self.proc)
        got: dict = {}
        started = threading.Event()

        def pump():
            for raw in iter(self.proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace")
                logf.write(line)
                logf.flush()
                m = self.READY_RE.search(line)
                if m:
                    got["url"] = m.group(1)
                if "Started flows" in line:
                    got["flows"] = True
                if "url" in got and "flows" in got:
                    started.set()
            logf.close()
            started.set()

        threading.Thread(target=pump, daemon=True).start()
        if not started.wait(timeout) or "url" not in got:
            self.stop()
            raise BenchError(f"Node-RED did not start within {timeout}s; see {self.log_path}")
        self.url = got["url"]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class NodeRedRun:
    """One run: POST /hook; the answer arrives after `true` exited and the completion was counted."""

    def __init__(self, url: str):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.body = json.dumps({"bench": "speed"}).encode()
        self.completed = 0

    def new_conn(self) -> HttpConn:
        return HttpConn(self.host, self.port)

    async def __call__(self, conn: HttpConn) -> tuple[float, float]:
        t0 = time.monotonic()
        status, body = await conn.request("POST", "/hook", self.body)
        t1 = time.monotonic()
        if status != 200 or b'"completed"' not in body:
            raise BenchError(f"Node-RED HTTP {status}: {body[:200]!r}")
        self.completed += 1
        return t0, t1


async def nodered_count(url: str) -> dict:
    u = urlsplit(url)
    conn = HttpConn(u.hostname, u.port)
    try:
        status, body = await conn.request("GET", "/count")
    finally:
        conn.close()
    if status != 200:
        raise BenchError(f"Node-RED GET /count: HTTP {status}")
    return json.loads(body)


class NodeRedSide:
    """The Node-RED phases: POST /hook answered after `true` exited; the flow's counter must match."""

    name = "Node-RED"

    def __init__(self, args, nr: NodeRed):
        self.args, self.nr, self.pid = args, nr, nr.proc.pid
        self.out: dict = {"loops": {}}
        self.run = NodeRedRun(nr.url)

    async def setup(self) -> None:
        await sequential(self.run, 0, 50, self.pid)  # JIT and connection warm-up, not measured

    def _check(self) -> None:
        if not self.nr.running():
            raise BenchError("Node-RED died")

    async def loop(self, clients: int) -> None:
        res = await closed_loop(self.run, clients, self.args.warmup, self.args.seconds, self.pid)
        if res.errors:
            raise BenchError(f"{len(res.errors)} errors, e.g. {res.errors[:3]}")
        self._check()
        self.out["loops"][clients] = res

    async def seq(self) -> None:
        res = await sequential(self.run, self.args.latency_n, self.args.latency_warm, self.pid)
        if res.errors:
            raise BenchError(f"{len(res.errors)} errors, e.g. {res.errors[:3]}")
        self._check()
        self.out["seq"] = res

    async def close(self) -> None:
        counts = await nodered_count(self.nr.url)
        self.out["count"] = (self.run.completed, counts)
        log(f"  Node-RED flow context: {counts} after {self.run.completed} completed answers")
        if counts.get("completed") != self.run.completed or counts.get("failed"):
            raise BenchError(f"counted {counts} but {self.run.completed} runs were answered completed")


async def bench_all(args, sides: list) -> dict:
    """Runs the phases interleaved (attune, then Node-RED, for each client count, then the sequential
    runs), so that both see the same machine load as nearly as possible. An attune failure aborts
    (BenchError); a Node-RED failure drops Node-RED and is returned as {"Node-RED": reason}."""
    failed: dict = {}
    live = list(sides)

    async def step(side, what: str, coro_fn) -> None:
        if side not in live:
            return
        try:
            await coro_fn()
        except (BenchError, OSError, asyncio.TimeoutError) as e:
            if side.name == "attune":
                raise BenchError(f"attune, {what}: {e}") from None
            failed[side.name] = f"{what}: {e}"
            live.remove(side)
            print(f"error: {side.name}, {what}: {e}", file=sys.stderr)

    for side in sides:
        await step(side, "setup", side.setup)
    for clients in args.clients:
        for side in sides:
            log(f"{side.name}: {clients} closed-loop clients, {args.warmup}s warm-up + {args.seconds}s "
                f"(load {loadavg()})")
            await step(side, f"{clients} clients", lambda: side.loop(clients))
            r = side.out["loops"].get(clients)
            if r is not None:
                log(f"  {r.rate():.0f} completed/s, server CPU {r.cpu_ms_per_run():.3f} ms/run, children "
                    f"{r.children_ms_per_run():.3f} ms/run, driver CPU "
                    f"{100 * r.driver_cpu / args.seconds:.0f}%")
    for side in sides:
        log(f"{side.name}: {args.latency_n} sequential runs (load {loadavg()})")
        await step(side, "sequential", side.seq)
    for side in sides:
        await step(side, "final check", side.close)
    return failed


# ------------------------------------------------------------------------------------- report

def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"


def report(args, env: dict, spawns: list[dict], at: dict, nr: dict | None, nr_skip: str) -> None:
    """`spawns`: bench_spawn before the servers and (if it ran) after them; the ratio to raw spawning
    uses the higher 2-thread /bin/true rate of the two (a busy moment lowers a short spawn run)."""
    def ok(b: bool) -> str:
        return "met" if b else "NOT met"

    def both(key, f="{:.0f}"):
        return " ; ".join(f.format(sp[key]) for sp in spawns)

    sp2 = max(sp[("true", 2)] for sp in spawns)
    print()
    print("=" * 100)
    print(f"Speed benchmark — {env['date']}, {os.cpu_count()} CPUs, load average before {env['load0']}, "
          f"after {env['load1']}")
    print(f"attune: {args.attune_bin} ({env['attune_version']})")
    print(f"bench_spawn: {args.spawn_bin}")
    print(f"Node-RED: {env.get('nodered', nr_skip)}")
    print(f"windows: {args.warmup}s warm-up + {args.seconds}s per client count; sequential n={args.latency_n}")
    print("=" * 100)
    print("attune / Node-RED: above 1 is attune faster for throughput; below 1 is attune faster for latency"
          " and CPU")
    print("| measurement | raw spawn | attune | Node-RED | attune / Node-RED | target (attune) |")
    print("|---|---:|---:|---:|---:|---|")
    when = "before ; after the servers" if len(spawns) > 1 else "before the servers"
    print(f"| posix_spawn+wait /bin/true, 1 thread ({when}) | {both(('true', 1))}/s | | | | |")
    print(f"| posix_spawn+wait /bin/true, 2 threads ({when}) | {both(('true', 2))}/s | | | | |")
    print(f"| posix_spawn+wait /bin/sh -c true, 1 / 2 threads ({when}) | {both(('sh', 1))} / "
          f"{both(('sh', 2))}/s | | | | |")
    print(f"| CPU per spawn, parent + child, /bin/true / /bin/sh -c true ({when}) | "
          f"{both(('true', 'cpu_ms'), '{:.3f}')} / {both(('sh', 'cpu_ms'), '{:.3f}')} ms | | | | |")
    nr_loops = nr["loops"] if nr else {}
    for c, r in at["loops"].items():
        n = nr_loops.get(c)
        rate = r.rate()
        print(f"| throughput, {c} closed-loop clients (completed/s) | {sp2:.0f}/s (2 thr, higher) | "
              f"{rate:.0f}/s = "
              f"{rate / sp2:.2f}× raw | {f'{n.rate():.0f}/s' if n else '—'} | "
              f"{fmt_ratio(rate, n.rate()) if n else '—'} | ≥ {TARGETS['ratio_raw']}× raw: "
              f"{ok(rate / sp2 >= TARGETS['ratio_raw'])} |")
    for c, r in at["loops"].items():
        n = nr_loops.get(c)
        print(f"| server CPU per completed run without children, {c} clients | — | "
              f"{r.cpu_ms_per_run():.3f} ms | {f'{n.cpu_ms_per_run():.3f} ms' if n else '—'} | "
              f"{fmt_ratio(r.cpu_ms_per_run(), n.cpu_ms_per_run()) if n else '—'} | "
              f"≤ {TARGETS['cpu_ms']} ms: {ok(r.cpu_ms_per_run() <= TARGETS['cpu_ms'])} |")
    for c, r in at["loops"].items():
        n = nr_loops.get(c)
        print(f"| children CPU per run (the spawned shell + `true`), {c} clients | — | "
              f"{r.children_ms_per_run():.3f} ms | "
              f"{f'{n.children_ms_per_run():.3f} ms' if n else '—'} | | |")
    for c, r in at["loops"].items():
        n = nr_loops.get(c)
        lat = r.lat_ms()
        nlat = n.lat_ms() if n else []
        print(f"| latency under load, {c} clients, p50 / p99 | — | "
              f"{pct(lat, 50):.1f} / {pct(lat, 99):.1f} ms | "
              f"{f'{pct(nlat, 50):.1f} / {pct(nlat, 99):.1f} ms' if n else '—'} | | |")
    s = at["seq"].lat_ms()
    ns = nr["seq"].lat_ms() if nr else []
    for label, p, tgt in (("p50", 50, TARGETS["p50_ms"]), ("p90", 90, None), ("p99", 99, TARGETS["p99_ms"])):
        a = pct(s, p)
        b = pct(ns, p) if ns else None
        print(f"| sequential latency POST → completed, {label} | — | {a:.2f} ms | "
              f"{f'{b:.2f} ms' if b is not None else '—'} | {fmt_ratio(a, b) if b else '—'} | "
              f"{f'≤ {tgt} ms: {ok(a <= tgt)}' if tgt else ''} |")
    print(f"| sequential latency, max | — | {max(s):.2f} ms | {f'{max(ns):.2f} ms' if ns else '—'} | | |")
    a, b = at["seq"].cpu_ms_per_run(), (nr["seq"].cpu_ms_per_run() if nr else None)
    print(f"| server CPU per run without children, sequential | — | {a:.3f} ms | "
          f"{f'{b:.3f} ms' if b is not None else '—'} | {fmt_ratio(a, b) if b else '—'} | |")
    print()
    print("Driver (this Python process) CPU over each window, and load average at the window's end:")
    for name, loops in (("attune", at["loops"]), ("Node-RED", nr_loops)):
        for c, r in loops.items():
            print(f"   {name:8s} {c:3d} clients: driver {100 * r.driver_cpu / args.seconds:3.0f}% of a core, "
                  f"server {100 * (r.cpu[1] - r.cpu[0]) / args.seconds:3.0f}%, load {r.load}")
    print("Durability (attune): webhooks accepted vs GET /executions (total, completed) per phase: " +
          "; ".join(f"{lbl} {acc} vs {tot}/{done}" for lbl, acc, tot, done in at["checks"]))
    if nr:
        done, counts = nr["count"]
        print(f"Node-RED flow-context counter: {counts} vs {done} completed answers")


# ------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attune-bin", type=Path, default=attune_bin())
    ap.add_argument("--spawn-bin", type=Path, default=REPO / "build" / "tests" / "bench" / "bench_spawn")
    ap.add_argument("--spawn-seconds", type=float, help="per bench_spawn case (3; --quick 1)")
    ap.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    ap.add_argument("--seconds", type=float, help="measured window per client count (15; --quick 4)")
    ap.add_argument("--warmup", type=float, help="unmeasured seconds before each window (3; --quick 1)")
    ap.add_argument("--latency-n", type=int, help="sequential runs measured (500; --quick 100)")
    ap.add_argument("--latency-warm", type=int, default=20, help="unmeasured sequential runs first")
    ap.add_argument("--skip-nodered", action="store_true")
    ap.add_argument("--nodered-dir", type=Path, default=NODERED_DIR, help="scratch dir for npm + userDir")
    ap.add_argument("--nodered-version", default=NODERED_VERSION)
    ap.add_argument("--nodered-mode", choices=("spawn", "exec"), default="spawn",
                    help="exec node mode: spawn `/bin/sh -c true` (default) or exec `true` via bash")
    ap.add_argument("--quick", action="store_true", help="short smoke run (~1 minute); explicit options win")
    ap.add_argument("--keep", action="store_true", help="keep the attune temp dir and logs")
    args = ap.parse_args()
    for name, full, quick in (("seconds", 15.0, 4.0), ("warmup", 3.0, 1.0), ("latency_n", 500, 100),
                              ("spawn_seconds", 3.0, 1.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if not args.attune_bin.exists():
        print(f"attune binary not found: {args.attune_bin}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    env = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load0": loadavg(),
           "attune_version": attune_version(args.attune_bin)}
    log(f"load average {env['load0']}, {os.cpu_count()} CPUs; attune {args.attune_bin} "
        f"({env['attune_version']})")
    try:
        spawn = run_bench_spawn(args.spawn_bin, args.spawn_seconds)
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # Node-RED first (an npm install must not overlap the measurements), then attune; both stay up
    # and the phases alternate between them.
    nr, nr_skip = None, ""
    if args.skip_nodered:
        nr_skip = "skipped (--skip-nodered)"
    else:
        try:
            red = install_nodered(args.nodered_dir, args.nodered_version)
            nr = NodeRed(red, args.nodered_dir / "userdir", args.nodered_mode)
            nr.start()
            node_v = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                    timeout=10).stdout.strip()
            env["nodered"] = (f"node-red {nr.version} on node {node_v}, exec node in {nr.mode} mode, "
                              f"{red}, pid {nr.proc.pid} {nr.url}")
            log(f"Node-RED {nr.version} pid {nr.proc.pid}: {nr.url}")
        except (BenchError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            if nr is not None:
                nr.stop()
            nr, nr_skip = None, f"skipped ({e})"
            print(f"Node-RED: {nr_skip}")

    rc = 0
    tmp = Path(tempfile.mkdtemp(prefix="attune-speed-"))
    srv = Server(args.attune_bin, tmp / "data", tmp / "attune.log")
    at = nr_side = None
    try:
        srv.start(timeout=60)
        _children.append(srv.proc)
        log(f"attune serve pid {srv.proc.pid}: {srv.api_url} {srv.ws_url}")
        at = AttuneSide(args, srv)
        sides = [at]
        if nr is not None:
            nr_side = NodeRedSide(args, nr)
            sides.append(nr_side)
        failed = asyncio.run(bench_all(args, sides))
        if not srv.running():
            raise BenchError("attune serve died during the run")
        if failed:
            nr_skip = f"error ({failed['Node-RED']}; log {nr.log_path})"
            nr_side = None
            rc = 1
    except (BenchError, AssertionError, OSError, asyncio.TimeoutError) as e:
        state = "running" if srv.running() else "exited"
        print(f"error: {e} (attune serve {state})\n{srv.log_tail(40)}", file=sys.stderr)
        at = None
        rc = 1
    finally:
        if nr is not None:
            nr.stop()
        code = srv.stop(grace=20)
        if code != 0 and rc == 0:
            print(f"error: attune serve exited with code {code}\n{srv.log_tail(40)}", file=sys.stderr)
            rc = 1
        if args.keep or rc != 0:
            print(f"attune data dir and log kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if at is None:
        return rc
    spawns = [spawn]
    try:
        log("bench_spawn again, after the servers")
        spawns.append(run_bench_spawn(args.spawn_bin, args.spawn_seconds))
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"error: second bench_spawn: {e}", file=sys.stderr)
        rc = 1
    env["load1"] = loadavg()
    report(args, env, spawns, at.out, nr_side.out if nr_side else None, nr_skip)
    return rc

if __name__ == "__main__":
    sys.exit(main())
