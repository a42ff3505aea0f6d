"""The `attune` command-line client against a real server (api/cli/client): login and tokens, packs,
actions, executions (wait, cancel, tail), rules, triggers/webhooks, keys, inquiries, workflows, and
the documented exit codes. Every test runs the binary as a user would, with its own --config-dir."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from attune_e2e import expect, uid, wait_for

EXEC_FILES = ("actions/hello.sh", "actions/fail.sh", "actions/nap.sh")


def pack_files(ref: str) -> dict:
    return {
        "pack.yaml": f"ref: {ref}\nlabel: CLI demo\nversion: 1.2.3\n",
        "actions/hello.yaml": "name: hello\nrunner_type: shell\nentry_point: hello.sh\n"
                              "description: Says hello\nparameters:\n"
                              "  name: {type: string, required: true, description: who to greet}\n"
                              "  count: {type: integer, default: 1}\n"
                              "  token: {type: string, secret: true}\n",
        "actions/hello.sh": "#!/bin/sh\nread doc\necho \"hello from cli: $doc\"\n",
        "actions/fail.yaml": "name: fail\nrunner_type: shell\nentry_point: fail.sh\n",
        "actions/fail.sh": "#!/bin/sh\necho oops-on-stderr >&2\nexit 3\n",
        "actions/nap.yaml": "name: nap\nrunner_type: shell\nentry_point: nap.sh\n",
        "actions/nap.sh": "#!/bin/sh\nsleep 30\n",
        "actions/slow.yaml": "name: slow\nrunner_type: shell\nentry_point: nap.sh\ntimeout_seconds: 1\n",
        "triggers/hook.yaml": "name: hook\ndescription: CLI webhook trigger\n",
        "rules/on_hook.yaml": "name: on_hook\ntrigger: hook\n"
                              "action: {ref: hello, parameters: {name: '{{ event.payload.who }}'}}\n",
    }


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE") and k != "NO_COLOR"}
    env.update(extra or {})
    return env


class Cli:
    """Runs `attune` with one config directory and the server's URL."""

    def __init__(self, binary: Path, server, config_dir: Path, ws: bool = True):
        self.binary = str(binary)
        self.server = server
        self.config_dir = config_dir
        self.env = clean_env({"ATTUNE_CONFIG_DIR": str(config_dir), "ATTUNE_API_URL": server.api_url})
        # The CLI finds the notifier through GET /health/detailed's websocket_url; servers without
        # it (ephemeral ports, no fixed 8081) get the URL from the environment instead.
        if ws and "websocket_url" not in requests.get(server.api_url + "/health/detailed", timeout=10).json():
            self.env["ATTUNE_NOTIFIER_WS_URL"] = server.ws_url + "/ws"

    def run(self, *args, input: str | None = None, timeout: float = 40, env: dict | None = None):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([self.binary, *map(str, args)], input=input, capture_output=True,
                              text=True, env=e, timeout=timeout)

    def ok(self, *args, **kw) -> subprocess.CompletedProcess:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"attune {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, "--json", **kw).stdout)

    def popen(self, *args) -> subprocess.Popen:
        return subprocess.Popen([self.binary, *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def creds(self) -> dict:
        return json.loads((self.config_dir / "credentials.json").read_text())


@pytest.fixture(scope="module")
def saved_login(attune_binary, server, tmp_path_factory) -> Path:
    """One real login per module (Argon2 is deliberately slow); tests copy its credentials.json."""
    d = tmp_path_factory.mktemp("cli-login")
    pw = d / "pw"
    pw.write_text(f"{server.admin_login}:{server.admin_password}\n")
    Cli(attune_binary, server, d / "cfg").ok("login", "--password-file", pw)
    return d / "cfg" / "credentials.json"


@pytest.fixture
def cli(attune_binary, server, saved_login, tmp_path) -> Cli:
    cfg = tmp_path / "cfg"
    cfg.mkdir(mode=0o700)
    shutil.copy(saved_login, cfg / "credentials.json")
    return Cli(attune_binary, server, cfg)


@pytest.fixture
def fresh(attune_binary, server, tmp_path) -> Cli:
    """Not logged in."""
    return Cli(attune_binary, server, tmp_path / "fresh-cfg")


@pytest.fixture(scope="module")
def pack_src(tmp_path_factory) -> Path:
    """The demo pack as a directory (its name is its ref)."""
    ref = f"cli_{uid(8)}"
    src = tmp_path_factory.mktemp("cli-pack-src") / ref
    for rel, text in pack_files(ref).items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o755 if rel in EXEC_FILES else 0o644)
    return src


@pytest.fixture(scope="module")
def pack(attune_binary, server, saved_login, tmp_path_factory, pack_src) -> str:
    """`attune pack install DIR` of the demo pack (a directory, archived by the CLI)."""
    cfg = tmp_path_factory.mktemp("cli-pack") / "cfg"
    cfg.mkdir()
    shutil.copy(saved_login, cfg / "credentials.json")
    ref = pack_src.name
    r = Cli(attune_binary, server, cfg).ok("pack", "install", pack_src)
    assert f"Installed pack {ref} 1.2.3" in r.stdout, r.stdout
    assert "4 actions" in r.stdout and "1 rules" in r.stdout and "1 triggers" in r.stdout, r.stdout
    return ref


# ------------------------------------------------------------------------------------ login / auth

def test_help_documents_commands_and_exit_codes(fresh):
    top = fresh.ok("--help").stdout
    for word in ("login", "pack", "action", "execution", "rule", "trigger", "key", "inquiry",
                 "workflow", "serve", "Exit codes", "8 --wait gave up"):
        assert word in top, word
    run = fresh.ok("action", "run", "--help").stdout
    for word in ("--wait", "--timeout", "--params-file", "--url", "--json", "--no-color", "--config-dir"):
        assert word in run, word
    r = fresh.run("action", "run")  # missing REF
    assert r.returncode == 2, r
    r = fresh.run("execution", "show", "notanumber")
    assert r.returncode == 2, r


def test_login_with_password_file_then_whoami(fresh, server, tmp_path):
    pw = tmp_path / "admin-password"
    pw.write_text(f"{server.admin_login}:{server.admin_password}\n")
    r = fresh.ok("login", "--password-file", pw)
    assert f"as {server.admin_login}" in r.stdout
    path = fresh.config_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.config_dir.stat().st_mode) == 0o700
    saved = fresh.creds()
    assert saved["url"] == server.api_url and saved["login"] == server.admin_login
    assert saved["access_token"] and saved["refresh_token"] and saved["expires_at"] > time.time()
    # whoami works without ATTUNE_API_URL: the URL saved by login is used.
    env = dict(fresh.env)
    del env["ATTUNE_API_URL"]
    out = subprocess.run([fresh.binary, "whoami"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert server.admin_login in out.stdout and server.api_url in out.stdout and "core.admin" in out.stdout
    me = fresh.json("whoami")
    assert me["login"] == server.admin_login
    fresh.ok("logout")
    assert not path.exists()
    r = fresh.run("whoami")
    assert r.returncode == 4 and "attune login" in r.stderr, r


def test_login_password_stdin_and_bare_password_file(fresh, server, tmp_path):
    fresh.ok("login", "--user", server.admin_login, "--password-stdin", input=server.admin_password + "\n")
    assert fresh.creds()["login"] == server.admin_login
    pw = tmp_path / "bare"
    pw.write_text(server.admin_password)
    fresh.ok("login", "--user", server.admin_login, "--password-file", pw)


def test_wrong_password_exits_4(fresh, server):
    r = fresh.run("login", "--user", server.admin_login, "--password-stdin", input="wrong-password\n")
    assert r.returncode == 4, r
    assert "HTTP 401" in r.stderr and r.stderr.startswith("attune: "), r.stderr
    r = fresh.run("login", "--user", server.admin_login, "--password-stdin", "--json", input="nope\n")
    assert r.returncode == 4 and r.stdout == ""
    err = json.loads(r.stderr)
    assert err["status"] == 401 and err["code"] == "UNAUTHORIZED" and err["error"], err
    r = fresh.run("login", "--user", server.admin_login)  # no TTY, no password option
    assert r.returncode == 2 and "--password-stdin" in r.stderr, r


def test_unreachable_server_exits_5(fresh):
    r = fresh.run("whoami", "--url", "http://127.0.0.1:9", "--token", "x")
    assert r.returncode == 5, r
    assert "cannot reach http://127.0.0.1:9" in r.stderr and "attune serve" in r.stderr, r.stderr
    t0 = time.monotonic()
    r = fresh.run("login", "--url", "http://127.0.0.1:9", "--user", "a", "--password-stdin",
                  "--wait-ready", "1", input="pw\n")
    assert r.returncode == 5 and time.monotonic() - t0 >= 1.0, r


def test_login_wait_ready_while_the_server_starts(attune_binary, server_factory, tmp_path):
    """`attune serve ... & attune login --wait-ready 60`: login retries until the API listens."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = server_factory.new("late")
    srv.command = lambda: [str(attune_binary), "serve", "--data-dir", str(srv.data_dir),
                           "--listen", f"127.0.0.1:{port}", "--ws-listen", "127.0.0.1:0"]
    env = clean_env({"ATTUNE_CONFIG_DIR": str(tmp_path / "cfg")})
    login = subprocess.Popen([str(attune_binary), "login", "--url", f"http://127.0.0.1:{port}",
                              "--user", srv.admin_login, "--password-stdin", "--wait-ready", "60"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    login.stdin.write(srv.admin_password + "\n")
    login.stdin.close()
    time.sleep(1.0)
    assert login.poll() is None, login.stderr.read()  # still waiting for the server
    srv.start()
    assert login.wait(60) == 0, login.stderr.read()
    assert f"127.0.0.1:{port}" in json.loads((tmp_path / "cfg" / "credentials.json").read_text())["url"]


def test_expired_access_token_is_refreshed(cli, server):
    before = cli.creds()
    doc = dict(before, expires_at=int(time.time()) - 10)
    (cli.config_dir / "credentials.json").write_text(json.dumps(doc))
    assert cli.json("whoami")["login"] == server.admin_login
    after = cli.creds()
    assert after["expires_at"] > time.time() + 60  # refreshed and saved (tokens minted in the same
    assert after["access_token"]                    # second as the login may be byte-identical)
    assert stat.S_IMODE((cli.config_dir / "credentials.json").stat().st_mode) == 0o600
    # A rejected (not yet expired) access token: 401, one refresh, retried.
    (cli.config_dir / "credentials.json").write_text(json.dumps(dict(after, access_token="not.a.jwt")))
    assert cli.json("whoami")["login"] == server.admin_login
    assert cli.creds()["access_token"] != "not.a.jwt"
    # A dead refresh token as well: exit 4, "run attune login".
    (cli.config_dir / "credentials.json").write_text(
        json.dumps(dict(after, access_token="x", refresh_token="y")))
    r = cli.run("whoami")
    assert r.returncode == 4 and "attune login" in r.stderr, r


def test_explicit_token_is_used_as_is(cli, api):
    r = cli.run("whoami", "--json", env={"ATTUNE_API_TOKEN": api.token, "ATTUNE_CONFIG_DIR": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    r = cli.run("whoami", "--token", "bad.token.here")
    assert r.returncode == 4 and "HTTP 401" in r.stderr, r


# ------------------------------------------------------------------------------------ packs / actions

def test_pack_list_show_and_actions(cli, pack, pack_src, api):
    packs = cli.json("pack", "list")
    assert pack in [p["ref"] for p in packs]
    assert cli.json("pack", "show", pack)["version"] == "1.2.3"
    out = cli.ok("action", "list", "--pack", pack).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["REF", "RUNTIME", "ENABLED", "DESCRIPTION"]
    assert "\x1b" not in out  # piped: no colour
    assert any(line.startswith(f"{pack}.hello ") and "Says hello" in line for line in lines), out
    # Columns are aligned: every row's RUNTIME starts where the header's does.
    col = lines[0].index("RUNTIME")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[1:]), out
    refs = [a["ref"] for a in cli.json("action", "list", "--pack", pack)]
    assert sorted(refs) == sorted(f"{pack}.{n}" for n in ("hello", "fail", "nap", "slow"))
    show = cli.ok("action", "show", f"{pack}.hello").stdout
    assert "Parameters:" in show
    row = next(line for line in show.splitlines() if line.startswith("name "))
    assert row.split()[:3] == ["name", "string", "yes"] and "who to greet" in row, show
    token_row = next(line for line in show.splitlines() if line.startswith("token "))
    assert "yes" in token_row.split()[2:4], show  # secret marked
    # Reinstall without --force: the API's 409 → exit 3 with its message; with --force it replaces.
    r = cli.run("pack", "install", pack_src)
    assert r.returncode == 3 and "HTTP 409 CONFLICT" in r.stderr, r
    installed = cli.json("pack", "install", pack_src, "--force")
    assert installed["pack"]["ref"] == pack and installed["components"]["actions"] == 4
    r = cli.run("pack", "install", "/nonexistent/dir.tar.gz")
    assert r.returncode == 2 and "cannot read" in r.stderr, r


def test_action_run_wait_prints_output(cli, pack):
    r = cli.run("action", "run", f"{pack}.hello", "name=x", "count=2", "--wait")
    assert r.returncode == 0, r
    assert "hello from cli:" in r.stdout and '"name":"x"' in r.stdout and '"count":2' in r.stdout, r.stdout


def test_action_run_without_wait_and_execution_show_list(cli, pack, api):
    ex = cli.json("action", "run", f"{pack}.hello", "name=plain")
    assert ex["status"] and ex["id"] > 0
    r = cli.ok("action", "run", f"{pack}.hello", "name=plain2")
    assert r.stdout.startswith("Execution "), r.stdout
    api.wait_execution(ex["id"])
    rows = cli.json("execution", "list", "--action", f"{pack}.hello", "--limit", "5")
    assert ex["id"] in [e["id"] for e in rows] and len(rows) <= 5
    show = cli.ok("execution", "show", ex["id"]).stdout
    assert f"{pack}.hello" in show and "completed" in show and "hello from cli" in show
    assert '"name": "plain"' in show and "Duration:" in show
    done = cli.json("execution", "list", "--status", "completed,failed", "--pack", pack)
    assert all(e["status"] in ("completed", "failed") for e in done)


def test_failing_action_exits_1_with_stderr_by_polling(cli, pack):
    env = {"ATTUNE_NOTIFIER_WS_URL": "ws://127.0.0.1:9/ws"}  # notifier unreachable: polling fallback
    r = cli.run("action", "run", f"{pack}.fail", "--wait", env=env)
    assert r.returncode == 1, r
    assert "oops-on-stderr" in r.stderr and "failed" in r.stderr, r.stderr


def test_timed_out_execution_exits_6(cli, pack):
    r = cli.run("action", "run", f"{pack}.slow", "--wait", "--timeout", "30")
    assert r.returncode == 6, r
    assert "timeout" in r.stderr and "timed out" in r.stderr, r.stderr


def test_bad_parameters(cli, pack):
    r = cli.run("action", "run", f"{pack}.hello", "name=x", "count=abc")
    assert r.returncode == 2 and "'count'" in r.stderr and "integer" in r.stderr, r
    r = cli.run("action", "run", f"{pack}.hello", "noequals")
    assert r.returncode == 2, r
    r = cli.run("action", "run", f"{pack}.hello", "count=3")  # required name missing: the API's 422
    assert r.returncode == 3 and "HTTP 422 VALIDATION_ERROR" in r.stderr and "name" in r.stderr, r
    r = cli.run("action", "run", f"{pack}.nope", "--wait")
    assert r.returncode == 3 and "HTTP 404" in r.stderr, r


def test_cancel_sleeping_execution(cli, pack, api):
    ex = cli.json("action", "run", f"{pack}.nap")
    api.wait_execution(ex["id"], statuses={"running"})
    cli.ok("execution", "cancel", ex["id"])
    r = cli.run("execution", "tail", ex["id"], "--follow", "--timeout", "30")
    assert r.returncode == 7, r
    assert api.get_data(f"/api/v1/executions/{ex['id']}")["status"] == "cancelled"


def test_ctrl_c_during_wait_exits_130(cli, pack, api):
    proc = cli.popen("action", "run", f"{pack}.nap", "--wait")
    ex = wait_for(lambda: [e for e in api.items("/api/v1/executions", action_ref=f"{pack}.nap",
                                                status="running")], desc="a running nap")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert "interrupted" in proc.stderr.read()
    for e in ex:
        api.post(f"/api/v1/executions/{e['id']}/cancel")


def test_params_file_and_archive_install(cli, api, tmp_path):
    import io
    import tarfile
    ref = f"cli_{uid(8)}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in {"pack.yaml": f"ref: {ref}\nversion: 2.0.0\n",
                          "actions/show.yaml": "name: show\nrunner_type: shell\nentry_point: show.sh\n"
                                               "parameters:\n  n: {type: integer}\n  items: {type: array}\n",
                          "actions/show.sh": "#!/bin/sh\ncat\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "pack.tar.gz"
    archive.write_bytes(buf.getvalue())
    assert f"Installed pack {ref} 2.0.0" in cli.ok("pack", "install", archive).stdout
    params = tmp_path / "p.yaml"
    params.write_text("n: 5\nitems: [a, b]\n")
    r = cli.ok("action", "run", f"{ref}.show", "--params-file", params, "n=6", "--wait")
    assert json.loads(r.stdout) == {"n": 6, "items": ["a", "b"]}
    cli.ok("pack", "remove", ref)
    r = cli.run("pack", "show", ref)
    assert r.returncode == 3 and "HTTP 404" in r.stderr


def test_wait_gives_up_after_timeout(cli, pack, api):
    t0 = time.monotonic()
    r = cli.run("action", "run", f"{pack}.nap", "--wait", "--timeout", "1")
    assert r.returncode == 8 and "gave up" in r.stderr, r
    assert time.monotonic() - t0 < 10
    ex_id = int(r.stderr.split("execution ")[1].split()[0])
    api.post(f"/api/v1/executions/{ex_id}/cancel")


@pytest.mark.parametrize("notifier", [True, False], ids=["websocket", "polling"])
def test_tail_follow_prints_status_changes_until_sigint(cli, api, notifier):
    if not notifier:
        cli.env["ATTUNE_NOTIFIER_WS_URL"] = "ws://127.0.0.1:9/ws"
    proc = cli.popen("execution", "tail", "--follow", "--limit", "1")
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        time.sleep(1.0)  # connected and subscribed
        ex = api.execute("core.echo", {"message": "tail me"})
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            parts = line.split()
            # Polling may first see the execution already completed (no "old →" part).
            done = "→ completed" in line if notifier else line.rstrip().endswith("completed")
            if len(parts) >= 3 and parts[1] == str(ex["id"]) and done:
                assert parts[2] == "core.echo", line
                break
        else:
            pytest.fail(f"no completed line for {ex['id']}: {seen}")
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
    assert rc == 130
    err = proc.stderr.read()
    assert ("polling" in err) == (not notifier), err  # the WebSocket was used when reachable


def test_tail_follow_with_timeout_lists_then_follows_and_exits_0(cli, pack, api):
    """What the README's first automation does: the latest executions, then their changes, and
    an end. The subscription is in place before the listing, so a change between them is not
    lost: the execution's last line says timeout whether it ended before or during the tail."""
    ex = api.execute(f"{pack}.slow")  # times out after 1 s
    started = time.monotonic()
    r = cli.run("execution", "tail", "--follow", "--timeout", "4", "--limit", "5", timeout=30)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r
    assert 3.5 <= elapsed < 20, elapsed
    mine = [line for line in r.stdout.splitlines() if line.split()[1:2] == [str(ex["id"])]]
    assert mine, r.stdout
    assert mine[-1].split()[-1] == "timeout", mine


# ------------------------------------------------------------------------------------ rules / triggers

def test_rule_enable_disable(cli, pack, api):
    rule = f"{pack}.on_hook"
    rows = cli.json("rule", "list", "--pack", pack)
    assert [r["ref"] for r in rows] == [rule]
    cli.ok("rule", "disable", rule)
    assert api.get_data(f"/api/v1/rules/{rule}")["enabled"] is False
    cli.ok("rule", "enable", rule)
    assert api.get_data(f"/api/v1/rules/{rule}")["enabled"] is True
    assert cli.json("rule", "show", rule)["trigger_ref"] == f"{pack}.hook"


def test_trigger_webhook_url_fires_the_rule(cli, pack, api):
    trig = f"{pack}.hook"
    assert trig in [t["ref"] for t in cli.json("trigger", "list", "--pack", pack)]
    r = cli.run("trigger", "webhook-url", trig)
    assert r.returncode == 3 and "--enable" in r.stderr, r
    url = cli.ok("trigger", "webhook-url", trig, "--enable").stdout.strip()
    assert url.startswith(api.base_url + "/api/v1/webhooks/")
    assert cli.ok("trigger", "webhook-url", trig).stdout.strip() == url  # stable once enabled
    expect(requests.post(url, json={"payload": {"who": "webhook-user"}}, timeout=10), 200)
    rows = api.wait_rule_executions(f"{pack}.on_hook", 1)
    assert rows[0]["status"] == "completed", rows
    assert "webhook-user" in api.get_data(f"/api/v1/executions/{rows[0]['id']}")["result"]["stdout"]
    show = cli.ok("execution", "show", rows[0]["id"]).stdout  # lineage: enforcement, rule, trigger
    fields = dict(line.split(":", 1) for line in show.splitlines() if ":" in line and not line.startswith(" "))
    assert fields["Rule"].strip() == f"{pack}.on_hook" and fields["Trigger"].strip() == trig, show
    assert fields["Enforcement"].strip().isdigit() and fields["Event"].strip().isdigit(), show


# ------------------------------------------------------------------------------------ keys / inquiries

def test_key_set_get_list_delete(cli, api):
    name = f"cli_{uid(6)}"
    r = cli.ok("key", "set", name, "s3cret-value", "--encrypt")
    assert f"system.{name}" in r.stdout
    k = api.get_data(f"/api/v1/keys/system.{name}")
    assert k["encrypted"] is True and k["value"] == "s3cret-value" and k["owner_type"] == "system"
    assert cli.ok("key", "get", name).stdout == "s3cret-value\n"
    assert f"system.{name}" in [x["ref"] for x in cli.json("key", "list")]
    cli.ok("key", "set", f"system.{name}", "plain", "--ttl", "600")  # update in place
    k = api.get_data(f"/api/v1/keys/system.{name}")
    assert k["encrypted"] is False and k["value"] == "plain" and k["expires_at"]
    cli.ok("key", "delete", name)
    assert api.get(f"/api/v1/keys/system.{name}").status_code == 404
    r = cli.run("key", "get", name)
    assert r.returncode == 3 and "HTTP 404" in r.stderr


def test_inquiry_respond(cli, api):
    run = api.wait_execution(api.execute("core.echo", {"message": "asks"})["id"])
    body = {"execution": run["id"], "prompt": "Deploy?",
            "response_schema": {"approved": {"type": "boolean", "required": True},
                                "note": {"type": "string"}}}
    inq = expect(api.post("/api/v1/inquiries", json=body), 201)["data"]["inquiry"]
    assert inq["id"] in [i["id"] for i in cli.json("inquiry", "list", "--status", "pending")]
    r = cli.run("inquiry", "respond", inq["id"], "approved=maybe")
    assert r.returncode == 2 and "'approved'" in r.stderr, r
    cli.ok("inquiry", "respond", inq["id"], "approved=true", "note=42")
    got = api.get_data(f"/api/v1/inquiries/{inq['id']}")
    assert got["status"] == "responded" and got["response"] == {"approved": True, "note": "42"}
    r = cli.run("inquiry", "respond", inq["id"], "approved=false")
    assert r.returncode == 3 and "HTTP 409" in r.stderr, r


# ------------------------------------------------------------------------------------ workflows

def test_workflow_run_wait_prints_children(cli, api):
    p = api.create_pack()["ref"]
    ref = f"{p}.flow"
    definition = {"version": "1.0", "tasks": [
        {"name": "first", "action": "core.echo", "input": {"message": "{{ parameters.who }}"},
         "next": [{"do": ["second"]}]},
        {"name": "second", "action": "core.echo", "input": {"message": "bye"}}]}
    expect(api.post("/api/v1/workflows", json={"ref": ref, "pack_ref": p, "label": "flow",
                                               "version": "1.0", "definition": definition,
                                               "param_schema": {"who": {"type": "string"}}}), 201)
    assert ref in [w["ref"] for w in cli.json("workflow", "list", "--pack", p)]
    assert "first" in cli.ok("workflow", "show", ref).stdout
    r = cli.run("workflow", "run", ref, "who=cli", "--wait", "--timeout", "30")
    assert r.returncode == 0, r
    tree = [line for line in r.stdout.splitlines() if "─ " in line]
    assert len(tree) == 2 and "first" in tree[0] and "second" in tree[1], r.stdout
    assert all("completed" in line for line in tree), r.stdout
