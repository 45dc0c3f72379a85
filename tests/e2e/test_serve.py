"""`auditrecv serve` as a user runs it: embedded default, listening ports, clean Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from pathlib import Path

from tests.e2e.harness import ServiceProcess, service_config


def test_embedded_default_listens_spools_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    table = service_config(tmp_path)
    svc = ServiceProcess(table, tmp_path)
    svc.start()
    try:
        for name in ("audit_remote", "audisp_remote"):
            port = table["listeners"][name]["port"]
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        health = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{table['http']['port']}/health", timeout=5).read()
        )
        assert health["status"] == "ok" and health["search_engine"] is False
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{table['http']['port']}/metrics", timeout=5).read()
        assert b"# TYPE auditrecv_spool_records gauge" in metrics
    finally:
        svc.signal(signal.SIGINT)
        assert svc.proc is not None
        rc = svc.proc.wait(20)
    log = svc.log()
    assert rc == 0, log
    assert "Traceback" not in log
    assert "no search engine configured" in log and "[search] urls" in log and "auditrecv export" in log
    assert (tmp_path / "state" / "spool.db").exists()


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.e2e.harness import to_toml

    table = service_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        table["listeners"]["audisp_remote"]["port"] = busy.getsockname()[1]
        cfg = tmp_path / "busy.toml"
        cfg.write_text(to_toml(table))
        res = subprocess.run(
            [sys.executable, "-m", "auditrecv", "serve", "-c", str(cfg)], capture_output=True, text=True, timeout=60
        )
    assert res.returncode == 1
    assert "cannot start" in res.stderr and "Traceback" not in res.stderr


def test_a_second_sigterm_during_shutdown_does_not_kill_the_clean_exit(tmp_path: Path) -> None:
    """A supervisor (or a test harness) that repeats SIGTERM while the service shuts down must still
    see exit status 0: the repeat used to reach the default action once the loop's handlers were gone."""
    import time

    svc = ServiceProcess(service_config(tmp_path), tmp_path)
    svc.start()
    svc.signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while "shutting down" not in svc.log() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the log for a condition, with a deadline
    assert "shutting down" in svc.log(), svc.log()
    assert svc.proc is not None
    if svc.proc.poll() is None:
        svc.signal(signal.SIGTERM)
    assert svc.proc.wait(20) == 0, svc.log()
