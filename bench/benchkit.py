"""An overall deadline for every benchmark, so that none can hang (issue 10).

A bench runs its body through :func:`run`; the body gets a :class:`Deadline` to say what it is doing
(:meth:`Deadline.phase`) and to print each measurement as soon as it has it (:meth:`Deadline.measured`).
When the deadline passes, the bench is stopped the way Ctrl-C stops it (``asyncio.run`` cancels its
main task, so ``finally`` blocks still stop engines and clients), then prints what it had measured and
the phase it was stuck in, and exits with :data:`EXIT_DEADLINE`. Escalation, each ``grace`` seconds
apart: a second interrupt, then a hard exit that kills registered child process groups first; a watchdog
thread does the same if the main thread is stuck somewhere that never runs signal handlers.

    def main() -> None:
        args = parser.parse_args()
        sys.exit(benchkit.run("bench_x", args.deadline, lambda dl: asyncio.run(body(args, dl))))
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

EXIT_DEADLINE = 3
DEFAULT_GRACE = 30.0


class Deadline:
    """What a bench reports while it runs, and the state of its deadline."""

    def __init__(self, name: str, seconds: float, grace: float = DEFAULT_GRACE) -> None:
        if seconds <= 0:
            raise ValueError(f"--deadline must be > 0 seconds, not {seconds}")
        self.name = name
        self.seconds = seconds
        self.grace = grace
        self.started = time.monotonic()
        self.expired = False
        self.lines: list[str] = []
        self._phase = "starting"
        self._progress: Callable[[], str] | None = None
        self._process_groups: set[int] = set()
        self._alarms = 0
        self._reported = False
        self._lock = threading.Lock()
        self._finished = threading.Event()

    # ----------------------------------------------------------------- for the bench body

    def phase(self, text: str, progress: Callable[[], str] | None = None) -> None:
        """Name what runs now; ``progress`` (optional) says how far it got, asked only at the deadline."""
        self._phase = text
        self._progress = progress

    def measured(self, line: str) -> None:
        """Print one result line now, and keep it for the deadline report."""
        self.lines.append(line)
        print(line, flush=True)

    def remaining(self) -> float:
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    def kill_on_hard_exit(self, pgid: int) -> None:
        """A child process group to SIGKILL if the bench has to be torn down without its own cleanup."""
        self._process_groups.add(pgid)

    def forget_process_group(self, pgid: int) -> None:
        self._process_groups.discard(pgid)

    # ----------------------------------------------------------------- the machinery

    def report(self) -> None:
        """Once: what was measured, where it stopped, on stdout/stderr."""
        with self._lock:
            if self._reported:
                return
            self._reported = True
        progress = ""
        if self._progress is not None:
            try:
                progress = f" ({self._progress()})"
            except Exception as exc:  # a broken progress callback must not hide the report
                progress = f" (progress unavailable: {exc!r})"
        print(f"--- {self.name}: measured before the deadline ({len(self.lines)} result line(s)):", flush=True)
        for line in self.lines or ["(nothing)"]:
            print(f"    {line}", flush=True)
        print(
            f"{self.name}: DEADLINE EXCEEDED: stopped after {self.seconds:g} s while {self._phase}{progress}; "
            f"no complete result (raise --deadline or lower the workload)",
            file=sys.stderr,
            flush=True,
        )

    def kill_leftovers(self) -> None:
        """SIGKILL the registered child process groups the bench did not clean up itself."""
        for pgid in list(self._process_groups):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        self._process_groups.clear()

    def _hard_exit(self, why: str) -> None:
        self.report()
        print(f"{self.name}: {why}; exiting hard", file=sys.stderr, flush=True)
        self.kill_leftovers()
        os._exit(EXIT_DEADLINE)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        self._alarms += 1
        self.expired = True
        if self._alarms <= 2:
            # First: stop like Ctrl-C (asyncio.run cancels its main task; sync code gets KeyboardInterrupt).
            # Second: asyncio.run turns a second SIGINT into KeyboardInterrupt at once.
            signal.raise_signal(signal.SIGINT)
        else:
            self._hard_exit(f"still running {2 * self.grace:g} s after the deadline")

    def _watchdog(self) -> None:
        if not self._finished.wait(self.seconds + 3 * self.grace + 5):
            self.expired = True
            self._hard_exit("the main thread does not respond to signals")

    def start(self) -> None:
        # A shell may start background jobs with SIGINT ignored; the deadline relies on it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds, self.grace)
        threading.Thread(target=self._watchdog, name=f"{self.name}-watchdog", daemon=True).start()

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._finished.set()


def run(name: str, seconds: float, body: Callable[[Deadline], object], *, grace: float = DEFAULT_GRACE) -> int:
    """Run ``body`` under a deadline; returns the exit code (0, or :data:`EXIT_DEADLINE`)."""
    deadline = Deadline(name, seconds, grace)
    deadline.start()
    try:
        body(deadline)
    except (KeyboardInterrupt, SystemExit) as exc:
        deadline.stop()
        if not deadline.expired:
            raise
        if isinstance(exc, SystemExit) and exc.code not in (None, 0):
            print(f"{name}: exit {exc.code} after the deadline", file=sys.stderr)
        deadline.report()
        deadline.kill_leftovers()
        return EXIT_DEADLINE
    except BaseException:
        deadline.stop()
        if deadline.expired:  # cancellation surfacing as another error: still a deadline stop
            import traceback

            traceback.print_exc()
            deadline.report()
            deadline.kill_leftovers()
            return EXIT_DEADLINE
        raise
    deadline.stop()
    if deadline.expired:  # the body swallowed the interrupt and returned: its results are incomplete
        deadline.report()
        deadline.kill_leftovers()
        return EXIT_DEADLINE
    return 0


def add_deadline_argument(parser: Any, default: float) -> None:
    parser.add_argument(
        "--deadline",
        type=float,
        default=default,
        help=f"overall seconds before the bench stops, reports what it measured and exits {EXIT_DEADLINE} "
        f"(default {default:g})",
    )
