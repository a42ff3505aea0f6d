"""T1.6 across restarts (API.md §1, §14): encrypted keys survive a restart under the generated or the
configured encryption key; a TTL that passes while the server is down has expired when it comes back;
a key shorter than 32 characters refuses to start."""
from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from attune_e2e import expect, expect_error, uid
from datastore_util import files_containing, secret_value

pytestmark = pytest.mark.restart


def test_keys_survive_restart_and_expire_while_down(server_factory):
    srv = server_factory.start_new("keys-generated")
    api = srv.admin_client()
    secret = secret_value("restart")
    expect(api.post("/api/v1/keys", json={"local_ref": "db", "value": {"password": secret}}), 201)
    expect(api.post("/api/v1/keys", json={"local_ref": "brief", "value": 1, "ttl_seconds": 1}), 201)
    key_file = srv.data_dir / "encryption-key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    srv.stop()
    time.sleep(1.2)  # the TTL passes while the server is down
    srv.start()
    api = srv.admin_client()
    assert api.get_data("/api/v1/keys/db")["value"] == {"password": secret}
    expect_error(api.get("/api/v1/keys/brief"), 404)
    api.wait_for(lambda: "brief" not in {r["local_ref"] for r in api.items("/api/v1/keys", owner_type="system")},
                 timeout=5, desc="expired key unlisted")
    # The ref is free again.
    expect(api.post("/api/v1/keys", json={"local_ref": "brief", "value": 2}), 201)
    assert files_containing(srv.data_dir, secret) == []


def test_configured_encryption_key(server_factory):
    configured = "configured-key-" + uid(24)
    srv = server_factory.start_new("keys-configured",
                                   extra_env={"ATTUNE__SECURITY__ENCRYPTION_KEY": configured})
    api = srv.admin_client()
    expect(api.post("/api/v1/keys", json={"local_ref": "k", "value": "v-secret"}), 201)
    assert not (srv.data_dir / "encryption-key").exists(), "a configured key is not written to disk"
    srv.stop()
    srv.start()
    assert srv.admin_client().get_data("/api/v1/keys/k")["value"] == "v-secret"
    srv.stop()
    # Too short: refuse to start, with a clear message.
    env = srv.env()
    env["ATTUNE__SECURITY__ENCRYPTION_KEY"] = "short"
    out = subprocess.run(srv.command(), env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "ATTUNE__SECURITY__ENCRYPTION_KEY must be at least 32 characters" in out.stderr
