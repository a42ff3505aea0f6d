"""Packs (API.md §8, issue 14): install from archives and directories, force re-install, delete,
and every bad input refused with nothing changed. Content reaches the server only through
POST /api/v1/packs/upload and /packs/register."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from attune_e2e import expect, expect_error, uid
from packs_util import register, tar_pack, upload, write_pack


def demo_files(ref: str, version: str = "1.0.0", greeting: str = "hello", extra_rule: bool = True):
    files = {
        "pack.yaml": f"ref: {ref}\nlabel: Demo {ref}\nversion: {version}\n"
                     "conf_schema:\n  greeting: {type: string, default: hello}\n"
                     "  api_key: {type: string, secret: true}\n"
                     f"config:\n  greeting: {greeting}\n  api_key: sk-very-secret-key\n"
                     "__internal: ignored\n",
        "actions/greet.yaml": "name: greet\nrunner_type: shell\nentry_point: greet.sh\n"
                              "description: Greets\nparameters:\n  name: {type: string, required: true}\n",
        "actions/greet.sh": "#!/bin/sh\nread doc\necho \"file action: $doc\"\n"
                            "echo \"config: $(cat \"$ATTUNE_PACK_CONFIG_FILE\")\"\n"
                            "printenv | grep -c sk-very-secret-key; exit 0\n",
        "triggers/incoming.yaml": "name: incoming\ndescription: test trigger\n",
        "rules/on_incoming.yaml": "name: on_incoming\ntrigger: incoming\n"
                                  "action: {ref: greet, parameters: {name: '{{ config.greeting }}'}}\n",
        "README.md": "unknown files are ignored\n",
    }
    if extra_rule:
        files["rules/second.yaml"] = "name: second\ntrigger: incoming\naction: greet\n" \
                                     "enabled: false\n"
    return files


EXEC = ("actions/greet.sh",)


def components_of(api, ref):
    out = {}
    for kind in ("actions", "triggers", "rules", "sensors"):
        out[kind] = {o["ref"]: o for o in api.items(f"/api/v1/{kind}", pack_ref=ref, page_size=100)}
    return out


@pytest.mark.parametrize("layout", ["root", "dotted", "topdir"])
def test_upload_every_archive_layout_installs_and_runs(api, layout):
    ref = f"up_{uid()}"
    body = expect(upload(api, tar_pack(demo_files(ref), layout=layout, executable=EXEC)), 201)
    pack = body["data"]["pack"]
    assert pack["ref"] == ref and pack["version"] == "1.0.0"
    assert pack["installation_method"] == "upload"
    assert pack["config"]["greeting"] == "hello"
    assert "__internal" not in pack
    assert body["data"]["components"]["actions"] == 1
    assert body["data"]["components"]["triggers"] == 1
    assert body["data"]["components"]["rules"] == 2
    assert Path(pack["storage_path"]).is_dir()

    comps = components_of(api, ref)
    action = comps["actions"][f"{ref}.greet"]
    assert action["entrypoint"] == "greet.sh" and action["runtime_ref"] == "core.shell"
    assert action["param_schema"]["name"]["required"] is True
    rule = comps["rules"][f"{ref}.on_incoming"]
    assert rule["trigger_ref"] == f"{ref}.incoming" and rule["action_ref"] == f"{ref}.greet"
    assert rule["is_adhoc"] is False

    # The rule fires and the action runs its file from the installed pack, with the pack config
    # in templates and in a file named by ATTUNE_PACK_CONFIG_FILE (its secret field redacted from
    # the output, never in the environment).
    key = api.enable_webhook(f"{ref}.incoming")
    api.fire(key, {"x": 1})
    (ex,) = api.wait_rule_executions(f"{ref}.on_incoming", 1)
    assert ex["status"] == "completed", ex
    assert ex["config"] == {"name": "hello"}
    out = ex["result"]["stdout"].splitlines()
    assert out[0] == 'file action: {"name":"hello"}', out
    assert out[1].startswith("config: ") and '"greeting":"hello"' in out[1], out
    assert '"api_key":"***"' in out[1], out
    assert out[2] == "0", out  # printenv shows no secret


def test_register_from_a_packs_dir_and_refusals(api, packs_dir):
    ref = f"reg_{uid()}"
    write_pack(packs_dir / ref, demo_files(ref), executable=EXEC)
    data = expect(register(api, ref), 201)["data"]  # relative to the configured directory
    assert data["pack"]["installation_method"] == "register"
    assert data["pack"]["storage_path"] != str(packs_dir / ref)  # a copy: the source may change
    ex = api.wait_execution(api.execute(f"{ref}.greet", {"name": "reg"})["id"])
    assert ex["status"] == "completed" and "file action" in ex["result"]["stdout"], ex

    expect_error(register(api, "/etc"), 403)
    expect_error(register(api, packs_dir / ".." / ".." / "etc"), 403)
    expect_error(register(api, packs_dir / f"missing_{uid()}"), 400)
    expect_error(api.post("/api/v1/packs/register", json={}), 422)
    # A symlink out of the pack is refused too.
    evil = f"evil_{uid()}"
    write_pack(packs_dir / evil, {"pack.yaml": f"ref: {evil}\n"})
    os.symlink("/etc/passwd", packs_dir / evil / "passwd")
    expect_error(register(api, evil), 400, message_contains="outside")
    expect_error(api.get(f"/api/v1/packs/{evil}"), 404)


def test_force_reinstall_keeps_ids_updates_and_deletes_what_is_gone(api):
    ref = f"force_{uid()}"
    first = expect(upload(api, tar_pack(demo_files(ref), executable=EXEC)), 201)["data"]["pack"]
    before = components_of(api, ref)
    key = api.enable_webhook(f"{ref}.incoming")

    # Without force: 409 and nothing changes.
    expect_error(upload(api, tar_pack(demo_files(ref, "2.0.0"), executable=EXEC)), 409)
    assert api.get_data(f"/api/v1/packs/{ref}")["version"] == "1.0.0"

    v2 = demo_files(ref, "2.0.0", greeting="bonjour", extra_rule=False)
    v2["actions/greet.yaml"] = v2["actions/greet.yaml"].replace("Greets", "Greets v2")
    second = expect(upload(api, tar_pack(v2, executable=EXEC), force=True), 201)["data"]
    pack = second["pack"]
    assert pack["id"] == first["id"] and pack["version"] == "2.0.0"
    assert second["components"]["removed"] == 1
    after = components_of(api, ref)
    for kind in ("actions", "triggers"):
        for r, obj in after[kind].items():
            assert obj["id"] == before[kind][r]["id"], (kind, r)
    assert after["rules"][f"{ref}.on_incoming"]["id"] == before["rules"][f"{ref}.on_incoming"]["id"]
    assert f"{ref}.second" not in after["rules"]
    expect_error(api.get(f"/api/v1/rules/{ref}.second"), 404)
    assert after["actions"][f"{ref}.greet"]["description"] == "Greets v2"
    # The webhook survives the re-install; the old version's files are gone.
    assert api.get_data(f"/api/v1/triggers/{ref}.incoming")["webhook_key"] == key
    assert not Path(first["storage_path"]).exists()
    assert Path(pack["storage_path"]).is_dir()
    api.fire(key, {})
    (ex,) = api.wait_rule_executions(f"{ref}.on_incoming", 1)
    assert ex["config"] == {"name": "bonjour"}, ex


def test_delete_removes_components_and_files(api):
    ref = f"del_{uid()}"
    pack = expect(upload(api, tar_pack(demo_files(ref), executable=EXEC)), 201)["data"]["pack"]
    expect(api.delete(f"/api/v1/packs/{ref}"), 200)
    expect_error(api.get(f"/api/v1/packs/{ref}"), 404)
    expect_error(api.get(f"/api/v1/actions/{ref}.greet"), 404)
    assert not Path(pack["storage_path"]).exists()
    # The same ref installs again afterwards.
    expect(upload(api, tar_pack(demo_files(ref), executable=EXEC)), 201)


def test_workflows_and_policies_are_stored(api):
    ref = f"skip_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "actions/flow.yaml": "name: flow\nworkflow_file: workflows/flow.workflow.yaml\n",
        "actions/workflows/flow.workflow.yaml": "version: 1\ntasks:\n  - {name: a, action: core.noop}\n",
        "policies/one.yaml": "name: one\naction_ref: flow\nconcurrency: {limit: 1}\n",
        "permission_sets/ops.yaml": "ref: ops\ngrants: []\n",
    }
    comps = expect(upload(api, tar_pack(files)), 201)["data"]["components"]
    assert "skipped" not in comps, comps
    assert comps["workflows"] == 1, comps  # stored (tests/e2e/tier1/test_t1_05_with_items.py)
    assert comps["policies"] == 1, comps  # tests/e2e/foundation/test_policies_api.py
    assert comps["permission_sets"] == 1, comps


def test_pack_permission_sets_are_stored_and_follow_the_pack(api):
    ref = f"psets_{uid()}"
    files = {
        "pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
        "permission_sets/ops.yaml": "ref: ops\nlabel: Operators\nroles: [oncall]\ngrants:\n"
                                    f"  - {{resource: actions, actions: [read, execute], constraints: {{pack_refs: [{ref}]}}}}\n",
        "permission_sets/readers.yaml": "name: readers\ngrants: [{resource: rules, actions: [read]}]\n",
    }
    comps = expect(upload(api, tar_pack(files)), 201)["data"]["components"]
    assert comps["permission_sets"] == 2, comps
    ops = api.get_data(f"/api/v1/permissions/sets/{ref}.ops")
    assert ops["pack_ref"] == ref and ops["label"] == "Operators" and ops["roles"] == ["oncall"]
    assert ops["grants"] == [{"resource": "actions", "actions": ["execute", "read"],
                              "constraints": {"pack_refs": [ref]}}], ops
    assert [s["ref"] for s in api.items("/api/v1/permissions/sets", pack_ref=ref)] == [f"{ref}.ops", f"{ref}.readers"]
    bad = dict(files)
    bad["permission_sets/ops.yaml"] = "ref: ops\ngrants: [{resource: actions, actions: read}]\n"
    body = expect_error(upload(api, tar_pack(bad), force=True), 422)
    assert body["details"]["file"] == "permission_sets/ops.yaml", body
    # A re-install without one of them deletes it (ids of the others kept); deleting the pack, all.
    del files["permission_sets/readers.yaml"]
    expect(upload(api, tar_pack(files), force=True), 201)
    assert api.get_data(f"/api/v1/permissions/sets/{ref}.ops")["id"] == ops["id"]
    expect_error(api.get(f"/api/v1/permissions/sets/{ref}.readers"), 404)
    expect(api.delete(f"/api/v1/packs/{ref}"), 200)
    expect_error(api.get(f"/api/v1/permissions/sets/{ref}.ops"), 404)


def _malicious(name, kind="file", link=""):
    info = tarfile.TarInfo(name)
    if kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = link
        return info, None
    info.size = 1
    return info, b"x"


BAD_ARCHIVES = [
    ("not gzip", b"plain text, not an archive at all", 400, None),
    ("gzip of garbage", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", 400, None),
    ("dotdot entry", None, 400, [_malicious("../escape")]),
    ("absolute entry", None, 400, [_malicious("/tmp/escape")]),
    ("symlink outside", None, 400, [_malicious("link", "symlink", "/etc")]),
    ("symlink climbing out", None, 400, [_malicious("actions/l", "symlink", "../../x")]),
]


def test_bad_archives_change_nothing(api):
    ref = f"bad_{uid()}"
    good = demo_files(ref)
    expect(upload(api, tar_pack(good, executable=EXEC)), 201)
    before = components_of(api, ref)
    pack_before = api.get_data(f"/api/v1/packs/{ref}")
    for label, raw, status, extra in BAD_ARCHIVES:
        archive = raw if raw is not None else tar_pack(demo_files(ref, "9.9.9"), extra=extra)
        expect_error(upload(api, archive, force=True), status), label
    refusals = {
        "yaml syntax": ({"actions/greet.yaml": "name: greet\nparameters: {a: [unclosed\n"}, 422,
                        "actions/greet.yaml"),
        "unknown runner": ({"actions/greet.yaml": "name: greet\nrunner_type: perl\nentry_point: x.pl\n"},
                           422, "runner_type"),
        "missing entry point": ({"actions/greet.yaml": "name: greet\nrunner_type: python\n"
                                                        "entry_point: nope.py\n"}, 422, "entry_point"),
        "rule naming a missing action": ({"rules/on_incoming.yaml": "name: on_incoming\n"
                                                                    "trigger: incoming\naction: missing\n"},
                                         422, "rules/on_incoming.yaml"),
        "config against conf_schema": ({"pack.yaml": f"ref: {ref}\nversion: 9.9.9\n"
                                                     "conf_schema:\n  n: {type: integer, required: true}\n"
                                                     "config:\n  n: not-a-number\n"}, 422, "config.n"),
        "no pack.yaml": ({"pack.yaml": None}, 400, "pack.yaml"),
    }
    for label, (changes, status, mention) in refusals.items():
        files = demo_files(ref, "9.9.9")
        for k, v in changes.items():
            if v is None:
                files.pop(k)
            else:
                files[k] = v
        body = expect_error(upload(api, tar_pack(files, executable=EXEC), force=True), status)
        assert mention in body["error"] or mention in str(body.get("details")), (label, body)
        if label == "yaml syntax":
            assert body["details"]["file"] == "actions/greet.yaml" and body["details"]["line"] >= 2, body
    # Nothing of the pack changed through all of it.
    assert api.get_data(f"/api/v1/packs/{ref}") == pack_before
    assert components_of(api, ref) == before
    assert Path(pack_before["storage_path"]).is_dir()


def test_upload_without_the_pack_field_or_multipart(api):
    expect_error(api.post("/api/v1/packs/upload", json={"x": 1}), 400)
    import requests
    r = requests.post(api.url("/api/v1/packs/upload"), headers={"Authorization": f"Bearer {api.token}"},
                      files={"other": ("x.tgz", b"abc")}, timeout=30)
    expect_error(r, 400, message_contains="pack")
    expect_error(upload(api.with_token(None), tar_pack({"pack.yaml": "ref: x\n"})), 401)


def test_size_limits_are_413(server_factory):
    srv = server_factory.start_new(extra_env={"ATTUNE_PACK_MAX_UPLOAD_BYTES": "100000",
                                              "ATTUNE_PACK_MAX_UNPACKED_BYTES": "2000000"})
    api = srv.admin_client()
    ref = f"big_{uid()}"
    big = {"pack.yaml": f"ref: {ref}\n", "blob.bin": os.urandom(200_000)}  # incompressible
    expect_error(upload(api, tar_pack(big)), 413)
    bomb = {"pack.yaml": f"ref: {ref}\n", "zeros.bin": b"\0" * 5_000_000}  # ~5 KB compressed
    assert len(tar_pack(bomb)) < 100_000
    expect_error(upload(api, tar_pack(bomb)), 413)
    expect_error(api.get(f"/api/v1/packs/{ref}"), 404)
    expect(upload(api, tar_pack({"pack.yaml": f"ref: {ref}\n"})), 201)


def test_core_pack_is_a_real_pack_directory(api):
    core = api.get_data("/api/v1/packs/core")
    assert core["storage_path"] and Path(core["storage_path"], "pack.yaml").is_file()
    refs = {a["ref"] for a in api.items("/api/v1/actions", pack_ref="core", page_size=100)}
    assert {"core.echo", "core.noop", "core.sleep", "core.local"} <= refs
    ex = api.wait_execution(api.execute("core.echo", {"message": "from core"})["id"])
    assert ex["status"] == "completed" and ex["result"]["stdout"] == "from core\n", ex
    expect_error(upload(api, tar_pack({"pack.yaml": "ref: core\n"}), force=True), 400)
    expect_error(api.delete("/api/v1/packs/core"), 400)
