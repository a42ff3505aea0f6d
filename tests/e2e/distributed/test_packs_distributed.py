"""Packs in distributed mode (issue 14, README "Packs"): API and worker in separate processes on
Kafka share the pack files directory (--pack-files-dir); a pack uploaded to the API runs its file
action on the worker. A worker that cannot see the files fails the execution at once, naming the
path and the option, instead of hanging or running something else."""
from __future__ import annotations

import pytest

from attune_e2e import attune_bin, expect, random_password, uid
from dist import MockBroker, RoleServer
from packs_util import tar_pack, upload


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist-packs")
    shared = base / "shared-packs"
    broker = MockBroker(base / "mock_kafka.log").start()
    jwt, password = random_password(48), random_password()
    procs = {}

    def role(name, roles, node_id, *extra):
        srv = RoleServer(attune_bin(), base / name, broker.bootstrap, roles, node_id, jwt, password,
                         extra_args=list(extra))
        procs[name] = srv
        return srv

    role("api", "api", 1, "--pack-files-dir", str(shared)).start()
    api_url = procs["api"].api_url
    starters = [role("executor", "executor", 2),
                role("worker", "worker", 3, "--pack-files-dir", str(shared), "--api-url", api_url)]
    import threading
    threads = [threading.Thread(target=s.start) for s in starters]
    [t.start() for t in threads]
    [t.join() for t in threads]
    yield procs, role, shared
    for srv in procs.values():
        if srv.running():
            srv.stop(grace=10)
    broker.stop()


def test_pack_files_run_on_a_remote_worker_sharing_the_directory(parts):
    procs, role, shared = parts
    api = procs["api"].admin_client()
    ref = f"dp_{uid()}"
    files = {"pack.yaml": f"ref: {ref}\nversion: 1.0.0\n",
             "actions/hi.yaml": "name: hi\nrunner_type: shell\nentry_point: hi.sh\n",
             "actions/hi.sh": "#!/bin/sh\necho \"remote from $(basename $(dirname $(pwd)))\"\n"}
    pack = expect(upload(api, tar_pack(files, executable=("actions/hi.sh",))), 201)["data"]["pack"]
    assert pack["storage_path"].startswith(str(shared)), pack
    ex = api.wait_execution(api.execute(f"{ref}.hi", {})["id"], timeout=60)
    assert ex["status"] == "completed", ex
    assert ex["result"]["stdout"].startswith("remote from "), ex

    # The worker's host loses the shared directory (not mounted): a clear, immediate error.
    moved = shared.with_name("unmounted")
    shared.rename(moved)
    try:
        ex = api.wait_execution(api.execute(f"{ref}.hi", {})["id"], timeout=60)
    finally:
        moved.rename(shared)
    assert ex["status"] == "failed", ex
    assert pack["storage_path"] in ex["result"]["error"] and "--pack-files-dir" in ex["result"]["error"], ex
