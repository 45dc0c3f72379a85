"""Run the whole service, in-process or as a real process, with a config written for the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from auditrecv.app import Service
from auditrecv.config import Config, parse_config
from tests.infra.engine import EngineError, SearchEngine
from tests.paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def to_toml(table: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ""
    if scalars:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n"
    for k, v in table.items():
        if isinstance(v, dict):
            out += to_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def service_config(tmp: Path, search_url: str | None = None, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config for one test: loopback listeners on free ports, the spool under tmp."""
    table: dict[str, Any] = {
        "state_dir": str(tmp / "state"),
        "observer_name": "auditrecv-test",
        "listeners": {
            "audit_remote": {"host": "127.0.0.1", "port": free_port()},
            "audisp_remote": {"host": "127.0.0.1", "port": free_port()},
            "audisp_remote_krb5": {"host": "127.0.0.1", "port": free_port()},
        },
        "http": {"host": "127.0.0.1", "port": free_port()},
        "search": {"urls": [search_url] if search_url else [], "batch_max_age": 0.05, "number_of_replicas": 0},
        "decode": {"linux": {"grace_seconds": 0.2, "max_age_seconds": 2.0}},
    }
    for name, values in sections.items():
        _merge(table.setdefault(name, {}), values)
    return table


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def load(table: dict[str, Any]) -> Config:
    return parse_config(to_toml(table))


@contextlib.asynccontextmanager
async def running_service(table: dict[str, Any]) -> AsyncIterator[Service]:
    svc = Service(load(table))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


class ServiceProcess:
    """`python -m auditrecv serve` in its own process group, for kill -9 and signal tests."""

    def __init__(
        self,
        table: dict[str, Any],
        workdir: Path,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        """`preexec` runs in the child before exec (e.g. a prctl the service must live with)."""
        self.table = table
        self.preexec = preexec
        self.config_path = workdir / "auditrecv.toml"
        self.config_path.write_text(to_toml(table))
        self.log_path = workdir / "service.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_port: int | None = None, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditrecv", "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=self.env,
            process_group=0,
            preexec_fn=self.preexec,
        )
        port = wait_port or self.table["http"]["port"]  # the HTTP endpoint starts last
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"auditrecv exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"auditrecv did not listen on {port}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


async def wait_count(engine: SearchEngine, pattern: str, expected: int, timeout: float = 60.0) -> int:
    """Poll until the engine holds `expected` documents or the deadline passes; returns the count,
    re-read after a pause so that a duplicate arriving late would still show."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        try:
            count = int(await asyncio.to_thread(engine.count, pattern))
        except EngineError:  # an engine that is busy starting a new index's shard: ask again
            count = -1
        if count >= expected:
            await asyncio.sleep(1.0)
            return int(await asyncio.to_thread(engine.count, pattern))
        await asyncio.sleep(0.2)
    return count
