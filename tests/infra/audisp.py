"""Run the real ``/sbin/audisp-remote`` (Debian 12: audit 3.0.9) against a test receiver.

Why this shape: audisp-remote reads its configuration only from the compiled-in path
``/etc/audit/audisp-remote.conf`` (and, for krb5, its keytab from ``/etc/audit/audisp-remote.key``) and logs
only through syslog(3) to ``/dev/log``. To keep the host untouched, each instance runs in a private mount
namespace (``unshare -m``; tests run as root) where a per-test directory is bind-mounted over ``/etc/audit``
and a per-test Unix datagram socket over ``/dev/log``. Nothing outside the namespace changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

AUDISP_REMOTE = "/sbin/audisp-remote"
AUDISP_PACKAGES = "audispd-plugins auditd util-linux"

# linux.md §4.3: the verified test configuration. ``*_action = syslog`` makes failures visible in syslog
# instead of suspending or stopping the client; tests override keys as needed.
DEFAULT_CONF: dict[str, str] = {
    "transport": "tcp",
    "mode": "immediate",
    "queue_depth": "10240",
    "format": "managed",
    "network_retry_time": "1",
    "max_tries_per_record": "3",
    "max_time_per_record": "5",
    "heartbeat_timeout": "0",
    "network_failure_action": "syslog",
    "disk_low_action": "syslog",
    "disk_full_action": "syslog",
    "disk_error_action": "syslog",
    "remote_ending_action": "reconnect",
    "generic_error_action": "syslog",
    "generic_warning_action": "syslog",
    "queue_error_action": "stop",
    "overflow_action": "syslog",
    "startup_failure_action": "warn_once_continue",
}

# Inside the namespace: $1 = private /etc/audit, $2 = syslog socket, $3/$4 = overlay upper/work dirs,
# remaining args = the command. When the host has no /dev/log to bind over, an overlay on /dev (private to
# the namespace, device nodes still usable) provides one without creating anything on the host.
_NAMESPACE_SCRIPT = r"""
set -e
mount --bind "$1" /etc/audit
if [ ! -e /dev/log ] && [ ! -L /dev/log ]; then
  mount -t overlay overlay -o "lowerdir=/dev,upperdir=$3,workdir=$4" /dev
  : > /dev/log
fi
mount --bind "$2" /dev/log
shift 4
exec "$@"
"""

_SYSLOG_PREFIX = re.compile(
    r"^<\d+>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?(?P<tag>[^:\[]+)(?:\[\d+\])?: ?(?P<msg>.*)$", re.S
)


class SyslogCatcher:
    """A Unix datagram socket standing in for ``/dev/log``; a daemon thread drains it.

    Draining continuously matters: ``net.unix.max_dgram_qlen`` is small (often 10), and a full queue would
    block audisp-remote inside syslog().
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        os.chmod(path, 0o666)
        self._sock.settimeout(0.2)
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"syslog-catcher:{path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._lines.append(data.decode("utf-8", "replace").rstrip("\n\0"))
                self._cond.notify_all()

    def raw_lines(self) -> list[str]:
        """Datagrams as received (``<pri>timestamp tag[pid]: message``)."""
        with self._cond:
            return list(self._lines)

    def messages(self) -> list[str]:
        """Just the message text of each datagram."""
        with self._cond:
            return self._messages_locked()

    def _messages_locked(self) -> list[str]:
        out = []
        for raw in self._lines:
            m = _SYSLOG_PREFIX.match(raw)
            out.append(m.group("msg") if m else raw)
        return out

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        """Block until a message matches the regex ``pattern``; return it, or raise TimeoutError with the log."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._messages_locked():
                    if regex.search(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no syslog message matching {pattern!r}; got: {self._messages_locked()}")
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._sock.close()
        if self.path.exists():
            self.path.unlink()


def check_tools() -> None:
    """Fail (never skip) with the Debian packages to install when a needed program is missing."""
    if not Path(AUDISP_REMOTE).exists():
        raise RuntimeError(f"{AUDISP_REMOTE} not found: apt-get install -y {AUDISP_PACKAGES}")
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"'{tool}' not found: apt-get install -y util-linux mount")
    if os.geteuid() != 0:
        raise RuntimeError("running audisp-remote in a private mount namespace needs root")


class AudispRemote:
    """One real audisp-remote process fed through its stdin, with its own config and syslog.

    ``conf`` are audisp-remote.conf keys layered over :data:`DEFAULT_CONF` (values are str()'d). For
    ``transport="krb5"`` pass ``keytab`` (installed as ``/etc/audit/audisp-remote.key``, 0400 root) and
    ``env`` with the realm's ``KRB5_CONFIG``; ``krb5_principal`` defaults to ``auditd/localhost``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        workdir: Path,
        *,
        keytab: Path | None = None,
        env: Mapping[str, str] | None = None,
        executable: str = AUDISP_REMOTE,
        **conf: object,
    ) -> None:
        check_tools()
        self.host, self.port, self.workdir = host, port, workdir
        self.executable = executable
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf: dict[str, str] = {
            **DEFAULT_CONF,
            "remote_server": host,
            "port": str(port),
            "queue_file": str(self.workdir / "queue" / "remote.log"),
            **{k: str(v) for k, v in conf.items()},
        }
        self.krb5 = self.conf.get("transport", "tcp").lower() == "krb5" or self.conf.get("enable_krb5") == "yes"
        if self.krb5:
            if keytab is None:
                raise ValueError("transport=krb5 needs keytab= (a keytab for auditd/<gethostname()>)")
            self.conf.setdefault("krb5_principal", "auditd/localhost")
            self.conf.setdefault("krb5_client_name", "auditd")
        self.keytab = keytab
        self.env = {**os.environ, **(env or {})}
        self.etc_dir = self.workdir / "etc-audit"
        self.output_path = self.workdir / "audisp-remote.out"
        self.syslog = SyslogCatcher(self.workdir / "dev-log.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    # -- set-up ---------------------------------------------------------------------------------------------

    def _write_files(self) -> None:
        self.etc_dir.mkdir(mode=0o750, exist_ok=True)
        (self.workdir / "queue").mkdir(exist_ok=True)
        conf_path = self.etc_dir / "audisp-remote.conf"
        conf_path.write_text("".join(f"{k} = {v}\n" for k, v in self.conf.items()))
        conf_path.chmod(0o640)  # audisp-remote refuses world-writable or non-root configs
        if self.keytab is not None:
            key_path = self.etc_dir / "audisp-remote.key"
            if key_path.exists():
                key_path.chmod(0o600)
            shutil.copyfile(self.keytab, key_path)
            key_path.chmod(0o400)  # ... and keytabs that are not 0400 root

    def start(self) -> AudispRemote:
        """Start audisp-remote. It connects lazily, when the first line arrives on stdin."""
        if self.proc is not None:
            raise RuntimeError("already started")
        self._write_files()
        overlay_upper, overlay_work = self.workdir / "dev-upper", self.workdir / "dev-work"
        overlay_upper.mkdir(exist_ok=True)
        overlay_work.mkdir(exist_ok=True)
        cmd = [
            "unshare", "-m", "--propagation", "private", "sh", "-c", _NAMESPACE_SCRIPT, "audisp-ns",
            str(self.etc_dir), str(self.syslog.path), str(overlay_upper), str(overlay_work), self.executable,
        ]  # fmt: skip
        with open(self.output_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=self.env, process_group=0
            )
        return self

    # -- feeding --------------------------------------------------------------------------------------------

    def send_lines(self, lines: Iterable[str | bytes]) -> None:
        """Write record lines (a missing trailing newline is added) and flush."""
        assert self.proc is not None and self.proc.stdin is not None, "start() first"
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            self.proc.stdin.write(data if data.endswith(b"\n") else data + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """EOF: audisp-remote flushes its queue (stdin is a pipe) and exits 0, or 1 with records left."""
        assert self.proc is not None and self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for exit and return the exit code (raises subprocess.TimeoutExpired)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def signal(self, signum: int) -> None:
        """Send a signal to audisp-remote itself (e.g. SIGHUP to reconnect, SIGUSR1 for stats)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def terminate(self) -> None:
        """SIGTERM (honoured by 3.0.9; audit ≥ 4.1 ignores it unless sent by the parent, which we are)."""
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the process group this instance started (nothing else)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    # -- observing ------------------------------------------------------------------------------------------

    def syslog_lines(self) -> list[str]:
        """Messages audisp-remote logged so far (syslog prefix stripped)."""
        return self.syslog.messages()

    def wait_for_syslog(self, pattern: str, timeout: float = 15.0) -> str:
        """Block until audisp-remote logs a message matching ``pattern`` (regex); return it."""
        return self.syslog.wait_for(pattern, timeout)

    def output(self) -> str:
        """What audisp-remote and the namespace script wrote to stdout/stderr (mount errors show here)."""
        try:
            return self.output_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def close(self) -> None:
        """Kill the process if still running and release the syslog socket."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.kill()
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    self.proc.stdin.close()
        self.syslog.close()

    def __enter__(self) -> AudispRemote:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
