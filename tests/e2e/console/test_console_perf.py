"""Web console performance (issue 18): "The executions view stays responsive with 100,000 executions in the
store (first page under 200 ms measured in the browser test) and with 200 status changes per second arriving
over the WebSocket."

Self-contained: this module starts its own `attune serve` (serving the console build) and its own headless
Chromium; it uses none of the fixtures of tests/e2e/console/conftest.py. The measuring code is shared with
tests/bench/console_bench.py (imported from there), which prints the full table.

Console build: $ATTUNE_CONSOLE_DIR, else `console` next to the attune binary, i.e. <repo>/build/api/cli/console
(where `bash cmake/dev.sh` builds it);
a missing index.html fails the tests. Binary: $ATTUNE_BIN, else <repo>/build/api/cli/attune.

* test_executions_view_5k (CI, ~40 s): 5,000 executions seeded (POST /executions/execute, 16 threads),
  then in the browser:
    - first page: 5 full loads of #/executions and 5 in-app navigations (click #nav-executions from
      #/packs). Asserted: the median of "the page's GET /api/v1/executions starts -> rows in the DOM (the
      console's performance mark attune:executions-first-page)" over the 5 loads, and the median of
      "click #nav-executions -> mark" over the 5 navigations, are each < 200 ms. The whole cold load
      (navigationStart -> mark, which adds fetching and compiling app.js and the /auth/me round trip that
      do not depend on the store's size) is only bounded by 1.5 s: on a shared 2-core VM at load 10 it is
      ~150-350 ms of which < 40 ms is the executions page itself.
    - live: ~200 execution status changes/s (50 executions/s of `true`, each requested -> scheduling ->
      scheduled -> running -> completed) for 5 s, counted on our own notifier connection. Asserted: rows
      of new executions appear (every one posted outside a filter/navigation interaction shows up in the
      DOM; median POST answer -> row in the DOM <= 1 s); the page has applied every frame our client got
      within 2 s of the last frame (window.__attuneStats.notifications), and the statuses in the DOM equal
      the API's within 2 s; the page's longest task (PerformanceObserver 'longtask') <= 500 ms and at most
      3 long tasks > 200 ms. Why not "no long task > 200 ms": long tasks are wall-clock, and this runs on
      2 cores shared with attune serve, the Python load generator, chromedriver and often other test
      suites (load 10+); at that load a 30 ms render can be descheduled for 100-300 ms (seen in
      console_bench runs: 0 long tasks at load 5, a 300 ms one at load 12 for the same work). 500 ms
      still catches a page that blocks (a full re-render of a growing list, a sort of the whole store,
      a synchronous re-fetch per notification), which costs seconds here.
* test_executions_view_100k (@pytest.mark.soak, `bash cmake/dev.sh test-full`): the same with 100,000
  executions and a 20 s stream; seeding alone takes ~3-5 min, so it re-arms the e2e SIGALRM guard to
  15 minutes for itself.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from attune_e2e import REPO_ROOT, Server, attune_bin

sys.path.insert(0, str(REPO_ROOT / "tests" / "bench"))
import console_bench as cb  # noqa: E402

FIRST_PAGE_MS = 200.0
COLD_LOAD_MS = 1500.0
ROW_LIVE_MEDIAN_MS = 1000.0
CATCH_UP_S = 2.0
LONGTASK_MAX_MS = 500.0
LONGTASKS_OVER_200 = 3


def perf_console_dir() -> Path:
    """$ATTUNE_CONSOLE_DIR, else `console` next to the attune binary (<repo>/build/api/cli/console by default,
    where `bash cmake/dev.sh` builds it)."""
    return Path(os.environ.get("ATTUNE_CONSOLE_DIR") or attune_bin().parent / "console").resolve()


@pytest.fixture(scope="module")
def perf_console():
    d = perf_console_dir()
    if not (d / "index.html").is_file():
        pytest.fail(f"console build missing: {d / 'index.html'} does not exist. Build it with "
                    f"`cd api/console && npm ci && node build.mjs {d}` (or `bash cmake/dev.sh build`), or point "
                    f"ATTUNE_CONSOLE_DIR at a build", pytrace=False)
    return d


@pytest.fixture(scope="module")
def perf_binary() -> Path:
    p = attune_bin()
    if not p.exists():
        pytest.fail(f"attune binary not found at {p}: build it first (or point ATTUNE_BIN at it)", pytrace=False)
    return p


@pytest.fixture(scope="module")
def perf_driver():
    try:
        drv = cb.make_driver()
    except cb.BenchError as e:
        pytest.fail(str(e), pytrace=False)
    yield drv
    drv.quit()


@pytest.fixture
def perf_server(perf_binary, perf_console, tmp_path):
    """A fresh server per test (its own store: the test seeds it)."""
    srv = Server(perf_binary, tmp_path / "data", tmp_path / "attune.log",
                 extra_env={"ATTUNE_CONSOLE_DIR": str(perf_console)})
    srv.start(timeout=60)
    yield srv
    rc = srv.stop(grace=10)
    assert rc == 0, f"attune serve exited with code {rc} after SIGTERM\n{srv.log_tail()}"


def scenario(srv: Server, drv, executions: int, seconds: float, loads: int = 5) -> None:
    rig = cb.Rig(srv)
    try:
        sd = cb.seed(rig, executions, threads=16, timeout=600, progress=None)
    except cb.BenchError as e:
        pytest.fail(f"{e}\n{srv.log_tail()}", pytrace=False)
    total = rig.api.list("/api/v1/executions", page_size=1)["pagination"]["total_items"]
    assert total == executions, f"{total} executions listed, {executions} seeded"

    cb.login_ui(drv, srv.api_url, srv.admin_login, srv.admin_password)
    cb.ws_open(drv)
    reloads = [cb.measure_reload(drv, srv.api_url) for _ in range(loads)]
    cb.ws_open(drv)
    navs = [cb.nav_roundtrip(drv) for _ in range(loads)]
    for r in reloads + navs:
        assert r["rows"] == 50, f"first page shows {r['rows']} rows, expected 50"
    page = [r["mark"] - r["fetch_start"] for r in reloads]
    cold = [r["mark"] for r in reloads]
    nav = [r["click_to_mark"] for r in navs]
    fetch = [r["fetch_dur"] for r in reloads + navs]
    summary = (f"{executions:,} executions (seeded at {sd['rate']:.0f}/s); load {cb.loadavg()}; "
               f"reload: fetch start -> rows {sorted(round(x) for x in page)} ms, navigationStart -> rows "
               f"{sorted(round(x) for x in cold)} ms; nav click -> rows {sorted(round(x) for x in nav)} ms; "
               f"executions fetch {sorted(round(x) for x in fetch)} ms")
    print(summary)
    assert cb.pct(page, 50) < FIRST_PAGE_MS, f"first page (request -> rows) median >= {FIRST_PAGE_MS} ms: {summary}"
    assert cb.pct(nav, 50) < FIRST_PAGE_MS, f"click Executions -> first page median >= {FIRST_PAGE_MS} ms: {summary}"
    assert cb.pct(cold, 50) < COLD_LOAD_MS, f"cold load median >= {COLD_LOAD_MS} ms: {summary}"

    # Live: ~200 status changes/s for `seconds` with the executions page open.
    cb.measure_reload(drv, srv.api_url)
    lv = cb.live_phase(drv, rig, 200.0, seconds, interact_every=max(2.5, seconds / 3), settle_timeout=30,
                       progress=None)
    lc = lv["row_lat_clean"]
    over200 = [d for d in lv.get("longtask_list", []) if d > 200]
    live = (f"load {cb.loadavg()}; posted {lv['posted']} executions in {lv['seconds']:.1f} s, our client got "
            f"{lv['ws_frames']} frames ({lv['status_changed_rate']:.0f} status changes/s), the page applied "
            f"{lv['browser_notifications']} in {lv['frames_applied']} batches; caught up "
            f"{lv['catch_up_after_terminal_s']} s after the last frame; DOM == API "
            f"{lv['dom_matches_api_s']} s after it ({lv['dom_wrong']}); long tasks {lv['longtasks']} "
            f"(max {lv['longtask_max']:.0f} ms, sum {lv['longtask_sum']:.0f} ms); rAF gap p99 {lv['raf_p99']:.0f} ms; "
            f"row latency p50 {cb.pct(lc, 50):.0f} ms, max {max(lc, default=0):.0f} ms (n={len(lc)}), "
            f"never seen {lv['rows_missing']}; renderer CPU {lv['renderer_cpu_s']:.1f} s in {lv['cpu_wall_s']:.1f} s; "
            f"interactions {[(i['kind'], round(i['r']['click_to_mark'])) for i in lv['interactions']]}")
    print(live)
    assert not lv["post_errors"], f"execute failed during the stream: {lv['post_errors']}; {live}"
    assert lv["status_changed_rate"] >= 150, f"the stream was too slow to test anything: {live}"
    assert lc and lv["rows_missing_clean"] == 0, f"rows of new executions did not appear: {live}"
    assert cb.pct(lc, 50) <= ROW_LIVE_MEDIAN_MS, f"new rows appear too late: {live}"
    assert lv["browser_notifications"] >= lv["ws_frames"], f"the page did not apply every notification: {live}"
    assert lv["catch_up_after_terminal_s"] is not None and lv["catch_up_after_terminal_s"] <= CATCH_UP_S, \
        f"the page fell behind the stream: {live}"
    assert lv["dom_matches_api_s"] is not None and lv["dom_matches_api_s"] <= CATCH_UP_S, \
        f"statuses in the DOM differ from the API's: {live}"
    if lv["longtask_supported"]:
        assert lv["longtask_max"] <= LONGTASK_MAX_MS, f"a long task blocked the page: {live}"
        assert len(over200) <= LONGTASKS_OVER_200, f"{len(over200)} long tasks > 200 ms: {live}"
    errors = [m["message"] for m in drv.get_log("browser") if m.get("level") == "SEVERE"
              and "Failed to load resource" not in m["message"]]
    assert not errors, f"JavaScript errors in the console: {errors}"


def test_executions_view_5k(perf_server, perf_driver):
    scenario(perf_server, perf_driver, 5000, 5.0)


@pytest.mark.soak
def test_executions_view_100k(perf_server, perf_driver):
    signal.alarm(900)  # seeding 100,000 executions takes minutes; the e2e guard's fixture disarms it after
    scenario(perf_server, perf_driver, 100000, 20.0, loads=10)
