"""T3.6 Sensor-generated custom events: a pack sensor process emits events (stdout JSON lines and
POST /api/v1/events with its sensor token) that fire rules; lifecycle, logs, backoff, status."""
from __future__ import annotations

import time

from attune_e2e import expect, expect_error, uid, wait_for

SENSOR_SCRIPT = r'''
echo "sensor $ATTUNE_SENSOR_REF starting, triggers: $ATTUNE_SENSOR_TRIGGERS" >&2
T=$(printf '%s' "$ATTUNE_SENSOR_TRIGGERS" | sed 's/.*"trigger_ref":"\([^"]*\)".*/\1/')
i=0
while true; do
  i=$((i+1))
  echo "{\"trigger_ref\": \"$T\", \"payload\": {\"n\": $i, \"via\": \"stdout\"}}"
  if [ $i -eq 2 ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ATTUNE_API_URL/api/v1/events" \
      -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H 'Content-Type: application/json' \
      -d "{\"trigger_ref\": \"$T\", \"payload\": {\"via\": \"api\"}}")
    echo "post own trigger: $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ATTUNE_API_URL/api/v1/events" \
      -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H 'Content-Type: application/json' \
      -d '{"trigger_ref": "core.webhook", "payload": {}}')
    echo "post other trigger: $code"
    # Nothing else without grants to its sensor identity (API.md §4.2, §16): not even its pack.
    code=$(curl -s -o /dev/null -w '%{http_code}' "$ATTUNE_API_URL/api/v1/packs/${ATTUNE_SENSOR_REF%%.*}" \
      -H "Authorization: Bearer $ATTUNE_API_TOKEN")
    echo "read own pack: $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$ATTUNE_API_URL/api/v1/packs" \
      -H "Authorization: Bearer $ATTUNE_API_TOKEN" -H 'Content-Type: application/json' \
      -d '{"ref": "sensorpack", "label": "x", "version": "1.0.0"}')
    echo "create pack: $code"
  fi
  sleep 0.3
done
'''


def sensor_events(api, trigger_ref):
    return api.items("/api/v1/events", trigger_ref=trigger_ref)


def test_shell_sensor_emits_events_that_fire_a_rule(api):
    p = api.create_pack()["ref"]
    trigger = api.create_trigger(f"{p}.custom")
    action = api.create_action(f"{p}.act", 'echo "got $n"')
    sensor = expect(api.post("/api/v1/sensors", json={
        "ref": "watcher", "pack_ref": p, "label": "Watcher", "runner_type": "shell",
        "entry_point": SENSOR_SCRIPT, "trigger_types": [trigger["ref"]],
        "config": {"poll": 1}}), 201)["data"]
    ref = sensor["ref"]
    assert ref == f"{p}.watcher" and sensor["runtime_ref"] == "core.shell"
    assert sensor["status"]["state"] == "stopped"  # no rule uses its trigger yet
    assert api.get_data(f"/api/v1/triggers/{trigger['ref']}")["sensor_ref"] == ref

    rule = api.create_rule(f"{p}.on_custom", trigger["ref"], action["ref"],
                           action_params={"n": "{{ event.payload.n }}"},
                           trigger_params={"threshold": 3})
    running = wait_for(lambda: (lambda s: s if s["status"]["state"] == "running" else None)(
        api.get_data(f"/api/v1/sensors/{ref}")), timeout=10, desc="sensor running")
    assert running["status"]["pid"]
    execs = api.wait_rule_executions(rule["ref"], 3, timeout=15)
    assert all(e["status"] == "completed" for e in execs), execs
    events = wait_for(lambda: (lambda ev: ev if any(e["source_ref"] == ref for e in ev)
                               and len(ev) >= 3 else None)(sensor_events(api, trigger["ref"])),
                      timeout=10, desc="sensor events")
    assert all(e["source_ref"] == ref and e["source"] == sensor["id"] for e in events), events
    # Through POST /events with its sensor token too; another trigger is refused (403).
    # The last line the sensor prints in that pass (the log may be read while it writes the rest).
    out = wait_for(lambda: (lambda t: t if "create pack" in t else None)(
        api.get(f"/api/v1/sensors/{ref}/logs/stdout").text), timeout=10, desc="sensor posted")
    assert "post own trigger: 201" in out and "post other trigger: 403" in out, out
    assert "read own pack: 404" in out and "create pack: 403" in out, out
    assert '"via": "stdout"' in out
    full = [api.get_data(f"/api/v1/events/{e['id']}") for e in sensor_events(api, trigger["ref"])]
    assert any(e["payload"].get("via") == "api" for e in full), full
    err = api.get(f"/api/v1/sensors/{ref}/logs/stderr")
    assert err.status_code == 200 and err.headers["Content-Type"].startswith("text/plain")
    assert f"sensor {ref} starting" in err.text and '"threshold":3' in err.text, err.text
    expect_error(api.get(f"/api/v1/sensors/{ref}/logs/other"), 404)

    # No enabled rule left ⇒ the process is stopped.
    expect(api.post(f"/api/v1/rules/{rule['ref']}/disable"), 200)
    wait_for(lambda: api.get_data(f"/api/v1/sensors/{ref}")["status"]["state"] == "stopped",
             timeout=10, desc="sensor stopped")
    listed = api.items("/api/v1/sensors", pack_ref=p)
    assert [s["ref"] for s in listed] == [ref]
    expect(api.delete(f"/api/v1/sensors/{ref}"), 200)
    expect_error(api.get(f"/api/v1/sensors/{ref}"), 404)


def test_sensor_that_cannot_start_reports_why_and_backs_off(api):
    p = api.create_pack()["ref"]
    trigger = api.create_trigger(f"{p}.t")
    action = api.create_action(f"{p}.a", "true")
    expect(api.post("/api/v1/sensors", json={
        "ref": "broken", "pack_ref": p, "runtime_ref": "core.native",
        "entrypoint": f"/nonexistent/{uid()}/sensor", "trigger_types": [trigger["ref"]]}), 201)
    crash = expect(api.post("/api/v1/sensors", json={
        "ref": "crashy", "pack_ref": p, "runner_type": "shell",
        "entry_point": "echo crashing >&2; exit 3", "trigger_types": [trigger["ref"]]}), 201)["data"]
    api.create_rule(f"{p}.r", trigger["ref"], action["ref"])
    time.sleep(3.5)
    broken = api.get_data(f"/api/v1/sensors/{p}.broken")["status"]
    assert broken["state"] == "failed" and "not an existing file" in broken["last_error"], broken
    # Backoff 1 s, 2 s, 4 s…: a handful of attempts in 3.5 s, not thousands.
    assert 1 <= broken["consecutive_failures"] <= 3, broken
    crashy = api.get_data(f"/api/v1/sensors/{crash['ref']}")["status"]
    assert crashy["last_exit_code"] == 3 and 1 <= crashy["restarts"] <= 3, crashy
    assert "exited with code 3" in crashy["last_error"]
    assert "crashing" in api.get(f"/api/v1/sensors/{crash['ref']}/logs/stderr").text
    expect(api.delete(f"/api/v1/packs/{p}"), 200)
    expect_error(api.get(f"/api/v1/sensors/{crash['ref']}"), 404)


def test_sensor_create_validation(api):
    p = api.create_pack()["ref"]
    expect_error(api.post("/api/v1/sensors", json={"ref": "s", "pack_ref": p, "entrypoint": "true"}),
                 422, "VALIDATION_ERROR")
    expect_error(api.post("/api/v1/sensors", json={"ref": "s", "pack_ref": p, "entrypoint": "true",
                                                   "trigger_types": [f"{p}.missing"]}), 404)
    core = api.get_data("/api/v1/sensors/core.timer_sensor")
    assert core["status"]["state"] == "running" and "core.intervaltimer" in core["trigger_types"]
