"""pytest harness: starts the real `attune serve` and hands tests HTTP clients.

Binary: $ATTUNE_BIN, default <repo>/build/api/cli/attune. A missing binary fails every test (never skips).
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attune_e2e import Client, Server, attune_bin, uid  # noqa: E402

_SESSION_SERVER: list = []


def pytest_addoption(parser):
    parser.addini("e2e_timeout", "per-test timeout in seconds (SIGALRM guard; 0 disables)", default="120")


def pytest_configure(config):
    config.addinivalue_line("markers", "restart: test starts and stops its own attune server(s)")
    config.addinivalue_line("markers", "soak: a long randomized crash or scale run, left out of "
                                       "`bash cmake/dev.sh test` (CI) and run by `bash cmake/dev.sh test-full`")


# ----------------------------------------------------------------------------------- timeout guard

@pytest.fixture(autouse=True)
def _e2e_timeout_guard(request):
    seconds = int(request.config.getini("e2e_timeout") or 0)
    if seconds <= 0:
        yield
        return

    def on_alarm(signum, frame):
        pytest.fail(f"test exceeded the e2e timeout of {seconds}s", pytrace=True)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------------------ server

@pytest.fixture(scope="session")
def attune_binary() -> Path:
    path = attune_bin()
    if not path.exists():
        pytest.fail(f"attune binary not found at {path}: build it first "
                    f"(or point ATTUNE_BIN at it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def server(attune_binary, tmp_path_factory):
    """The shared server for the session (temp data dir, ephemeral ports)."""
    base = tmp_path_factory.mktemp("attune-session")
    # Pack directories POST /packs/register may read (fixture `packs_dir`), and where python
    # packages for pack environments come from (fixture `wheels_dir`; no index is reachable).
    (base / "packs-src").mkdir()
    (base / "wheels").mkdir()
    srv = Server(attune_binary, base / "data", base / "attune.log",
                 extra_env={"ATTUNE_PACKS_DIR": str(base / "packs-src"),
                            "ATTUNE_PIP_FIND_LINKS": str(base / "wheels"),
                            "ATTUNE_PIP_EXTRA_ARGS": "--no-index"})
    srv.start(timeout=60)
    _SESSION_SERVER.append(srv)
    yield srv
    _SESSION_SERVER.remove(srv)
    rc = srv.stop(grace=10)
    assert not srv.last_stop_needed_kill, \
        f"attune serve did not exit within 10 s of SIGTERM (killed; code {rc})\n{srv.log_tail()}"
    assert rc == 0, f"attune serve exited with code {rc} after SIGTERM\n{srv.log_tail()}"


class ServerFactory:
    """Function-scoped servers for tests that stop/kill/restart (e.g. the restart test)."""

    def __init__(self, binary: Path, tmp_path: Path):
        self.binary = binary
        self.tmp_path = tmp_path
        self.servers: list[Server] = []

    def new(self, name: str | None = None, **kw) -> Server:
        name = name or f"srv-{uid(6)}"
        base = self.tmp_path / name
        base.mkdir(parents=True, exist_ok=True)
        srv = Server(self.binary, base / "data", base / "attune.log", **kw)
        self.servers.append(srv)
        return srv

    def start_new(self, name: str | None = None, **kw) -> Server:
        return self.new(name, **kw).start()

    def cleanup(self) -> list[str]:
        problems = []
        for srv in self.servers:
            if srv.running():
                rc = srv.stop(grace=10)
                if srv.last_stop_needed_kill:
                    problems.append(f"{srv.data_dir}: no exit within 10 s of SIGTERM (killed, code {rc})")
        return problems


@pytest.fixture
def server_factory(attune_binary, tmp_path):
    factory = ServerFactory(attune_binary, tmp_path)
    yield factory
    problems = factory.cleanup()
    assert not problems, "; ".join(problems)


# ------------------------------------------------------------------------------------------ clients

@pytest.fixture(scope="session")
def admin_session(server) -> dict:
    """Logged in once per session (Argon2id makes logins deliberately slow)."""
    c = server.admin_client()
    return {"token": c.token, "refresh_token": c.refresh_token, "user": c.user}


@pytest.fixture
def api(server, admin_session) -> Client:
    """A client holding the bootstrap admin's access token."""
    c = server.client(admin_session["token"])
    c.refresh_token = admin_session["refresh_token"]
    c.user = admin_session["user"]
    return c


@pytest.fixture
def packs_dir(server) -> Path:
    """The session server's --packs-dir: write pack directories here, then /packs/register."""
    return Path(server.extra_env["ATTUNE_PACKS_DIR"])


@pytest.fixture
def wheels_dir(server) -> Path:
    """The session server's --pip-find-links directory (with --no-index): put wheels here."""
    return Path(server.extra_env["ATTUNE_PIP_FIND_LINKS"])


@pytest.fixture
def anon(server) -> Client:
    """A client without any token."""
    return server.client()


# ------------------------------------------------------------------------- logs on failure

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    servers = list(_SESSION_SERVER) if "server" in getattr(item, "fixturenames", ()) else []
    factory = getattr(item, "funcargs", {}).get("server_factory")
    if factory is not None:
        servers += factory.servers
    for i, srv in enumerate(servers):
        rep.sections.append((f"attune log ({srv.log_path})", srv.log_tail(80)))
