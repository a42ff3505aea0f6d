"""T2.9 — Execution timeout (SCENARIOS.md), end to end through an installed pack, and cancel:
a long action is killed with status `timeout` (never `failed`), request timeouts override the
action's, normal completion is unaffected, and the worker stays healthy after kills."""
from __future__ import annotations

import os
import time

from attune_e2e import expect, uid
from packs_util import tar_pack, upload


def install(api):
    ref = f"t29_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/slow.yaml": "name: slow\nrunner_type: shell\nentry_point: slow.sh\ntimeout_seconds: 1\n"
                             "parameters:\n  seconds: {type: integer, default: 30}\n",
        "actions/slow.sh": "#!/bin/sh\nread doc\necho started\n"
                           "s=$(echo \"$doc\" | sed 's/.*\"seconds\":\\([0-9]*\\).*/\\1/')\n"
                           "sleep \"$s\" & wait\necho finished\n",
        "actions/quick.yaml": "name: quick\nrunner_type: shell\nentry_point: echo quick\ntimeout_seconds: 5\n",
    }
    expect(upload(api, tar_pack(files, executable=("actions/slow.sh",))), 201)
    return ref


def test_action_timeout_kills_and_is_distinguishable(api):
    ref = install(api)
    t0 = time.monotonic()
    ex = api.wait_execution(api.execute(f"{ref}.slow", {})["id"], timeout=20)
    elapsed = time.monotonic() - t0
    assert ex["status"] == "timeout", ex
    assert "timed out" in ex["result"]["error"], ex
    assert ex["result"]["stdout"].startswith("started"), ex  # partial output kept
    assert "finished" not in ex["result"]["stdout"]
    assert elapsed < 8, elapsed

    quick = api.wait_execution(api.execute(f"{ref}.quick", {})["id"])
    assert quick["status"] == "completed" and quick["result"]["stdout"] == "quick\n", quick
    # The request's timeout beats the action's: 3 s lets a 2 s sleep finish.
    ok = api.wait_execution(api.execute(f"{ref}.slow", {"seconds": 2}, timeout_seconds=3)["id"])
    assert ok["status"] == "completed", ok
    assert "timed out" not in str(ok["result"])


def test_several_timeouts_leave_the_worker_healthy(api):
    ref = install(api)
    ids = [api.execute(f"{ref}.slow", {})["id"] for _ in range(4)]
    for i in ids:
        assert api.wait_execution(i, timeout=30)["status"] == "timeout"
    quick = api.wait_execution(api.execute(f"{ref}.quick", {})["id"])
    assert quick["status"] == "completed"


def test_cancel_a_running_pack_action(api):
    ref = install(api)
    ex = api.execute(f"{ref}.slow", {"seconds": 30}, timeout_seconds=60)
    api.wait_execution(ex["id"], statuses={"running"})
    time.sleep(0.3)  # the script is past its first line
    expect(api.post(f"/api/v1/executions/{ex['id']}/cancel", json={}), 200)
    done = api.wait_execution(ex["id"], timeout=20)
    assert done["status"] == "cancelled", done
    assert "finished" not in (done["result"] or {}).get("stdout", "")
