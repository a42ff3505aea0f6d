"""Packs survive kill -9 at any moment of a force re-install (API.md §8, issue 14): after the
restart the pack is the old version or the new one, complete, with its own files — and no
orphaned version directory is left behind."""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import requests

from attune_e2e import expect, uid
from packs_util import tar_pack, upload

pytestmark = pytest.mark.restart


def version_files(ref: str, version: int) -> dict:
    n = 20 + 10 * version  # each version has its own number of actions
    files = {"pack.yaml": f"ref: {ref}\nversion: {version}.0.0\n"}
    for i in range(n):
        files[f"actions/a{i}.yaml"] = f"name: a{i}\nrunner_type: shell\nentry_point: a.sh\n"
    files["actions/a.sh"] = f"echo version {version}\n"
    return files


def test_kill9_during_force_reinstall_leaves_one_complete_version(server_factory):
    srv = server_factory.start_new("pack-crash")
    api = srv.admin_client()
    ref = f"crash_{uid()}"
    expect(upload(api, tar_pack(version_files(ref, 1))), 201)
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    for round_ in range(2, 7):
        archive = tar_pack(version_files(ref, round_))
        outcome = {}

        def send():
            try:
                outcome["status"] = upload(api, archive, force=True, timeout=20).status_code
            except requests.RequestException as e:
                outcome["error"] = str(e)

        t = threading.Thread(target=send)
        t.start()
        time.sleep(rng.uniform(0, 0.08))
        srv.kill9()
        t.join(30)
        srv.start()
        api = srv.admin_client()
        pack = api.get_data(f"/api/v1/packs/{ref}")
        version = int(pack["version"].split(".")[0])
        assert version in (round_ - 1, round_) or (outcome.get("status") != 201 and version < round_), \
            (seed, round_, pack, outcome)
        if outcome.get("status") == 201:
            assert version == round_, (seed, round_, outcome, pack)
        actions = api.items("/api/v1/actions", pack_ref=ref, page_size=200)
        assert len(actions) == 20 + 10 * version, (seed, round_, version, len(actions))
        storage = Path(pack["storage_path"])
        assert (storage / "pack.yaml").read_text().startswith(f"ref: {ref}\nversion: {version}.0.0"), seed
        assert (storage / "actions" / "a.sh").read_text() == f"echo version {version}\n"
        # Only the live version's directory remains (the start's sweep removes the rest).
        assert [p for p in storage.parent.iterdir()] == [storage], (seed, list(storage.parent.iterdir()))
        ex = api.wait_execution(api.execute(f"{ref}.a0", {})["id"])
        assert ex["status"] == "completed" and ex["result"]["stdout"] == f"echo version {version}\n" \
            .replace("echo ", ""), (seed, ex)
