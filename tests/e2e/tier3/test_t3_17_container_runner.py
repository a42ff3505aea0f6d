"""T3.17 — Container runner (README "Runners", issue 14): a pack action with `runner_type: container`
runs in a fresh podman container of a locally built busybox image — pack mounted read-only at /pack,
parameters on stdin, no secret in the container's environment, no network; a timeout or cancel
stops and removes the container; without an engine the execution fails at once, naming what is
missing. The engine tests are skipped (with the reason) only where podman is not installed."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from attune_e2e import expect, uid, wait_for
from packs_util import PODMAN_SANDBOX_ARGS, import_busybox_image, upload_pack

PODMAN = shutil.which("podman")
IMAGE = "localhost/attune-e2e-busybox:latest"
SANDBOX_ARGS = PODMAN_SANDBOX_ARGS
needs_podman = pytest.mark.skipif(PODMAN is None, reason="podman is not installed (apt-get install podman "
                                                          "runc catatonit busybox-static)")

CONFIG_SECRET = f"sk-{uid(12)}"
RUN_SH = r'''#!/bin/sh
INPUT=$(cat)
echo "stdin_b64=$(printf '%s' "$INPUT" | base64 | tr -d '\n')"
echo "env_b64=$(env | base64 | tr -d '\n')"
echo "pwd=$(pwd)"
echo "netdevs=$(sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
if touch /pack/written 2>/dev/null; then echo "pack_writable=yes"; else echo "pack_writable=no"; fi
echo "message=$(printf '%s' "$INPUT" | sed 's/.*"message":"\([^"]*\)".*/\1/')"
echo "config_b64=$(base64 < "$ATTUNE_PACK_CONFIG_FILE" | tr -d '\n')"
'''


def _lines(stdout: str) -> dict:
    return dict(l.split("=", 1) for l in stdout.splitlines() if "=" in l)


def _containers(exec_id: int) -> list[str]:
    out = subprocess.run([PODMAN, "ps", "-a", "--filter", f"name=attune-exec-{exec_id}-",
                          "--format", "{{.Names}}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A busybox image built locally (no registry): a root fs of static busybox and its links."""
    if PODMAN is None:
        pytest.skip("podman is not installed")
    image_id = import_busybox_image(PODMAN, tmp_path_factory.mktemp("image"), IMAGE)
    yield IMAGE
    subprocess.run([PODMAN, "rmi", "-f", image_id], capture_output=True)  # leave no image behind


@pytest.fixture(scope="module")
def boxed(server_factory_module, image):
    """A server whose container runs use this sandbox's podman settings, and a pack of container actions."""
    srv = server_factory_module({"container_extra_args": SANDBOX_ARGS})
    api = srv.admin_client()
    ref = f"e2e_box_{uid(6)}"
    upload_pack(api, {
        "pack.yaml": (f"ref: {ref}\nlabel: Container pack\nversion: 1.0.0\n"
                      "conf_schema:\n  region: {type: string}\n  api_key: {type: string, secret: true}\n"
                      f"config:\n  region: eu-west\n  api_key: {CONFIG_SECRET}\n"),
        "actions/run.sh": (RUN_SH, 0o755),
        "actions/inspect.yaml": (
            "name: inspect\nrunner_type: container\nentry_point: run.sh\n"
            f"image: {image}\n"
            "parameters:\n"
            "  message:\n    type: string\n    required: true\n"
            "  password:\n    type: string\n    secret: true\n"),
        "actions/stubborn.yaml": (
            "name: stubborn\nrunner_type: container\n"
            f"image: {image}\n"
            "command: [\"sh\", \"-c\", \"trap '' TERM INT; echo started; while :; do sleep 1; done\"]\n"),
        "actions/polite.yaml": (
            "name: polite\nrunner_type: container\n"
            f"image: {image}\n"
            "command: \"echo started; exec sleep 60\"\n"),
    })
    return srv, api, ref


@pytest.fixture(scope="module")
def server_factory_module(attune_binary, tmp_path_factory):
    from attune_e2e import Server
    started = []

    def make(config: dict):
        base = tmp_path_factory.mktemp("attune-container")
        cfg = base / "config.yaml"
        cfg.write_text(json.dumps(config))  # JSON is YAML
        srv = Server(attune_binary, base / "data", base / "attune.log", extra_env={"ATTUNE_CONFIG": str(cfg)})
        srv.start(timeout=60)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        rc = srv.stop(grace=10)
        assert not srv.last_stop_needed_kill and rc == 0, srv.log_tail()


@needs_podman
def test_action_runs_in_the_image_with_parameters_on_stdin_only(boxed):
    srv, api, ref = boxed
    password = f"pw-{uid(12)}"
    ex = api.execute(f"{ref}.inspect", {"message": "hello box", "password": password})
    ex = api.wait_execution(ex["id"], timeout=60)
    assert ex["status"] == "completed", ex
    out = _lines(ex["result"]["stdout"])
    stdin = json.loads(base64.b64decode(out["stdin_b64"]))
    env = base64.b64decode(out["env_b64"]).decode()
    # Parameters (the secret included) arrive on stdin...
    assert stdin["message"] == "hello box" and stdin["password"] == password
    # ...and never in the environment, which holds the non-secret ATTUNE_* variables only.
    assert password not in env
    env_vars = dict(l.split("=", 1) for l in env.splitlines() if "=" in l)
    assert env_vars["ATTUNE_EXEC_ID"] == str(ex["id"])
    assert env_vars["ATTUNE_ACTION"] == f"{ref}.inspect"
    assert env_vars["ATTUNE_PACK_REF"] == ref
    assert "ATTUNE_API_TOKEN" not in env_vars
    # The pack is mounted read-only, the action runs from its actions directory, without network.
    assert out["pwd"] == "/pack/actions"
    assert out["pack_writable"] == "no"
    assert out["netdevs"].split() == ["lo"], out["netdevs"]
    assert out["message"] == "hello box"
    # The pack config arrives as a read-only file (its secret not in the environment either).
    assert json.loads(base64.b64decode(out["config_b64"])) == {"region": "eu-west", "api_key": CONFIG_SECRET}
    assert env_vars["ATTUNE_PACK_CONFIG_FILE"] == "/run/attune/pack_config.json"
    assert CONFIG_SECRET not in env
    # Stored output and the API answer never show the secret.
    full = expect(api.get(f"/api/v1/executions/{ex['id']}"), 200)["data"]
    assert password not in json.dumps(full)
    assert _containers(ex["id"]) == []


@needs_podman
def test_timeout_stops_and_removes_the_container(boxed):
    srv, api, ref = boxed
    # The action ignores SIGTERM: the worker's SIGKILL ends the podman client, and the guard's
    # reaper must remove the still-running container.
    ex = api.execute(f"{ref}.stubborn", {}, timeout_seconds=2)
    ex = api.wait_execution(ex["id"], timeout=60)
    assert ex["status"] == "timeout", ex
    assert "timed out" in ex["result"]["error"]
    assert ex["result"]["stdout"].startswith("started")
    wait_for(lambda: _containers(ex["id"]) == [], timeout=20, desc="the timed-out container to be removed")


@needs_podman
def test_cancel_stops_and_removes_the_container(boxed):
    srv, api, ref = boxed
    ex = api.execute(f"{ref}.polite", {})
    api.wait_execution(ex["id"], statuses={"running"}, timeout=30)
    wait_for(lambda: _containers(ex["id"]) != [], timeout=30, desc="the container to exist")
    expect(api.post(f"/api/v1/executions/{ex['id']}/cancel", json={}), 200)
    ex = api.wait_execution(ex["id"], timeout=60)
    assert ex["status"] == "cancelled", ex
    wait_for(lambda: _containers(ex["id"]) == [], timeout=20, desc="the cancelled container to be removed")


def test_without_an_engine_the_execution_fails_at_once_naming_it(server_factory_module):
    srv = server_factory_module({"container_engine": "/nonexistent/podman"})
    api = srv.admin_client()
    ref = f"e2e_noengine_{uid(6)}"
    upload_pack(api, {
        "pack.yaml": f"ref: {ref}\nlabel: No engine\nversion: 1.0.0\n",
        "actions/boxed.yaml": ("name: boxed\nrunner_type: container\nimage: localhost/whatever:1\n"
                               "command: [\"true\"]\n"),
    })
    ex = api.execute(f"{ref}.boxed", {})
    ex = api.wait_execution(ex["id"], timeout=30)
    assert ex["status"] == "failed", ex
    assert ex["result"]["error"] == ("container engine '/nonexistent/podman' not found "
                                     "(install podman, or set --container-engine)")


def test_container_fields_over_the_api(api):
    """POST /actions takes image/command/network (validated); a container action needs an image and,
    without a command, an entry point."""
    p = api.create_pack()["ref"]
    base = {"pack_ref": p, "label": "box", "runtime_ref": "core.container"}
    ok = expect(api.post("/api/v1/actions", json={**base, "ref": "a", "image": "localhost/x:1",
                                                  "command": ["echo", "hi"], "network": "bridge"}), 201)["data"]
    assert (ok["image"], ok["command"], ok["network"], ok["entrypoint"]) == \
        ("localhost/x:1", ["echo", "hi"], "bridge", "")
    shell = expect(api.post("/api/v1/actions", json={**base, "ref": "s", "image": "x", "command": "echo $A",
                                                     "network": False}), 201)["data"]
    assert shell["command"] == "echo $A" and shell["network"] is False
    for body, field in (({"command": ["true"]}, "image"),
                        ({"image": "x"}, "entrypoint"),
                        ({"image": "x", "command": [1]}, "command"),
                        ({"image": "x", "command": ""}, "command"),
                        ({"image": "x", "command": ["true"], "network": "host"}, "network")):
        resp = api.post("/api/v1/actions", json={**base, "ref": f"bad_{uid(4)}", **body})
        assert resp.status_code == 422, (body, resp.text)
        assert field in resp.json()["details"]["fields"], (body, resp.text)
    upd = expect(api.put(f"/api/v1/actions/{p}.a", json={"network": None, "command": None,
                                                           "entrypoint": "run.sh"}), 200)["data"]
    assert upd["network"] is None and upd["command"] is None
