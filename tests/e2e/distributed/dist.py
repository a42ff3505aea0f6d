"""Distributed-mode helpers: a mock Kafka broker process and `attune serve --broker ... --roles`
processes (README "Running distributed", as plain processes)."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from attune_e2e import Server, attune_bin, random_password

MOCK_BIN = Path(os.environ.get("ATTUNE_MOCK_KAFKA") or
                attune_bin().parents[2] / "tests" / "tools" / "mock_kafka" / "mock_kafka")

# Fast failure detection for tests: a killed member leaves its group after 3 s.
KAFKA_TEST_CONFIG = ["session.timeout.ms=3000", "heartbeat.interval.ms=500"]


class MockBroker:
    def __init__(self, log_path: Path, partitions: int = 4, args: tuple = ()):
        self.log_path = log_path
        self.partitions = partitions
        self.args = list(args)  # more mock_kafka arguments (e.g. --no-long-poll)
        self.proc: Optional[subprocess.Popen] = None
        self.bootstrap = ""

    def start(self) -> "MockBroker":
        assert MOCK_BIN.exists(), f"mock_kafka not built at {MOCK_BIN}"
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(MOCK_BIN), "--partitions", str(self.partitions)] + self.args,
                                     stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        m = re.fullmatch(r"bootstrap=(\S+)", line)
        assert m, f"mock_kafka printed {line!r}"
        self.bootstrap = m.group(1)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class RoleServer(Server):
    """`attune serve --broker B --roles R` on its own data directory."""

    def __init__(self, binary: Path, base: Path, broker: str, roles: str, node_id: Optional[int],
                 jwt_secret: str, admin_password: str, extra_args: Optional[list] = None):
        base.mkdir(parents=True, exist_ok=True)
        super().__init__(binary, base / "data", base / "attune.log", admin_password=admin_password,
                         jwt_secret=jwt_secret,
                         extra_env={"ATTUNE__SECURITY__ENCRYPTION_KEY": "k" * 40})
        self.broker = broker
        self.roles = roles
        self.node_id = node_id
        self.extra_args = list(extra_args or [])

    def command(self) -> list[str]:
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir),
               "--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0",
               "--broker", self.broker, "--roles", self.roles,
               "--worker-timeout-ms", "4000", "--worker-heartbeat-ms", "500"]
        if self.node_id is not None:  # None: the default, as a user who gives none
            cmd += ["--node-id", str(self.node_id)]
        for kv in KAFKA_TEST_CONFIG:
            cmd += ["--kafka-config", kv]
        return cmd + self.extra_args

    def start(self, timeout: float = 60.0) -> "RoleServer":
        if "api" in self.roles.split(","):
            return super().start(timeout)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._write_log("e2e", f"=== start #{self.starts}: {' '.join(self.command())}")
        self.proc = subprocess.Popen(self.command(), env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=str(self.data_dir.parent))
        ready: dict = {}
        evt = threading.Event()

        def pump_out():
            for raw in iter(self.proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace")
                self._write_log("out", line)
                if line.startswith("attune: ready roles="):
                    ready["ok"] = True
                    evt.set()
            evt.set()

        t_out = threading.Thread(target=pump_out, daemon=True)
        t_err = threading.Thread(target=self._pump, args=(self.proc.stderr, "err", None, None), daemon=True)
        t_out.start()
        t_err.start()
        self._threads = [t_out, t_err]
        assert evt.wait(timeout), f"{self.roles} not ready in {timeout}s\n{self.log_tail()}"
        assert ready.get("ok"), f"{self.roles} exited before ready\n{self.log_tail()}"
        return self


class Cluster:
    """A mock broker and one process per role: api, rules, executor, worker-a, worker-b."""

    def __init__(self, base: Path, mock_args: tuple = ()):
        self.base = base
        self.broker = MockBroker(base / "mock_kafka.log", args=mock_args)
        self.jwt = random_password(48)
        self.password = random_password()
        self.procs: dict[str, RoleServer] = {}
        self._serial = 0

    def role(self, name: str, roles: str, node_id: Optional[int]) -> RoleServer:
        self._serial += 1
        # Workers tell actions, sensor processes their sensors, where the API is (ATTUNE_API_URL,
        # README "Running distributed").
        api = self.procs.get("api")
        calls_api = {"worker", "sensor"} & set(roles.split(","))
        extra = ["--api-url", api.api_url] if calls_api and api and api.api_url else []
        srv = RoleServer(attune_bin(), self.base / f"{name}-{self._serial}", self.broker.bootstrap,
                         roles, node_id, self.jwt, self.password, extra_args=extra)
        self.procs[name] = srv
        return srv

    def start(self) -> "Cluster":
        self.broker.start()
        # API first: it bootstraps the core pack and the admin.
        self.role("api", "api", 1).start()
        self.start_all([self.role("rules", "rules", 2), self.role("executor", "executor", 3),
                        self.role("worker-a", "worker", 4), self.role("worker-b", "worker", 5)])
        return self

    @staticmethod
    def start_all(starters: list) -> None:
        """Starts role processes at once (joining consumer groups takes seconds each)."""
        threads = [threading.Thread(target=s.start) for s in starters]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in starters:
            assert s.running(), s.log_tail()

    def stop(self) -> None:
        for srv in self.procs.values():
            if srv.running():
                srv.stop(grace=10)
        self.broker.stop()
