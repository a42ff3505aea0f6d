"""T2.12 — Python action with dependencies (SCENARIOS.md), API.md §8, §11: packs installed over the API get a
virtualenv built from their requirements.txt (local wheels only: `--pip-find-links DIR --pip-extra-arg=--no-index`),
shown on the pack as `environment`; actions import their dependencies; packs are isolated from each other; a missing
dependency is reported clearly on the pack and on executions; an unchanged re-install reuses the environment."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attune_e2e import uid, wait_for
from runner_packs import build_wheel, environment, register, run_action, upload, wait_environment, write_pack

# Prints what it imported and from where, as JSON.
USE_DEPS = """
import json, sys
import {modules}
params = json.load(sys.stdin)
print(json.dumps({{"versions": {{m: sys.modules[m].VERSION for m in {names!r}}},
                   "prefix": sys.prefix, "greeting": {first}.greet(params.get("who", "?"))}}))
"""


def use_deps_script(*modules: str) -> str:
    return USE_DEPS.format(modules=", ".join(modules), names=list(modules), first=modules[0])


def module_body(dist: str, version: str) -> str:
    return f"VERSION = {version!r}\n\ndef greet(who):\n    return '{dist} {version} greets ' + who\n"


@pytest.fixture
def wheels(wheels_dir) -> Path:
    """The session server's --pip-find-links directory (--no-index), with this module's wheels."""
    for dist, version in (("attune_t212_alpha", "1.0"), ("attune_t212_beta", "3.1")):
        if not list(wheels_dir.glob(f"{dist}-{version}-*.whl")):
            build_wheel(wheels_dir, dist, version, module_body(dist, version))
    return wheels_dir


@pytest.fixture
def pyserver(server, wheels):
    return server


@pytest.fixture
def pyapi(api, wheels):
    return api


def python_pack(tmp_path: Path, ref: str, requirements: str | None, modules=("attune_t212_alpha",), script=None):
    files = {"requirements.txt": requirements} if requirements is not None else {}
    return write_pack(tmp_path / ref, ref, {
        "use_deps": {"runner_type": "python", "entry_point": "use_deps.py",
                     "script": script or use_deps_script(*modules),
                     "parameters": {"who": {"type": "string"}}},
    }, files)


def test_action_imports_its_requirements_even_while_the_environment_builds(pyserver, pyapi, tmp_path):
    ref = f"t212a_{uid(6)}"
    data = upload(pyapi, python_pack(tmp_path, ref, "attune_t212_alpha==1.0\n"))
    assert data["pack"]["ref"] == ref and data["components"]["actions"] == 1
    # Executed at once: the execution waits for the environment instead of failing.
    ex = run_action(pyapi, f"{ref}.use_deps", {"who": "e2e"})
    assert ex["status"] == "completed", ex
    out = ex["result"]["data"]
    assert out["versions"] == {"attune_t212_alpha": "1.0"}
    assert out["greeting"] == "attune_t212_alpha 1.0 greets e2e"
    envs = (pyserver.data_dir / "envs" / ref).resolve()
    assert Path(out["prefix"]).parent == envs and Path(out["prefix"]).name.startswith("python-"), out
    env = wait_environment(pyapi, ref)
    assert env["status"] == "ready", env


def test_several_packages_from_one_requirements_file(pyapi, tmp_path):
    ref = f"t212b_{uid(6)}"
    upload(pyapi, python_pack(tmp_path, ref, "# two local wheels\nattune_t212_alpha>=1.0\nattune_t212_beta==3.1\n",
                              modules=("attune_t212_beta", "attune_t212_alpha")))
    assert wait_environment(pyapi, ref)["status"] == "ready"
    ex = run_action(pyapi, f"{ref}.use_deps", {"who": "both"})
    assert ex["status"] == "completed", ex
    assert ex["result"]["data"]["versions"] == {"attune_t212_alpha": "1.0", "attune_t212_beta": "3.1"}
    assert ex["result"]["data"]["greeting"] == "attune_t212_beta 3.1 greets both"


def test_packs_do_not_see_each_others_dependencies(pyapi, tmp_path):
    with_dep, without = f"t212c_{uid(6)}", f"t212d_{uid(6)}"
    upload(pyapi, python_pack(tmp_path, with_dep, "attune_t212_beta\n", modules=("attune_t212_beta",)))
    # Another pack with its own (different) requirements, and one without any.
    upload(pyapi, python_pack(tmp_path, without, "attune_t212_alpha\n", modules=("attune_t212_beta",)))
    plain = f"t212e_{uid(6)}"
    upload(pyapi, python_pack(tmp_path, plain, None, modules=("attune_t212_beta",)))
    ok = run_action(pyapi, f"{with_dep}.use_deps")
    assert ok["status"] == "completed" and ok["result"]["data"]["versions"] == {"attune_t212_beta": "3.1"}, ok
    for other in (without, plain):
        ex = run_action(pyapi, f"{other}.use_deps")
        assert ex["status"] == "failed", ex
        assert "No module named 'attune_t212_beta'" in ex["result"]["stderr"], ex["result"]
    assert environment(pyapi, plain) is None, "a pack without requirements.txt needs no environment"


def test_missing_dependency_is_reported_on_the_pack_and_on_executions(pyapi, tmp_path):
    ref = f"t212f_{uid(6)}"
    data = upload(pyapi, python_pack(tmp_path, ref, "attune_t212_alpha\nattune-t212-not-published==9.9\n"))
    assert data["pack"]["ref"] == ref  # the install itself succeeds; the environment is built after
    env = wait_environment(pyapi, ref)
    assert env and env["status"] == "failed", env
    assert "attune-t212-not-published" in env["message"], env
    assert "No matching distribution" in env["message"] or "Could not find a version" in env["message"], env
    ex = run_action(pyapi, f"{ref}.use_deps")
    assert ex["status"] == "failed", ex
    assert "attune-t212-not-published" in ex["result"]["error"], ex["result"]
    assert "timed out" not in ex["result"]["error"]


def test_environment_is_reused_on_reinstall_and_rebuilt_when_requirements_change(pyserver, pyapi, tmp_path):
    ref = f"t212g_{uid(6)}"
    root = python_pack(tmp_path, ref, "attune_t212_alpha==1.0\n")
    upload(pyapi, root)
    first = run_action(pyapi, f"{ref}.use_deps")
    assert first["status"] == "completed", first
    prefix = Path(first["result"]["data"]["prefix"])
    marker = prefix / "attune-e2e-marker"
    marker.write_text("same environment")

    # Same requirements, changed action: a forced re-install reuses the environment as it is.
    (root / "actions" / "use_deps.py").write_text(use_deps_script("attune_t212_alpha").replace('"prefix"', '"v": 2, "prefix"'))
    upload(pyapi, root, force=True)
    assert wait_environment(pyapi, ref, timeout=60)["status"] == "ready"
    again = run_action(pyapi, f"{ref}.use_deps")
    assert again["status"] == "completed", again
    assert again["result"]["data"]["v"] == 2, again["result"]
    assert Path(again["result"]["data"]["prefix"]) == prefix
    assert marker.read_text() == "same environment"

    # Changed requirements: a new environment with the new content.
    (root / "requirements.txt").write_text("attune_t212_alpha==1.0\nattune_t212_beta\n")
    (root / "actions" / "use_deps.py").write_text(use_deps_script("attune_t212_beta", "attune_t212_alpha"))
    upload(pyapi, root, force=True)
    changed = run_action(pyapi, f"{ref}.use_deps")
    assert changed["status"] == "completed", changed
    assert Path(changed["result"]["data"]["prefix"]) != prefix
    assert changed["result"]["data"]["versions"]["attune_t212_beta"] == "3.1"


def test_registered_pack_directory_gets_its_environment(pyapi, packs_dir):
    ref = f"t212h_{uid(6)}"
    root = packs_dir / ref
    write_pack(root, ref, {"use_deps": {"runner_type": "python", "entry_point": "use_deps.py",
                                        "script": use_deps_script("attune_t212_alpha")}},
               {"requirements.txt": "attune_t212_alpha\n"})
    data = register(pyapi, root)
    assert data["pack"]["ref"] == ref
    ex = run_action(pyapi, f"{ref}.use_deps", {"who": "registered"})
    assert ex["status"] == "completed", ex
    assert ex["result"]["data"]["greeting"] == "attune_t212_alpha 1.0 greets registered"
    assert json.loads(ex["result"]["stdout"])["versions"] == {"attune_t212_alpha": "1.0"}


SENSOR = """
import json, os, sys, time
import attune_t212_alpha  # only in the pack's virtualenv
trigger = json.loads(os.environ["ATTUNE_SENSOR_TRIGGERS"])[0]["trigger_ref"]
while True:
    print(json.dumps({"trigger_ref": trigger, "payload": {"who": "sensor " + attune_t212_alpha.VERSION,
                                                          "prefix": sys.prefix}}), flush=True)
    time.sleep(1)
"""


def test_python_sensor_of_the_pack_uses_its_environment(pyserver, pyapi, tmp_path):
    ref = f"t212s_{uid(6)}"
    root = python_pack(tmp_path, ref, "attune_t212_alpha==1.0\n")
    (root / "triggers").mkdir()
    (root / "triggers" / "custom.yaml").write_text("ref: custom\nlabel: Custom\n")
    (root / "sensors").mkdir()
    (root / "sensors" / "watcher.py").write_text(SENSOR)
    (root / "sensors" / "watcher.yaml").write_text(
        f"ref: watcher\nlabel: Watcher\nrunner_type: python\nentry_point: watcher.py\n"
        f"trigger_types: [{ref}.custom]\n")
    (root / "rules").mkdir()
    (root / "rules" / "on_custom.yaml").write_text(
        f"ref: on_custom\nlabel: On custom\ntrigger_ref: {ref}.custom\naction_ref: {ref}.use_deps\n"
        "action_params:\n  who: '{{ event.payload.who }}'\n")
    data = upload(pyapi, root)
    assert data["components"].get("sensors") == 1 and data["components"].get("rules") == 1, data
    execs = wait_for(lambda: (lambda it: it if it else None)(
        [e for e in pyapi.items("/api/v1/executions", rule_ref=f"{ref}.on_custom") if e["status"] == "completed"]),
        timeout=100, interval=0.3, desc="an execution fired by the python sensor")
    ex = pyapi.get_data(f"/api/v1/executions/{execs[0]['id']}")
    assert ex["result"]["data"]["greeting"] == "attune_t212_alpha 1.0 greets sensor 1.0", ex["result"]
    event = pyapi.items("/api/v1/events", trigger_ref=f"{ref}.custom")[0]
    event = pyapi.get_data(f"/api/v1/events/{event['id']}")
    envs = (pyserver.data_dir / "envs" / ref).resolve()
    assert Path(event["payload"]["prefix"]).parent == envs, event["payload"]
    status = pyapi.get_data(f"/api/v1/sensors/{ref}.watcher")["status"]
    assert status["state"] == "running", status
