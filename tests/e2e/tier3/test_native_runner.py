"""Native runner (README "Runners", issue 14): a pack action with `runner_type: native` runs its
executable entry point directly — parameters on stdin or in a file, the ATTUNE_* environment, the
actions directory as working directory — and fails at once, with the reason, when the file is not
executable."""
from __future__ import annotations

import json

from attune_e2e import uid
from packs_util import upload_pack

TOOL = r'''#!/bin/sh
# A "native" program: no shell wrapper is added by the runner.
echo "pwd=$(pwd)"
echo "action=$ATTUNE_ACTION"
if [ -n "$ATTUNE_PARAMETER_FILE" ]; then echo "params=$(cat "$ATTUNE_PARAMETER_FILE")"; else echo "params=$(cat)"; fi
'''


def test_native_actions(api):
    ref = f"e2e_native_{uid(6)}"
    upload_pack(api, {
        "pack.yaml": f"ref: {ref}\nlabel: Native pack\nversion: 1.0.0\n",
        "actions/bin/tool": (TOOL, 0o755),
        "actions/bin/plain": (TOOL, 0o644),
        "actions/tool.yaml": ("name: tool\nrunner_type: native\nentry_point: bin/tool\n"
                              "parameters:\n  n:\n    type: integer\n    required: true\n"),
        "actions/tool_file.yaml": ("name: tool_file\nrunner_type: native\nentry_point: bin/tool\n"
                                   "parameter_delivery: file\nparameter_format: dotenv\n"),
        "actions/plain.yaml": "name: plain\nrunner_type: native\nentry_point: bin/plain\n",
    })

    ex = api.wait_execution(api.execute(f"{ref}.tool", {"n": 5})["id"], timeout=30)
    assert ex["status"] == "completed", ex
    out = dict(l.split("=", 1) for l in ex["result"]["stdout"].splitlines())
    assert out["pwd"].endswith("/actions"), out
    assert out["action"] == f"{ref}.tool"
    assert json.loads(out["params"]) == {"n": 5}

    ex = api.wait_execution(api.execute(f"{ref}.tool_file", {"word": "hi"})["id"], timeout=30)
    assert ex["status"] == "completed", ex
    assert "params=word='hi'" in ex["result"]["stdout"], ex["result"]

    ex = api.wait_execution(api.execute(f"{ref}.plain", {})["id"], timeout=30)
    assert ex["status"] == "failed", ex
    assert "'bin/plain' is not executable" in ex["result"]["error"], ex["result"]
