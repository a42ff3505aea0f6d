"""A sensor shipped in a pack (API.md §8, §9.3): `sensors/<name>.yaml` with its script under
sensors/, trigger declared inline, rule in rules/ — installed by upload, the supervised sensor
process runs from the installed pack directory and its events fire the pack's rule."""
from __future__ import annotations

from pathlib import Path

from attune_e2e import expect, uid, wait_for
from packs_util import tar_pack, upload

SENSOR = r'''#!/bin/sh
echo "running in $(pwd)" >&2
i=0
while true; do
  i=$((i+1))
  echo "{\"trigger_ref\": \"$ATTUNE_PACK_REF.beat\", \"payload\": {\"n\": $i}}"
  sleep 0.3
done
'''


def test_pack_sensor_fires_the_pack_rule(api):
    ref = f"sens_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "sensors/heart.yaml": "name: heart\nrunner_type: shell\nentry_point: heart.sh\n"
                              "trigger_types:\n  - name: beat\n    description: a heartbeat\n"
                              "    payload_schema: {n: {type: integer}}\n",
        "sensors/heart.sh": SENSOR,
        "actions/log.yaml": "name: log\nrunner_type: shell\nentry_point: echo \"beat $n\"\n"
                            "parameters:\n  n: {type: integer}\n",
        "rules/on_beat.yaml": "name: on_beat\ntrigger: beat\naction: {ref: log, parameters: {n: '{{ event.payload.n }}'}}\n",
    }
    data = expect(upload(api, tar_pack(files, executable=("sensors/heart.sh",))), 201)["data"]
    assert data["components"]["sensors"] == 1 and data["components"]["triggers"] == 1
    trigger = api.get_data(f"/api/v1/triggers/{ref}.beat")
    assert trigger["sensor_ref"] == f"{ref}.heart" and trigger["description"] == "a heartbeat"
    execs = api.wait_rule_executions(f"{ref}.on_beat", 2, timeout=20)
    assert all(e["status"] == "completed" for e in execs), execs
    assert {e["result"]["stdout"] for e in execs} & {"beat 1\n", "beat 2\n"}
    storage = api.get_data(f"/api/v1/packs/{ref}")["storage_path"]
    logs = api.get(f"/api/v1/sensors/{ref}.heart/logs/stderr").text
    assert f"running in {Path(storage) / 'sensors'}" in logs, logs
    # Deleting the pack stops the sensor and removes everything.
    expect(api.delete(f"/api/v1/packs/{ref}"), 200)
    wait_for(lambda: api.get(f"/api/v1/sensors/{ref}.heart").status_code == 404, desc="sensor gone")
