#!/usr/bin/env python3
"""Web console executions view under load (issue 18): first page with N executions in the store, and a
sustained stream of execution status changes over the notifier WebSocket, measured in headless Chromium.

Requirement: "The executions view stays responsive with 100,000 executions in the store (first page under
200 ms measured in the browser test) and with 200 status changes per second arriving over the WebSocket."

What it does (one `attune serve` on a temp data dir, ephemeral ports, serving --console-dir):
 1. Seeds --executions executions through the public API: a pack with two inline shell actions,
    `ok` (`true`, 90 %) and `bad` (`exit 1`, 10 % -> failed), POST /api/v1/executions/execute from
    --threads keep-alive requests.Sessions, paused while more than --max-backlog are not yet terminal
    (terminal count from /metrics); waits until every one is terminal. Prints the seeding rate.
 2. API latency from Python (one keep-alive session): GET /api/v1/executions?page_size=50 unfiltered and
    with the console's filters (status=completed, status=failed, action_ref=bad, status+action_ref, and a
    status+action_ref pair that matches nothing); p50/p99 over --api-reps.
 3. Browser (chromium --headless=new via chromedriver): logs in through the form, then --loads times each:
    * full reload of #/executions: navigationStart -> performance mark 'attune:executions-first-page',
      plus the /api/v1/executions fetch (resource timing) and its end -> mark (render);
    * in-app navigation: click #nav-executions (from #/packs) -> mark;
    * filter: choose a status, click #filter-apply -> mark; click #filter-clear -> mark;
    * 5 x status=completed + action ref (#filter-action), click #filter-apply -> mark.
 4. Live: a paced client posts --rate / --changes-per-execution executions of `ok` per second for
    --seconds (each makes ~4 execution_status_changed frames + 1 execution_created). Our own notifier
    client (Bearer header, entity_type:execution) counts the frames actually sent. In the browser:
    window.__attuneStats.notifications sampled every second, requestAnimationFrame gaps, long tasks
    (PerformanceObserver 'longtask'), a MutationObserver timestamp for the first time each row is in
    the DOM (vs. the POST's answer time in Python: same clock), and every --interact-every seconds a
    filter apply+clear and a nav packs->executions, timed click -> mark. After the stream: time until
    the page has applied every frame, and whether the rows' statuses equal the API's.

Prints a results table. Writes nothing outside its temp dir (removed unless --keep).

  cd api/console && npm ci && node build.mjs /tmp/console-bench-out
  /usr/bin/python3 tests/bench/console_bench.py --console-dir /tmp/console-bench-out            # 100k, 200/s, 20 s
  /usr/bin/python3 tests/bench/console_bench.py --console-dir /tmp/console-bench-out --executions 5000 --seconds 10

Exits non-zero only on errors (server died, POSTs refused, executions not terminal), never on a number.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from attune_e2e import REPO_ROOT, Server, attune_bin, expect, uid  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MARK = "attune:executions-first-page"


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def pct(values: list, p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def default_console_dir(binary: Optional[Path] = None) -> Path:
    return Path(os.environ.get("ATTUNE_CONSOLE_DIR") or Path(binary or attune_bin()).parent / "console")


def check_console_dir(d: Path) -> Path:
    d = Path(d).resolve()
    if not (d / "index.html").is_file():
        raise BenchError(f"no console build at {d} (index.html missing): build it with "
                         f"`cd api/console && npm ci && node build.mjs {d}` or point --console-dir / "
                         f"ATTUNE_CONSOLE_DIR at a build")
    return d


# ------------------------------------------------------------------------------------------- seeding

def terminal_count(session: requests.Session, api_url: str) -> int:
    text = session.get(api_url + "/metrics", timeout=30).text
    return int(sum(float(m.group(2)) for m in
                   re.finditer(r'^attune_executions_total\{status="([a-z]+)"\} (\S+)$', text, re.M)))


class Rig:
    """The server's admin client plus the pack / actions the bench uses."""

    def __init__(self, srv: Server):
        self.srv = srv
        self.api = srv.admin_client()
        self.pack = self.api.create_pack(f"cb_{uid(6)}")["ref"]
        self.ok = self.api.create_action(f"{self.pack}.ok", "true")["ref"]
        self.bad = self.api.create_action(f"{self.pack}.bad", "exit 1")["ref"]

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api.token}", "Content-Type": "application/json"}


def seed(rig: Rig, n: int, threads: int = 24, max_backlog: int = 3000, fail_every: int = 10,
         timeout: float = 1800.0, progress: Optional[Callable[[str], None]] = log) -> dict:
    """n executions via POST /executions/execute (every fail_every-th of the failing action); waits until all
    are terminal. Returns {seconds, rate, post_seconds, http_p50_ms, http_p99_ms, paused_s}."""
    url = rig.srv.api_url + "/api/v1/executions/execute"
    base_terminal = terminal_count(requests.Session(), rig.srv.api_url)
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": [], "lat": []}
    go = threading.Event()
    go.set()
    stop = threading.Event()
    paused = [0.0]
    body_ok = json.dumps({"action_ref": rig.ok}).encode()
    body_bad = json.dumps({"action_ref": rig.bad}).encode()
    headers = rig.headers()

    def worker():
        s = requests.Session()
        lat = []
        while not stop.is_set():
            go.wait(1.0)
            if not go.is_set():
                continue
            with lock:
                i = state["next"]
                if i >= n:
                    break
                state["next"] = i + 1
            body = body_bad if fail_every and i % fail_every == fail_every - 1 else body_ok
            t = time.perf_counter()
            for attempt in range(20):
                try:
                    r = s.post(url, data=body, headers=headers, timeout=60)
                except requests.RequestException as e:
                    r = None
                    err = repr(e)
                if r is not None and r.status_code == 201:
                    break
                if r is not None and r.status_code not in (429, 503):
                    with lock:
                        state["errors"].append(f"{r.status_code} {r.text[:200]}")
                    stop.set()
                    return
                time.sleep(0.05 * (attempt + 1))
            else:
                with lock:
                    state["errors"].append(f"execute failed 20 times: {r.status_code if r is not None else err}")
                stop.set()
                return
            lat.append(time.perf_counter() - t)
            with lock:
                state["done"] += 1
        with lock:
            state["lat"].extend(lat)

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ths:
        t.start()
    mon = requests.Session()
    last_log = t0
    terminal = 0
    while any(t.is_alive() for t in ths):
        time.sleep(0.5)
        if not rig.srv.running():
            stop.set()
            raise BenchError(f"attune serve died while seeding\n{rig.srv.log_tail()}")
        terminal = terminal_count(mon, rig.srv.api_url) - base_terminal
        backlog = state["done"] - terminal
        if backlog > max_backlog and go.is_set():
            go.clear()
            pause_start = time.monotonic()
        elif backlog < max_backlog // 2 and not go.is_set():
            go.set()
            paused[0] += time.monotonic() - pause_start
        if progress and time.monotonic() - last_log > 10:
            last_log = time.monotonic()
            el = last_log - t0
            progress(f"seed: {state['done']}/{n} posted, {terminal} terminal, {el:.0f} s "
                     f"({terminal / el:.0f}/s), load {loadavg()}")
    go.set()
    post_s = time.monotonic() - t0
    if state["errors"]:
        raise BenchError(f"execute refused: {state['errors'][:3]}")
    deadline = time.monotonic() + timeout
    while terminal < n:
        if time.monotonic() > deadline:
            raise BenchError(f"only {terminal} of {n} executions terminal after {timeout} s")
        time.sleep(0.5)
        terminal = terminal_count(mon, rig.srv.api_url) - base_terminal
    el = time.monotonic() - t0
    lat = [x * 1000 for x in state["lat"]]
    return {"seconds": el, "rate": n / el, "post_seconds": post_s, "http_p50_ms": pct(lat, 50),
            "http_p99_ms": pct(lat, 99), "paused_s": paused[0]}


# --------------------------------------------------------------------------------------- API latency

def api_latency(rig: Rig, reps: int = 200, warmup: int = 10, max_seconds: float = 20.0) -> list:
    """[(label, total_items, p50_ms, p99_ms, n)] for the first page with the console's filters; each case
    stops after max_seconds (with at least 5 timed requests)."""
    s = requests.Session()
    h = {"Authorization": f"Bearer {rig.api.token}"}
    cases = [
        ("page_size=50", {}),
        ("status=completed", {"status": "completed"}),
        ("status=failed", {"status": "failed"}),
        ("status=<active set>", {"status": "requested,scheduling,scheduled,running,canceling"}),
        ("action_ref=bad", {"action_ref": rig.bad}),
        ("status=completed&action_ref=ok", {"status": "completed", "action_ref": rig.ok}),
        ("status=failed&action_ref=ok (0 rows)", {"status": "failed", "action_ref": rig.ok}),
        ("page=100 (offset 4950)", {"page": 100}),
    ]
    out = []
    for label, params in cases:
        q = {"page_size": 50, **params}
        lat = []
        total = None
        t_case = time.monotonic()
        for i in range(warmup + reps):
            if i >= 2 and time.monotonic() - t_case > max_seconds and len(lat) >= 5:
                break
            t = time.perf_counter()
            r = s.get(rig.srv.api_url + "/api/v1/executions", params=q, headers=h, timeout=60)
            dt = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                raise BenchError(f"GET /executions {q} -> {r.status_code} {r.text[:200]}")
            if i >= min(warmup, 2 if dt > 100 else warmup):
                lat.append(dt)
            total = r.json()["pagination"]["total_items"]
        out.append((label, total, pct(lat, 50), pct(lat, 99), len(lat)))
    return out


# ------------------------------------------------------------------------------------------- browser

def make_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise BenchError(f"{path} missing: apt-get install chromium chromium-driver python3-selenium")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1280,900", "--disable-dev-shm-usage",
                "--disable-gpu", "--no-first-run", "--password-store=basic"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    return drv


def wait_js(drv, script: str, timeout: float = 15.0, desc: str = "", interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = drv.execute_script(script)
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {desc or script}")
        time.sleep(interval)


JS_FIRST_PAGE = """
const m = performance.getEntriesByName('%s');
if (!m.length) return null;
const mark = m[m.length - 1].startTime;
const res = performance.getEntriesByType('resource').filter(e => e.name.indexOf('/api/v1/executions?') >= 0);
const me = performance.getEntriesByType('resource').filter(e => e.name.indexOf('/auth/me') >= 0);
const js = performance.getEntriesByType('resource').filter(e => e.name.indexOf('/assets/app.js') >= 0);
const nav = performance.getEntriesByType('navigation')[0];
const f = res.length ? res[res.length - 1] : null;
return {mark: mark, rows: document.querySelectorAll('#executions-table tbody tr').length,
        fetch_start: f && f.startTime, fetch_end: f && f.responseEnd, fetch_dur: f && f.duration,
        fetch_ttfb: f && (f.responseStart - f.requestStart),
        me_start: me.length ? me[me.length-1].startTime : null, me_end: me.length ? me[me.length-1].responseEnd : null,
        js_end: js.length ? js[js.length-1].responseEnd : null,
        dcl: nav ? nav.domContentLoadedEventEnd : null};
""" % MARK

JS_RESET = f"performance.clearMarks('{MARK}'); performance.clearResourceTimings();"


def login_ui(drv, base: str, login: str, password: str) -> None:
    drv.get(base + "/#/login")
    wait_js(drv, "return document.getElementById('login-user')", desc="#login-user")
    drv.find_element("css selector", "#login-user").send_keys(login)
    drv.find_element("css selector", "#login-password").send_keys(password)
    drv.find_element("css selector", "#login-submit").click()
    wait_js(drv, "return document.getElementById('executions-table')", 30, "#executions-table after login")
    wait_js(drv, f"return performance.getEntriesByName('{MARK}').length", 30, "first-page mark")


def ws_open(drv, timeout: float = 15.0) -> None:
    wait_js(drv, "var e = document.getElementById('ws-status'); return e && e.dataset.state === 'open'",
            timeout, "#ws-status[data-state=open]")


def measure_reload(drv, base: str) -> dict:
    drv.get("about:blank")
    drv.get(base + "/#/executions")
    wait_js(drv, f"return performance.getEntriesByName('{MARK}').length", 30, "first-page mark after reload")
    return drv.execute_script(JS_FIRST_PAGE)


def timed_click(drv, selector: str, before: str = "", timeout: float = 30.0) -> dict:
    """Clears the mark, clicks `selector` from JS (t0 = performance.now() just before), waits for the mark."""
    drv.execute_script(JS_RESET + before + """
        window.__clickT0 = performance.now();
        document.querySelector(arguments[0]).click();""", selector)
    wait_js(drv, f"return performance.getEntriesByName('{MARK}').length", timeout, f"mark after click {selector}")
    r = drv.execute_script(JS_FIRST_PAGE)
    r["click_to_mark"] = r["mark"] - drv.execute_script("return window.__clickT0")
    return r


def nav_roundtrip(drv) -> dict:
    """#nav-packs, then a timed #nav-executions -> mark."""
    drv.execute_script("document.getElementById('nav-packs').click()")
    wait_js(drv, "return location.hash === '#/packs' && !document.getElementById('executions-table')",
            15, "packs page")
    return timed_click(drv, "#nav-executions")


SET_STATUS = """
const sel = document.getElementById('filter-status');
sel.value = arguments[1];
sel.dispatchEvent(new Event('change', {bubbles: true}));
"""


SET_ACTION = """
const inp = document.getElementById('filter-action');
inp.value = arguments[0];
inp.dispatchEvent(new Event('input', {bubbles: true}));
"""


def filter_roundtrip(drv, status: str, action_ref: str = "") -> tuple[dict, dict]:
    """Status (and action ref) filter -> Apply (timed), then Clear (timed)."""
    drv.execute_script(SET_STATUS.replace("arguments[1]", json.dumps(status)))
    if action_ref:
        drv.execute_script(SET_ACTION, action_ref)
    a = timed_click(drv, "#filter-apply")
    c = timed_click(drv, "#filter-clear")
    return a, c


def browser_first_page(drv, base: str, loads: int, action_ref: str = "") -> dict:
    out = {"reload": [], "nav": [], "filter_apply": [], "filter_clear": [], "filter_combo": []}
    for i in range(loads):
        out["reload"].append(measure_reload(drv, base))
    ws_open(drv)
    for i in range(loads):
        out["nav"].append(nav_roundtrip(drv))
    for i in range(loads):
        a, c = filter_roundtrip(drv, "completed" if i % 2 == 0 else "failed")
        out["filter_apply"].append(a)
        out["filter_clear"].append(c)
    if action_ref:
        for i in range(min(loads, 5)):
            a, c = filter_roundtrip(drv, "completed", action_ref)
            out["filter_combo"].append(a)
    return out


# ----------------------------------------------------------------------------------------------- live

JS_INSTRUMENT = """
const b = window.__bench = {gaps: [], longtasks: [], seen: {}, on: false, samples: []};
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) b.longtasks.push([e.startTime, e.duration]); })
    .observe({entryTypes: ['longtask']});
  b.longtask_supported = true;
} catch (e) { b.longtask_supported = false; }
let last = performance.now();
const tick = (now) => { if (b.on) b.gaps.push(now - last); last = now; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
const record = (node, t) => {
  if (node.nodeType !== 1) return;
  const rows = node.matches('tr[data-execution-id]') ? [node] : node.querySelectorAll('tr[data-execution-id]');
  for (const r of rows) { const id = r.dataset.executionId; if (!(id in b.seen)) b.seen[id] = t; }
};
const mo = new MutationObserver((muts) => {
  const t = performance.timeOrigin + performance.now();
  for (const m of muts) for (const n of m.addedNodes) record(n, t);
});
mo.observe(document.getElementById('main'), {childList: true, subtree: true});
// Every batch the page applies: (epoch ms, running notification count).
b.applied = [];
const st = window.__attuneStats;
let nval = st.notifications;
Object.defineProperty(st, 'notifications', {configurable: true, enumerable: true, get: () => nval,
  set: (x) => { nval = x; b.applied.push([performance.timeOrigin + performance.now(), x]); }});
for (const r of document.querySelectorAll('tr[data-execution-id]')) b.seen[r.dataset.executionId] = -1;
return b.longtask_supported;
"""


def _proc_cpu(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def chrome_renderer_pids(drv) -> list[int]:
    """The renderer processes of the browser chromedriver started (cmdline has --type=renderer)."""
    root = drv.service.process.pid
    kids: dict = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            todo.append(c)
            try:
                if b"--type=renderer" in Path(f"/proc/{c}/cmdline").read_bytes():
                    out.append(c)
            except OSError:
                pass
    return out


class CpuMeter:
    """CPU seconds used by a set of processes between start() and stop()."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def start(self) -> "CpuMeter":
        self.c0 = {p: _proc_cpu(p) for p in self.pids}
        self.t0 = time.monotonic()
        return self

    def stop(self) -> tuple[float, float]:
        cpu = sum(_proc_cpu(p) - c for p, c in self.c0.items())
        return cpu, time.monotonic() - self.t0


def cdp_metrics(drv) -> dict:
    """Chrome's main-thread counters for the page (CDP Performance.getMetrics); {} when unavailable."""
    try:
        drv.execute_cdp_cmd("Performance.enable", {})
        return {m["name"]: m["value"] for m in drv.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    except Exception:
        return {}


class NotifierCounter:
    """Our own notifier client: counts execution frames per notification_type, with arrival times."""

    def __init__(self, ws_url: str, token: str):
        import websocket  # python3-websocket (websocket-client)
        self.ws = websocket.create_connection(ws_url + "/ws", header=[f"Authorization: Bearer {token}"],
                                              timeout=1)
        welcome = json.loads(self.ws.recv())
        assert welcome.get("type") == "welcome", welcome
        self.ws.send(json.dumps({"type": "subscribe", "filter": "entity_type:execution"}))
        self.lock = threading.Lock()
        self.frames: list[tuple[float, str, int, str]] = []  # (time, type, id, status)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import websocket
        while not self.stop.is_set():
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                return
            t = time.time()
            try:
                m = json.loads(raw)
            except ValueError:
                continue
            if m.get("type") != "notification":
                continue
            p = m.get("payload") or {}
            with self.lock:
                self.frames.append((t, m.get("notification_type"), m.get("entity_id"), p.get("status")))

    def count(self) -> int:
        with self.lock:
            return len(self.frames)

    def close(self):
        self.stop.set()
        self.thread.join(3)
        try:
            self.ws.close()
        except Exception:
            pass


class PacedExecutor:
    """Posts `rate` executions of `action_ref` per second (open loop, slot i at t0 + i/rate) from `threads`
    keep-alive sessions, until stopped; records (execution id, POST answer epoch ms)."""

    def __init__(self, rig: Rig, action_ref: str, rate: float, threads: int = 6):
        self.url = rig.srv.api_url + "/api/v1/executions/execute"
        self.headers = rig.headers()
        self.body = json.dumps({"action_ref": action_ref}).encode()
        self.rate = rate
        self.threads = threads
        self.lock = threading.Lock()
        self.posted: list[tuple[int, float, float]] = []  # (id, answer epoch ms, HTTP ms)
        self.errors: list[str] = []
        self.late = 0
        self.slot = 0
        self.stop = threading.Event()
        self.ths: list[threading.Thread] = []

    def start(self) -> "PacedExecutor":
        self.t0 = time.monotonic() + 0.05
        self.ths = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for t in self.ths:
            t.start()
        return self

    def _run(self):
        s = requests.Session()
        while not self.stop.is_set():
            with self.lock:
                i = self.slot
                self.slot += 1
            due = self.t0 + i / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                if self.stop.wait(wait):
                    return
            elif wait < -0.25:
                with self.lock:
                    self.late += 1
            t = time.perf_counter()
            try:
                r = s.post(self.url, data=self.body, headers=self.headers, timeout=30)
            except requests.RequestException as e:
                with self.lock:
                    self.errors.append(repr(e))
                continue
            answered = time.time() * 1000
            if r.status_code != 201:
                with self.lock:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")
                continue
            with self.lock:
                self.posted.append((r.json()["data"]["id"], answered, (time.perf_counter() - t) * 1000))

    def finish(self) -> float:
        self.stop.set()
        for t in self.ths:
            t.join(35)
        return time.monotonic() - self.t0


def dom_statuses(drv) -> dict:
    return drv.execute_script("""
        const out = {};
        for (const td of document.querySelectorAll('#executions-table tr[data-execution-id] td.status'))
          out[td.parentElement.dataset.executionId] = td.dataset.status;
        return out;""")


def statuses_match_api(drv, rig: Rig) -> tuple[bool, dict]:
    dom = dom_statuses(drv)
    if not dom:
        return False, {"dom": "no rows"}
    api = {}
    for it in rig.api.items("/api/v1/executions", page_size=100):
        api[str(it["id"])] = it["status"]
    wrong = {k: (v, api.get(k)) for k, v in dom.items() if k in api and api[k] != v}
    return not wrong, wrong


def profile_top(profile: dict, n: int = 20) -> list:
    """[(self ms, function, url:line)] from a CDP Profiler profile (self time = samples x interval)."""
    nodes = {nd["id"]: nd for nd in profile["nodes"]}
    counts: dict = {}
    for sid in profile.get("samples", []):
        counts[sid] = counts.get(sid, 0) + 1
    total = len(profile.get("samples", [])) or 1
    dur_ms = (profile["endTime"] - profile["startTime"]) / 1000.0
    agg: dict = {}
    for sid, c in counts.items():
        cf = nodes[sid]["callFrame"]
        key = (cf["functionName"] or "(anonymous)", f"{cf['url'].rsplit('/', 1)[-1]}:{cf['lineNumber'] + 1}")
        agg[key] = agg.get(key, 0) + c
    return [(c * dur_ms / total, k[0], k[1]) for k, c in sorted(agg.items(), key=lambda kv: -kv[1])[:n]]


def live_phase(drv, rig: Rig, rate: float, seconds: float, changes_per_execution: float = 4.0,
               interact_every: float = 5.0, settle_timeout: float = 30.0,
               progress: Optional[Callable[[str], None]] = log, profile: bool = False) -> dict:
    """The sustained stream with the executions page open (already loaded, socket open)."""
    ws_open(drv)
    lt_supported = drv.execute_script(JS_INSTRUMENT)
    # Baseline: the same page, instrumented, for 3 s without notifications.
    i0, rc0 = cdp_metrics(drv), CpuMeter(chrome_renderer_pids(drv)).start()
    time.sleep(3)
    i_cpu, i_wall = rc0.stop()
    i1 = cdp_metrics(drv)
    idle = {"renderer_cpu_s": i_cpu, "wall_s": i_wall,
            "TaskDuration": i1.get("TaskDuration", 0) - i0.get("TaskDuration", 0)}
    counter = NotifierCounter(rig.srv.ws_url, rig.api.token)
    time.sleep(0.3)
    base_browser = drv.execute_script("return window.__attuneStats.notifications")
    base_ws = counter.count()
    exec_rate = rate / changes_per_execution
    drv.execute_script("window.__bench.on = true; window.__bench.t_on = performance.now();")
    if profile:
        drv.execute_cdp_cmd("Profiler.enable", {})
        drv.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 500})
        drv.execute_cdp_cmd("Profiler.start", {})
    m0 = cdp_metrics(drv)
    renderer = CpuMeter(chrome_renderer_pids(drv)).start()
    server_cpu = CpuMeter([rig.srv.proc.pid]).start()
    base_terminal = terminal_count(requests.Session(), rig.srv.api_url)
    pacer = PacedExecutor(rig, rig.ok, exec_rate).start()
    t_start = time.time()
    samples = []  # (t, browser notifications, ws frames)
    interactions = []  # dicts with kind, t_begin, t_end (epoch ms), click_to_mark, fetch ms
    next_interact = time.monotonic() + min(interact_every, seconds / 3)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        time.sleep(max(0.0, min(1.0, end - time.monotonic())))
        samples.append((time.time(), drv.execute_script("return window.__attuneStats.notifications") - base_browser,
                        counter.count() - base_ws))
        if time.monotonic() >= next_interact and time.monotonic() < end - 1.5:
            tb = time.time() * 1000
            if k % 2 == 0:
                a, c = filter_roundtrip(drv, "running")
                interactions.append({"kind": "filter apply (status=running)", "t0": tb, "r": a})
                interactions.append({"kind": "filter clear", "t0": tb, "r": c})
            else:
                r = nav_roundtrip(drv)
                interactions.append({"kind": "nav packs -> executions", "t0": tb, "r": r})
            t1 = time.time() * 1000
            for i in interactions:
                i.setdefault("t1", t1)
            k += 1
            next_interact = time.monotonic() + interact_every
    elapsed = pacer.finish()
    t_stop = time.time()
    r_cpu, r_wall = renderer.stop()
    m1 = cdp_metrics(drv)
    prof = profile_top(drv.execute_cdp_cmd("Profiler.stop", {})["profile"]) if profile else None
    cdp = {k: m1[k] - m0.get(k, 0) for k in ("TaskDuration", "ScriptDuration", "LayoutDuration",
                                             "RecalcStyleDuration", "LayoutCount", "RecalcStyleCount") if k in m1}
    cdp["Nodes"] = m1.get("Nodes")
    cdp["JSHeapUsedSize"] = m1.get("JSHeapUsedSize")
    s_cpu, _ = server_cpu.stop()
    drv.execute_script("window.__bench.on = false;")
    # Settle: every execution terminal (/metrics: cheap; /executions/stats?action_ref= would read the whole
    # action's index, seconds at 100k), then every frame applied in the browser.
    deadline = time.monotonic() + settle_timeout
    msess = requests.Session()
    while True:
        done = terminal_count(msess, rig.srv.api_url) - base_terminal
        if done >= len(pacer.posted):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"only {done} of {len(pacer.posted)} stream executions terminal {settle_timeout}s "
                             f"after the stream")
        time.sleep(0.05)
    t_terminal = time.time()
    time.sleep(0.3)  # last frames reach our counter
    target = counter.count() - base_ws
    caught = None
    while time.monotonic() < deadline + 10:
        n = drv.execute_script("return window.__attuneStats.notifications") - base_browser
        if n >= target:
            caught = time.time()
            break
        time.sleep(0.02)
    browser_final = drv.execute_script("return window.__attuneStats.notifications") - base_browser
    # Final statuses in the DOM vs the API.
    match_t = None
    t_m0 = time.time()
    wrong = {}
    while time.time() - t_m0 < 5:
        ok, wrong = statuses_match_api(drv, rig)
        if ok:
            match_t = time.time()
            break
        time.sleep(0.1)
    b = drv.execute_script("""const b = window.__bench;
        return {gaps: b.gaps, longtasks: b.longtasks, seen: b.seen, stats: window.__attuneStats, applied: b.applied,
                t_on: b.t_on, origin: performance.timeOrigin};""")
    counter.close()
    frames = [f for f in counter.frames[base_ws:]]
    last_frame = frames[-1][0] if frames else t_terminal
    # Apply lag of frame k: when the page's count first reached k (its batch) minus when our client got frame k.
    applied = [(t, c - base_browser) for t, c in b["applied"]]
    lag, j = [], 0
    for k, f in enumerate(frames, start=1):
        while j < len(applied) and applied[j][1] < k:
            j += 1
        if j == len(applied):
            break
        lag.append(applied[j][0] - f[0] * 1000)
    caught = (applied[-1][0] / 1000) if applied and applied[-1][1] >= target else None
    by_type: dict = {}
    for f in frames:
        by_type[f[1]] = by_type.get(f[1], 0) + 1
    # Live-row latency: POST answer -> row first in the DOM. Executions posted within an interaction window
    # (a filter hid them or the table was unmounted) are reported separately.
    windows = [(i["t0"] - 1000, i["t1"]) for i in interactions]
    lat_all, lat_clean, missing, missing_clean = [], [], [], []
    for eid, answered, _ in pacer.posted:
        t = b["seen"].get(str(eid))
        if t is None:
            missing.append(eid)
            if not any(w0 <= answered <= w1 for w0, w1 in windows):
                missing_clean.append(eid)
            continue
        if t == -1:
            continue
        lat_all.append(t - answered)
        if not any(w0 <= answered <= w1 for w0, w1 in windows):
            lat_clean.append(t - answered)
    lt_on = [d for s, d in b["longtasks"] if s >= b["t_on"]]
    gaps = b["gaps"]
    http = [p[2] for p in pacer.posted]
    # Per-second rates of the middle of the stream (skip the first and last sample).
    def rate_of(idx):
        if len(samples) < 3:
            return float("nan")
        (ta, *va), (tb, *vb) = samples[0], samples[-1]
        return (vb[idx] - va[idx]) / (tb - ta)
    res = {
        "seconds": elapsed, "exec_rate_target": exec_rate, "posted": len(pacer.posted),
        "post_errors": pacer.errors[:5], "late_slots": pacer.late,
        "http_p50": pct(http, 50), "http_p99": pct(http, 99),
        "ws_frames": target, "ws_by_type": by_type,
        "ws_rate": target / max(1e-9, (t_stop - t_start)),
        "status_changed_rate": by_type.get("execution_status_changed", 0) / max(1e-9, (t_stop - t_start)),
        "browser_notifications": browser_final, "browser_rate_mid": rate_of(0), "ws_rate_mid": rate_of(1),
        "max_lag_frames": max((s[2] - s[1] for s in samples), default=0),
        "catch_up_after_terminal_s": (caught - last_frame) if caught else None,
        "terminal_after_stop_s": t_terminal - t_stop,
        "dom_matches_api_s": (match_t - last_frame) if match_t else None, "dom_wrong": dict(list(wrong.items())[:5]),
        "frames_applied": b["stats"]["frames"], "longtask_supported": lt_supported,
        "longtasks": len(lt_on), "longtask_max": max(lt_on, default=0.0), "longtask_sum": sum(lt_on),
        "raf_frames": len(gaps), "raf_p50": pct(gaps, 50), "raf_p99": pct(gaps, 99), "raf_max": max(gaps, default=0),
        "raf_over_50": sum(1 for g in gaps if g > 50), "raf_over_100": sum(1 for g in gaps if g > 100),
        "profile": prof, "idle": idle, "cdp": cdp, "renderer_cpu_s": r_cpu, "server_cpu_s": s_cpu, "cpu_wall_s": r_wall, "renderers": len(renderer.pids),
        "apply_lag": lag, "row_lat_all": lat_all, "row_lat_clean": lat_clean, "rows_missing": len(missing), "rows_missing_clean": len(missing_clean), "longtask_list": lt_on,
        "interactions": interactions, "samples": samples,
    }
    return res


# ------------------------------------------------------------------------------------------- report

def fmt(v, unit="ms", nd=1):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:,.{nd}f} {unit}".strip()


def print_table(rows: list) -> None:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            print("  ".join("-" * x for x in w))


def first_page_rows(fp: dict) -> list:
    rows = []
    rl = fp["reload"]
    marks = [r["mark"] for r in rl]
    rows.append(("reload: navigationStart -> mark", len(rl), fmt(pct(marks, 50)), fmt(max(marks))))
    rows.append(("  app.js loaded (responseEnd)", "", fmt(pct([r["js_end"] for r in rl if r["js_end"]], 50)), ""))
    rows.append(("  /auth/me answered (responseEnd)", "", fmt(pct([r["me_end"] for r in rl if r["me_end"]], 50)), ""))
    rows.append(("  executions fetch start", "", fmt(pct([r["fetch_start"] for r in rl], 50)), ""))
    rows.append(("  executions fetch duration", "", fmt(pct([r["fetch_dur"] for r in rl], 50)),
                 fmt(max(r["fetch_dur"] for r in rl))))
    rows.append(("  fetch end -> mark (parse + render 50 rows)", "",
                 fmt(pct([r["mark"] - r["fetch_end"] for r in rl], 50)),
                 fmt(max(r["mark"] - r["fetch_end"] for r in rl))))
    for key, label in (("nav", "click #nav-executions -> mark"), ("filter_apply", "click #filter-apply -> mark"),
                       ("filter_clear", "click #filter-clear -> mark"),
                       ("filter_combo", "click #filter-apply (status=completed + action ref) -> mark")):
        xs = fp[key]
        if not xs:
            continue
        c = [r["click_to_mark"] for r in xs]
        f = [r["fetch_dur"] for r in xs if r["fetch_dur"] is not None]
        rows.append((label, len(xs), fmt(pct(c, 50)), fmt(max(c))))
        rows.append(("  executions fetch duration", "", fmt(pct(f, 50)), fmt(max(f, default=None))))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--executions", type=int, default=100000)
    ap.add_argument("--rate", type=float, default=200, help="execution status changes per second to drive")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--changes-per-execution", type=float, default=4.0)
    ap.add_argument("--bin", type=Path, default=None, help="attune binary (default ATTUNE_BIN or build/api/cli/attune)")
    ap.add_argument("--console-dir", type=Path, default=None,
                    help="built console (default ATTUNE_CONSOLE_DIR, else `console` next to the binary: build/api/cli/console)")
    ap.add_argument("--threads", type=int, default=24, help="seeding threads")
    ap.add_argument("--max-backlog", type=int, default=3000)
    ap.add_argument("--loads", type=int, default=10, help="browser repetitions per first-page measurement")
    ap.add_argument("--api-reps", type=int, default=200)
    ap.add_argument("--interact-every", type=float, default=5.0)
    ap.add_argument("--profile", action="store_true",
                    help="CPU-profile the page during the stream (CDP Profiler) and print the top functions by self "
                         "time (use an unminified console build for readable names)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data + server log)")
    args = ap.parse_args()

    def on_term(signum, frame):  # clean up (server, browser, temp dir) on SIGTERM / SIGINT too
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    binary = args.bin or attune_bin()
    if not Path(binary).exists():
        print(f"error: attune binary not found at {binary} (--bin or ATTUNE_BIN)", file=sys.stderr)
        return 2
    try:
        cdir = check_console_dir(args.console_dir or default_console_dir(binary))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    srv = Server(binary, tmp / "data", tmp / "attune.log", extra_env={"ATTUNE_CONSOLE_DIR": str(cdir)})
    drv = None
    rc = 0
    try:
        srv.start(timeout=60)
        log(f"attune serve pid {srv.proc.pid} {srv.api_url} (binary {binary}, console {cdir}); load {loadavg()}")
        rig = Rig(srv)
        load_before = loadavg()
        log(f"seeding {args.executions} executions ({args.threads} threads, backlog <= {args.max_backlog})")
        sd = seed(rig, args.executions, threads=args.threads, max_backlog=args.max_backlog)
        log(f"seeded in {sd['seconds']:.1f} s = {sd['rate']:.0f}/s; load {loadavg()}")
        log("API latency")
        lat = api_latency(rig, args.api_reps)
        log(f"browser: login + {args.loads} loads each; load {loadavg()}")
        drv = make_driver()
        login_ui(drv, srv.api_url, srv.admin_login, srv.admin_password)
        load_fp = loadavg()
        fp = browser_first_page(drv, srv.api_url, args.loads, rig.ok)
        log(f"live: {args.rate}/s status changes for {args.seconds} s; load {loadavg()}")
        drv.get("about:blank")
        drv.get(srv.api_url + "/#/executions")
        wait_js(drv, f"return performance.getEntriesByName('{MARK}').length", 30, "mark")
        load_live0 = loadavg()
        lv = live_phase(drv, rig, args.rate, args.seconds, args.changes_per_execution, args.interact_every,
                        profile=args.profile)
        load_live1 = loadavg()
        errors = [m["message"] for m in drv.get_log("browser") if m.get("level") == "SEVERE"]

        print()
        print(f"# console_bench: {args.executions:,} executions, {args.rate:g} status changes/s for "
              f"{args.seconds:g} s; {os.cpu_count()} CPUs; load before {load_before}, browser part {load_fp}, "
              f"live {load_live0} -> {load_live1}")
        print(f"seeding: {args.executions:,} executions terminal in {sd['seconds']:.1f} s = {sd['rate']:.0f}/s "
              f"(POSTs done at {sd['post_seconds']:.1f} s; HTTP p50 {sd['http_p50_ms']:.1f} ms, p99 "
              f"{sd['http_p99_ms']:.1f} ms; paused {sd['paused_s']:.0f} s for backlog)")
        print()
        print_table([("API GET /api/v1/executions (Python, keep-alive)", "total_items", "n", "p50", "p99")] +
                    [(l, f"{t:,}", n, fmt(a, nd=2), fmt(b, nd=2)) for l, t, a, b, n in lat])
        print()
        print_table([("browser first page (ms)", "n", "p50", "max")] + first_page_rows(fp))
        print()
        la, lc = lv["row_lat_all"], lv["row_lat_clean"]
        rows = [("live stream", "value")]
        rows += [
            ("executions posted (target/s)", f"{lv['posted']} in {lv['seconds']:.1f} s "
             f"({lv['posted'] / lv['seconds']:.1f}/s; target {lv['exec_rate_target']:.1f}/s; late slots {lv['late_slots']}; "
             f"errors {len(lv['post_errors'])})"),
            ("execute HTTP p50 / p99", f"{fmt(lv['http_p50'])} / {fmt(lv['http_p99'])}"),
            ("frames sent (own WS client)", f"{lv['ws_frames']} = {lv['ws_rate']:.0f}/s; by type {lv['ws_by_type']}"),
            ("status changes sent/s", f"{lv['status_changed_rate']:.0f}/s"),
            ("notifications applied by the page", f"{lv['browser_notifications']} in {lv['frames_applied']} frames (batches)"),
            ("frames/s applied by page vs sent", f"{lv['browser_rate_mid']:.0f}/s vs {lv['ws_rate_mid']:.0f}/s"),
            ("max lag during stream (frames, 1 s samples)", f"{lv['max_lag_frames']}"),
            ("frame at our client -> applied by page p50 / p99 / max",
             f"{fmt(pct(lv['apply_lag'], 50))} / {fmt(pct(lv['apply_lag'], 99))} / {fmt(max(lv['apply_lag'], default=None))} (n={len(lv['apply_lag'])})"),
            ("stream executions terminal after stop", fmt(lv['terminal_after_stop_s'] * 1000)),
            ("page applied all frames, after the last frame", fmt(lv['catch_up_after_terminal_s'] * 1000 if lv['catch_up_after_terminal_s'] is not None else None)),
            ("DOM statuses == API, after the last frame", fmt(lv['dom_matches_api_s'] * 1000 if lv['dom_matches_api_s'] is not None else None)
             + ("" if lv['dom_matches_api_s'] is not None else f" MISMATCH {lv['dom_wrong']}")),
            ("renderer CPU during the stream (incl. sampling, interactions)",
             f"{lv['renderer_cpu_s']:.2f} s in {lv['cpu_wall_s']:.1f} s = {100 * lv['renderer_cpu_s'] / lv['cpu_wall_s']:.0f} % of a core "
             f"({lv['renderers']} renderer processes); attune serve {100 * lv['server_cpu_s'] / lv['cpu_wall_s']:.0f} %"),
            ("idle baseline (3 s, no stream): renderer CPU, main-thread TaskDuration",
             f"{100 * lv['idle']['renderer_cpu_s'] / lv['idle']['wall_s']:.0f} % of a core, "
             f"{lv['idle']['TaskDuration']:.2f} s in {lv['idle']['wall_s']:.1f} s"),
            ("page main thread during the stream (CDP)",
             ", ".join(f"{k} {v:.2f} s" if k.endswith("Duration") else f"{k} {v:,.0f}" for k, v in lv["cdp"].items()
                       if v is not None)),
            ("long tasks (count, max, sum)", f"{lv['longtasks']}, {fmt(lv['longtask_max'])}, {fmt(lv['longtask_sum'])}"
             + ("" if lv['longtask_supported'] else " (PerformanceObserver longtask unsupported)")),
            ("rAF gaps p50 / p99 / max", f"{fmt(lv['raf_p50'])} / {fmt(lv['raf_p99'])} / {fmt(lv['raf_max'])} "
             f"({lv['raf_frames']} frames; >50 ms: {lv['raf_over_50']}, >100 ms: {lv['raf_over_100']})"),
            ("row in DOM after POST answer p50 / p95 / max", f"{fmt(pct(lc, 50))} / {fmt(pct(lc, 95))} / "
             f"{fmt(max(lc, default=None))} (n={len(lc)}; within 1 s: {sum(1 for x in lc if x <= 1000)})"),
            ("  incl. posted during interactions", f"{fmt(pct(la, 50))} / {fmt(pct(la, 95))} / {fmt(max(la, default=None))} "
             f"(n={len(la)}); never seen: {lv['rows_missing']}"),
        ]
        for i in lv["interactions"]:
            r = i["r"]
            rows.append((f"under load: {i['kind']}", f"{fmt(r['click_to_mark'])} (fetch {fmt(r['fetch_dur'])})"))
        rows.append(("browser SEVERE console messages", str(len(errors))))
        print_table(rows)
        if lv["profile"]:
            print()
            print_table([("profile: self time during the stream", "ms", "where")] +
                        [(f, f"{ms:,.0f}", where) for ms, f, where in lv["profile"]])
        if lv["post_errors"]:
            print("post errors:", lv["post_errors"])
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 1
    finally:
        if drv is not None:
            drv.quit()
        srv.stop(grace=10)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
