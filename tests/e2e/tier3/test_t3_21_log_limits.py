"""T3.21 — Action log size limits (SCENARIOS.md, API.md §11.5): output past the action's
max_output_bytes is cut at a UTF-8 boundary with `stdout_truncated`/`stderr_truncated`, a flood of
output does not hurt the platform, and the action still ends by its exit code."""
from __future__ import annotations

from attune_e2e import expect, uid
from packs_util import tar_pack, upload


def test_output_beyond_the_limit_is_cut_with_a_marker(api):
    ref = f"t321_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/loud.yaml": "name: loud\nrunner_type: shell\nentry_point: loud.sh\nmax_output_bytes: 1000\n",
        "actions/loud.sh": "#!/bin/sh\n"
                           "i=0; while [ $i -lt 2000 ]; do printf 'é%04d-' $i; i=$((i+1)); done\n"
                           "head -c 5000000 /dev/zero | tr '\\0' 'e' >&2\nexit 0\n",
        "actions/huge.yaml": "name: huge\nrunner_type: shell\nentry_point: huge.sh\n",
        "actions/huge.sh": "#!/bin/sh\nhead -c 30000000 /dev/zero | tr '\\0' 'x'\nexit 4\n",
    }
    expect(upload(api, tar_pack(files, executable=("actions/loud.sh", "actions/huge.sh"))), 201)

    ex = api.wait_execution(api.execute(f"{ref}.loud", {})["id"], timeout=30)
    assert ex["status"] == "completed", ex
    r = ex["result"]
    assert r["stdout_truncated"] is True and r["stderr_truncated"] is True, {k: v for k, v in r.items() if "std" not in k}
    assert len(r["stdout"].encode()) <= 1000 and len(r["stderr"].encode()) <= 1000
    assert r["stdout"].startswith("é0000-é0001-")
    r["stdout"].encode("utf-8")  # valid UTF-8 (the cut never splits 'é')

    # 30 MB on stdout against the default 1 MiB cap: cut, and the exit code still decides.
    big = api.wait_execution(api.execute(f"{ref}.huge", {})["id"], timeout=60)
    assert big["status"] == "failed" and big["result"]["exit_code"] == 4, big["result"].get("error")
    assert big["result"]["stdout_truncated"] is True
    assert len(big["result"]["stdout"]) <= 1 << 20
    assert api.get("/health").status_code == 200
    quick = api.wait_execution(api.execute("core.echo", {"message": "still fine"})["id"])
    assert quick["status"] == "completed"
