"""The chaos suite's bookkeeping: marked records, senders that behave like the real forwarders, the real
receiver as a process, and the count of what the engine holds.

Every record sent carries a unique marker (``cx<run>-<sender>-<n>``). A case passes only if every
marker sent by a good sender is in the engine, none twice, nothing unmarked is there, and the number of
documents equals the number of distinct markers: lost = 0 and duplicates = 0, counted, not inferred.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditrecv.testclient.illumos import IllumosClient, TransportReset
from tests import bsm_builders as bsm
from tests.e2e.harness import ServiceProcess, _merge, service_config
from tests.infra.audisp import AudispRemote
from tests.infra.engine import EngineError, SearchEngine
from tests.infra.prometheus import Scrape, scrape

WAIT = 150.0  # bound of every wait in the suite; none is a pass/fail timing
RSS_LIMIT_KIB = 256 * 1024  # generous: an idle receiver holds ~50 MiB
EVENT_SECONDS = 1_700_000_000  # 2023-11-14 UTC: every good record's event time, so one daily index
POISON_SECONDS = EVENT_SECONDS - 10 * 86400  # a day whose index the mapping case makes refuse documents
LINUX_EVENT_TYPES = ["SYSCALL", "CWD", "PATH", "PROCTITLE"]

# audisp-remote with a retry budget that outlasts a receiver restart and a short spool outage; the
# queue holds every line a case feeds (the default 10240 would drop the overflow, a client-side loss).
AUDISP_CONF: dict[str, Any] = {
    "max_tries_per_record": 100,
    "max_time_per_record": 60,
    "network_retry_time": 1,
    "queue_depth": 20000,
}


# -- markers and records --------------------------------------------------------------------------------------


@dataclass
class Case:
    """One case's namespace in the engine and its ledger of what was sent."""

    name: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    sent: dict[str, list[str]] = field(default_factory=dict)  # sender -> markers, in order
    linux_events: set[str] = field(default_factory=set)  # markers of multi-record Linux events

    @property
    def prefix(self) -> str:
        return f"chaos-{self.name}-{self.run}"

    @property
    def pattern(self) -> str:
        return self.prefix + "-*"

    @property
    def marker_re(self) -> re.Pattern[str]:
        return re.compile(rf"cx{self.run}-[a-z0-9]+-\d{{6}}")

    def marker(self, sender: str, n: int) -> str:
        m = f"cx{self.run}-{sender}-{n:06d}"
        self.sent.setdefault(sender, []).append(m)
        return m

    def markers_of(self, *senders: str) -> set[str]:
        return {m for s in senders for m in self.sent.get(s, [])}

    def all_markers(self) -> set[str]:
        return {m for ms in self.sent.values() for m in ms}

    def search_settings(self) -> dict[str, Any]:
        return {"index": self.prefix + "-%Y.%m.%d", "dead_letter_index": self.prefix + "-dlq-%Y.%m"}


def bsm_record(marker: str, n: int, *, seconds: int = EVENT_SECONDS, pad: int = 0) -> bytes:
    """A complete illumos BSM record (header32, subject, text marker, [padding text], return, trailer)."""
    tokens = [
        bsm.subject(1000, 0, 0, 1000, 10, 4000 + n % 1000, 1, 0, "127.0.0.1"),
        bsm.text(marker),
    ]
    if pad:
        tokens.append(bsm.text("p" * pad))
    tokens.append(bsm.return32(0, 0))
    return bsm.record(bsm.header32(6152, seconds + n % 3000, 0), *tokens, trailer=True)


def bsm_records(case: Case, sender: str, count: int, **kw: Any) -> list[bytes]:
    return [bsm_record(case.marker(sender, i), i, **kw) for i in range(count)]


def linux_event(marker: str, node: str, serial: int, *, seconds: int = EVENT_SECONDS, pad: int = 0) -> list[bytes]:
    """One multi-record Linux event (SYSCALL, CWD, PATH, PROCTITLE), the marker in the SYSCALL key."""
    head = f"node={node} type=%s msg=audit({seconds + serial % 3000}.{serial % 1000:03d}:{serial}): "
    cwd = "/var/chaos/" + "d" * pad
    return [
        (
            head % "SYSCALL" + f"arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd0000 a2=0 "
            f"a3=0 items=1 ppid=1 pid={2000 + serial % 30000} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 "
            f'egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="cat" exe="/usr/bin/cat" key="{marker}"'
        ).encode(),
        (head % "CWD" + f'cwd="{cwd}"').encode(),
        (
            head % "PATH" + 'item=0 name="/etc/hosts" inode=1 dev=fd:00 mode=0100644 ouid=0 ogid=0 '
            "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0"
        ).encode(),
        (head % "PROCTITLE" + "proctitle=636174002F6574632F686F737473").encode(),
    ]


def linux_single_line(marker: str, node: str, serial: int, op: str = "session_close") -> bytes:
    """A single-record event (emitted at once): opens a host's stream, or closes its last multi-record
    event without waiting for max_age."""
    kind = "USER_START" if op == "session_open" else "USER_END"
    return (
        f"node={node} type={kind} msg=audit({EVENT_SECONDS + serial % 3000}.000:{serial}): pid=1 uid=0 "
        f'auid=0 ses=1 msg=\'op=PAM:{op} acct="{marker}" exe="/usr/sbin/sshd" hostname=? '
        "addr=? terminal=ssh res=success'"
    ).encode()


def linux_lines(
    case: Case, sender: str, events: int, *, poison_every: int = 0, pad: int = 0
) -> tuple[list[bytes], set[str]]:
    """One host's stream (its own node= name, serials counting up): an opening single-record event,
    `events` marked multi-record events, a closing single-record event.

    Returns the lines and the markers of the events dated on the poison day (every `poison_every`-th).
    """
    node = f"{sender}-{case.run}"
    lines = [linux_single_line(case.marker(sender, 0), node, 1000, "session_open")]
    poisoned: set[str] = set()
    for i in range(1, events + 1):
        marker = case.marker(sender, i)
        case.linux_events.add(marker)
        seconds = EVENT_SECONDS
        if poison_every and i % poison_every == 0:
            seconds = POISON_SECONDS
            poisoned.add(marker)
        lines.extend(linux_event(marker, node, 1000 + i, seconds=seconds, pad=pad))
    lines.append(linux_single_line(case.marker(sender, events + 1), node, 1001 + events))
    return lines, poisoned


# -- the receiver as a real process ---------------------------------------------------------------------------


def dummy_mech_listener() -> dict[str, Any]:
    return {"audit_remote": {"allow_dummy_mech": True, "dummy_mech_networks": ["127.0.0.0/8"]}}


def chaos_table(tmp: Path, engine_url: str, case: Case, **sections: Any) -> dict[str, Any]:
    """Both protocols on loopback, the dummy mech allowed, the case's own indices, Linux events that
    survive a restart (max_age) and close soon after a later serial (grace)."""
    table = service_config(
        tmp,
        engine_url,
        listeners=dummy_mech_listener(),
        search=case.search_settings(),
        decode={"linux": {"grace_seconds": 0.5, "max_age_seconds": 15.0}},
    )
    table["listeners"]["audisp_remote_krb5"]["enabled"] = False
    for name, values in sections.items():
        if isinstance(values, dict):
            _merge(table.setdefault(name, {}), values)
        else:
            table[name] = values
    return table


class Receiver(ServiceProcess):
    """`auditrecv serve` in its own process group (so kill -9 is real), with its peak RSS kept across
    restarts (VmHWM of every incarnation, read before it dies)."""

    def __init__(self, table: dict[str, Any], workdir: Path, name: str = "receiver") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(table, workdir)
        self.name = name
        self.peak_rss_kib = 0
        self.metrics_before_restarts: list[Scrape] = []

    @property
    def audit_remote_port(self) -> int:
        return int(self.table["listeners"]["audit_remote"]["port"])

    @property
    def audisp_remote_port(self) -> int:
        return int(self.table["listeners"]["audisp_remote"]["port"])

    @property
    def http_port(self) -> int:
        return int(self.table["http"]["port"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def note_rss(self) -> int:
        """Peak resident memory of the running process so far (kB), folded into ``peak_rss_kib``."""
        if not self.alive():
            return self.peak_rss_kib
        assert self.proc is not None
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
            m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            if m:
                self.peak_rss_kib = max(self.peak_rss_kib, int(m.group(1)))
        return self.peak_rss_kib

    def kill9(self) -> None:
        self.note_rss()
        last = self.metrics()
        if last is not None:
            self.metrics_before_restarts.append(last)
        super().kill9()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        self.note_rss()
        return super().stop(timeout)

    def metrics(self) -> Scrape | None:
        """The service's /metrics, parsed; None while it is down."""
        return scrape(self.http_port)

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except OSError:
            return 0, {}

    def metric(self, name: str, **labels: str) -> float:
        """One sample (summed over the label values not given); 0 while the service is down."""
        m = self.metrics()
        return m.value(name, **labels) if m is not None else 0.0

    def errors(self, n: int = 4) -> list[str]:
        """The last `n` distinct ERROR lines of the service log (timestamps cut), for failure messages."""
        seen: dict[str, None] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                seen[line.split(" ERROR ", 1)[1][:300]] = None
        return list(seen)[-n:]

    def total(self, name: str, **labels: str) -> float:
        """A counter summed over every incarnation (counters restart at 0 with the process)."""
        return self.metric(name, **labels) + sum(m.value(name, **labels) for m in self.metrics_before_restarts)


async def wait_until(what: str, predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.05) -> None:
    """Poll `predicate` (run in a thread: it may do blocking I/O) until true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(predicate):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for: {what}")
        await asyncio.sleep(interval)


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT, interval: float = 0.1) -> bool:
    """Whether `predicate` (run in a thread) became true before `timeout`: for checks reported as verdicts."""
    try:
        await wait_until("a verdict's condition", predicate, timeout, interval)
    except AssertionError:
        return False
    return True


async def wait_drained(*receivers: Receiver, timeout: float = WAIT) -> None:
    """Every receiver's spool is empty: each record is confirmed by the engine (indexed, found already
    there, or dead-lettered), including the Linux events that were still open."""

    def drained() -> bool:
        for r in receivers:
            m = r.metrics()
            if m is None or not m.has("auditrecv_spool_records") or m.value("auditrecv_spool_records") != 0:
                return False
        return True

    await wait_until("every spool to drain into the engine", drained, timeout, interval=0.2)


# -- senders ----------------------------------------------------------------------------------------------------


class IllumosHost:
    """One emulated illumos host: auditd's audit_remote plugin with a ``p_hosts`` list.

    The emulator (auditrecv.testclient.illumos) speaks transport.c's wire protocol to ONE receiver and
    has no host list, so the list is emulated here as audit_remote.c's ``auditd_plugin()`` does it: up to
    ``p_retries`` failed attempts on the current host, each with a longer timeout (``BOFF_TIMEOUT``,
    compounding from ``p_timeout``), then the next host in list order (and ``p_timeout`` again); after a
    whole cycle of the list without success a pause (``NOSUCCESS_DELAY``, 20 s there, scaled down here).
    The plugin stays on the host that works; the unacknowledged records move with it and are
    retransmitted there first, with their sequence numbers, as transport.c's transmission queue is.

    auditd without the ``cnt`` policy: a full window makes it wait, never drop (``dropped`` stays 0).
    ``rate`` paces new records (records/s) like a host producing them over time; 0 = as fast as acked.
    """

    def __init__(
        self,
        name: str,
        hosts: list[tuple[str, int]],
        records: list[bytes],
        *,
        qsize: int = 100,
        retries: int = 3,
        p_timeout: float = 5.0,
        nosuccess_delay: float = 0.5,
        rate: float = 0.0,
    ) -> None:
        self.name = name
        self.hosts = hosts
        self.records = records
        self.qsize = qsize
        self.retries = retries
        self.p_timeout = p_timeout
        self.nosuccess_delay = nosuccess_delay
        self.rate = rate
        self.host_index = 0
        self.client = self._client_for(0, first_seq=1)
        self.retired: list[IllumosClient] = []
        self.submitted = 0
        self.failovers: list[tuple[float, int]] = []  # (monotonic time, new host index)
        self.first_ack_on: dict[int, float] = {}
        self.acked_on: Counter[int] = Counter()
        self.last_error = ""
        self._attributed = 0
        self.done = asyncio.Event()

    def _client_for(self, index: int, first_seq: int) -> IllumosClient:
        host, port = self.hosts[index]
        return IllumosClient(host, port, mech="dummy", qsize=self.qsize, timeout=self.p_timeout, first_seq=first_seq)

    # -- bookkeeping over every client this host used ---------------------------------------------------------

    @property
    def acked(self) -> int:
        return sum(c.stats.acked for c in (*self.retired, self.client))

    @property
    def dropped(self) -> int:
        return sum(c.stats.dropped for c in (*self.retired, self.client))

    @property
    def retransmitted(self) -> int:
        return sum(c.stats.retransmitted for c in (*self.retired, self.client))

    @property
    def resets(self) -> int:
        return sum(c.stats.resets for c in (*self.retired, self.client))

    @property
    def unacked(self) -> int:
        return len(self.client.transq)

    def describe(self) -> str:
        return (
            f"{self.name}: submitted {self.submitted}/{len(self.records)}, acked {self.acked}, unacked "
            f"{self.unacked}, host {self.hosts[self.host_index]}, resets {self.resets}, retransmitted "
            f"{self.retransmitted}, last error {self.last_error!r}, reset reasons "
            f"{[r for c in (*self.retired, self.client) for r in c.stats.reset_reasons][-3:]}"
        )

    # -- the plugin ----------------------------------------------------------------------------------------

    async def _switch_to(self, index: int) -> None:
        """Move the plugin (and its unacked records) to host `index`."""
        self._note_acks()
        old = self.client
        new = self._client_for(index, first_seq=old.next_seq)
        new.transq = old.transq
        new.flush_transq = bool(new.transq)
        old.transq = []
        await old.close()
        self.retired.append(old)
        self.client = new
        if index != self.host_index:
            self.failovers.append((time.monotonic(), index))
        self.host_index = index

    async def _connect(self, deadline: float) -> None:
        """auditd_plugin()'s host loop, for as long as the plugin has no connection."""
        attempts = 0
        start_index = self.host_index
        timeout = self.p_timeout
        while not self.client.connected:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not connect anywhere: {self.describe()}")
            self.client.timeout = timeout
            try:
                await self.client.connect()
                return
            except TransportReset as exc:
                self.last_error = str(exc)
                attempts += 1
            if attempts < self.retries:
                timeout = timeout * 2 * attempts if attempts < 3 else timeout * 8  # BOFF_TIMEOUT
                continue
            attempts, timeout = 0, self.p_timeout
            await self._switch_to((self.host_index + 1) % len(self.hosts))
            if self.host_index == start_index:  # every host tried: NOSUCCESS_DELAY
                await asyncio.sleep(self.nosuccess_delay)

    def _note_acks(self) -> None:
        """Attribute acks seen since the last look to the current host (only its connection acks)."""
        acked = self.acked
        if acked > self._attributed:
            self.acked_on[self.host_index] += acked - self._attributed
            self.first_ack_on.setdefault(self.host_index, time.monotonic())
            self._attributed = acked

    async def _room(self, deadline: float) -> None:
        """Wait until the window has room (auditd without `cnt`), reconnecting as the next record would."""
        while len(self.client.transq) >= self.qsize or not self.client.connected:
            if not self.client.connected:
                await self._connect(deadline)
                continue
            if time.monotonic() > deadline:
                raise AssertionError(f"window stayed full: {self.describe()}")
            await asyncio.sleep(0.002)
            self._note_acks()

    async def run(self, timeout: float = WAIT) -> None:
        """Send every record and wait until each is acknowledged (by whichever host)."""
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        try:
            for i, record in enumerate(self.records):
                if self.rate:
                    ahead = started + i / self.rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                while True:
                    await self._room(deadline)
                    self._note_acks()
                    try:
                        accepted = await self.client.send_records([record])
                    except TransportReset as exc:
                        self.last_error = str(exc)
                        continue
                    if accepted:
                        break
                self.submitted += 1
            while self.client.transq:
                if not self.client.connected:
                    await self._connect(deadline)
                    continue
                if time.monotonic() > deadline:
                    raise AssertionError(f"records never acknowledged: {self.describe()}")
                await asyncio.sleep(0.005)
                self._note_acks()
        finally:
            self._note_acks()
            self.done.set()

    async def close(self) -> None:
        await self.client.close()


class LinuxHost:
    """One Linux host: the real /sbin/audisp-remote fed with `lines` through its stdin, then EOF.

    audisp-remote exits 0 once its queue is flushed, 1 with records left: the exit code is the
    client's own word that every record was acknowledged.
    """

    def __init__(self, name: str, factory: Callable[..., AudispRemote], port: int, lines: list[bytes], **conf: Any):
        self.name = name
        self.lines = lines
        self.client = factory("127.0.0.1", port, **{**AUDISP_CONF, **conf})
        self.returncode: int | None = None
        self.startup_retries = 0

    def start(self) -> LinuxHost:
        self.client.start()
        return self

    def _feed(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):  # killed, or stdin closed meanwhile
            self.client.send_lines(self.lines[1:])
            self.client.close_stdin()

    async def _connect(self, deadline: float) -> None:
        """Feed the opening single-record line until audisp-remote says it connected.

        audisp-remote connects when input arrives; after a failed first attempt it tries again only on
        new input, so a stream fed all at once would sit in its queue. Feeding the opening line again is
        a plain retransmission (an identical single-record event: the same document).
        """
        while True:
            seen = len(self.client.syslog_lines())
            await asyncio.to_thread(self.client.send_lines, self.lines[:1])
            attempt_ends = min(deadline, time.monotonic() + 10.0)
            while time.monotonic() < attempt_ends:
                news = self.client.syslog_lines()[seen:]
                if any(m.startswith("Connected to") for m in news):
                    return
                if any("failure" in m or "failed" in m for m in news):
                    break
                await asyncio.sleep(0.02)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: audisp-remote never connected: {self.client.syslog_lines()[-5:]}")
            self.startup_retries += 1
            await asyncio.sleep(0.5)

    async def run(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        await self._connect(deadline)
        # audisp-remote reads stdin only between records: while it waits for an ack the pipe fills and the
        # write blocks, so the write is bounded too (killing audisp-remote ends it with EPIPE)
        feeding = asyncio.ensure_future(asyncio.to_thread(self._feed))
        try:
            await asyncio.wait_for(asyncio.shield(feeding), max(1.0, deadline - time.monotonic()))
            self.returncode = await asyncio.to_thread(self.client.wait, max(1.0, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired) as exc:
            tail = self.client.syslog_lines()[-5:]
            self.client.kill()
            with contextlib.suppress(BaseException):
                await feeding
            raise AssertionError(f"{self.name}: audisp-remote still busy after {timeout:g} s: {tail}") from exc
        assert self.returncode == 0, (
            f"{self.name}: audisp-remote exited {self.returncode}: {self.client.syslog_lines()[-8:]}"
        )


async def run_all(*senders: IllumosHost | LinuxHost, timeout: float = WAIT) -> None:
    """Run senders to completion; the first failure cancels the others and is raised."""
    tasks = [asyncio.create_task(s.run(timeout), name=s.name) for s in senders]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- what the engine holds ---------------------------------------------------------------------------------------


def scan_all(engine: SearchEngine, pattern: str, page: int = 1000) -> list[dict[str, Any]]:
    """Every hit (``_index``, ``_id``, ``_source``) under `pattern`, read with the scroll API."""
    engine.count(pattern)  # refreshes, and waits out a just-created index's starting shards
    _, res = engine.request(
        "POST",
        f"/{pattern}/_search?scroll=2m&ignore_unavailable=true&allow_no_indices=true",
        {"size": page, "sort": ["_doc"], "query": {"match_all": {}}},
    )
    hits: list[dict[str, Any]] = []
    scroll_id = res.get("_scroll_id")
    try:
        while res["hits"]["hits"]:
            hits.extend(res["hits"]["hits"])
            _, res = engine.request("POST", "/_search/scroll", {"scroll": "2m", "scroll_id": scroll_id})
            scroll_id = res.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(EngineError, OSError):
                engine.request("DELETE", "/_search/scroll", {"scroll_id": scroll_id}, ok=(200, 404))
    return hits


def markers_in(source: dict[str, Any], marker_re: re.Pattern[str]) -> set[str]:
    """Markers anywhere in a document: its fields, a dead letter's original text, raw bytes kept as base64."""
    found = set(marker_re.findall(json.dumps(source)))
    raw = source.get("auditrecv", {}).get("raw_base64")
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            found |= set(marker_re.findall(base64.b64decode(raw).decode("latin-1")))
    return found


@dataclass
class Holdings:
    """What the engine holds for a case, by marker."""

    docs: int
    per_marker: Counter[str]
    unmarked: list[str]  # ids of documents without any marker (other than event fragments)
    fragments: list[tuple[str, int, list[str]]]  # unmarked pieces of our Linux events: (node, serial, types)
    multi_marked: list[str]  # ids of documents with several markers
    indices: dict[str, str]  # marker -> index
    doubled_records: dict[str, list[str]]  # Linux event marker -> record types, when a record repeats
    largest_source: int  # bytes of the biggest stored document
    pieces: int  # unmarked documents of Linux events over a cap, indexed in several documents on purpose
    observers: Counter[str]  # documents per receiver (observer.name)

    def lost(self, expected: Iterable[str]) -> set[str]:
        return {m for m in expected if m not in self.per_marker}

    def duplicated(self) -> dict[str, int]:
        return {m: n for m, n in self.per_marker.items() if n > 1}


def holdings(engine: SearchEngine, case: Case) -> Holdings:
    hits = scan_all(engine, case.pattern)
    per_marker: Counter[str] = Counter()
    unmarked, multi, doubled = [], [], {}
    fragments: list[tuple[str, int, list[str]]] = []
    indices: dict[str, str] = {}
    largest = 0
    pieces = 0
    observers: Counter[str] = Counter()
    # Events over [limits]/decode.linux caps are indexed as several documents on purpose, each cut one
    # saying so (auditd.complete max_bytes/max_records): their unmarked pieces are not events cut in two.
    cut_on_purpose = {
        (a.get("node"), a.get("sequence"))
        for a in (hit["_source"].get("auditd") for hit in hits)
        if isinstance(a, dict) and a.get("complete") in ("max_bytes", "max_records")
    }
    for hit in hits:
        src = hit["_source"]
        largest = max(largest, len(json.dumps(src, separators=(",", ":"), ensure_ascii=False).encode()))  # as sent
        observer = src.get("observer", {})
        observers[observer.get("name", "?") if isinstance(observer, dict) else "?"] += 1
        found = markers_in(src, case.marker_re)
        if not found:
            auditd = src.get("auditd", {})
            if isinstance(auditd, dict) and (auditd.get("node"), auditd.get("sequence")) in cut_on_purpose:
                pieces += 1
                continue
            if isinstance(auditd, dict) and case.run in str(auditd.get("node", "")):
                fragments.append((auditd["node"], int(auditd.get("sequence", -1)), auditd.get("record_types", [])))
            else:
                unmarked.append(hit["_id"])
            continue
        if len(found) > 1:
            multi.append(hit["_id"])
        for m in found:
            per_marker[m] += 1
            indices[m] = hit["_index"]
            types = src.get("auditd", {}).get("record_types")
            if m in case.linux_events and isinstance(types, list) and len(types) != len(set(types)):
                doubled[m] = types
    return Holdings(len(hits), per_marker, unmarked, fragments, multi, indices, doubled, largest, pieces, observers)


def assert_exactly_once(held: Holdings, case: Case, good: set[str], *, extra_allowed: set[str] = frozenset()) -> None:
    """lost = 0, duplicates = 0, nothing foreign, and total documents == distinct markers."""
    lost = held.lost(good)
    dup = held.duplicated()
    foreign = set(held.per_marker) - good - set(extra_allowed)
    problems = []
    if lost:
        problems.append(f"lost {len(lost)} of {len(good)} good records, e.g. {sorted(lost)[:5]}")
    if dup:
        problems.append(f"{len(dup)} records held more than once, e.g. {dict(list(dup.items())[:5])}")
    if foreign:
        problems.append(f"{len(foreign)} documents whose marker was never sent, e.g. {sorted(foreign)[:5]}")
    if held.fragments:
        problems.append(
            f"{len(held.fragments)} extra documents holding pieces of Linux events whose marked part is "
            f"elsewhere (events cut in two), e.g. (node, serial, record types) {held.fragments[:4]}"
        )
    if held.unmarked:
        problems.append(f"{len(held.unmarked)} documents without a marker, e.g. ids {held.unmarked[:5]}")
    if held.multi_marked:
        problems.append(f"{len(held.multi_marked)} documents with several markers, e.g. ids {held.multi_marked[:5]}")
    if held.docs - held.pieces != len(held.per_marker):
        problems.append(
            f"{held.docs} documents ({held.pieces} pieces of events over a cap) for {len(held.per_marker)} distinct "
            "records"
        )
    assert not problems, f"case {case.name} ({case.prefix}): " + "; ".join(problems)


def assert_no_record_twice_in_an_event(held: Holdings) -> None:
    """Record-level duplicates: a line audisp-remote resent (its ack was lost, the line had been stored)
    must not appear twice in its event's document. Checked last in each case, after the document counts."""
    sample = dict(list(held.doubled_records.items())[:3])
    assert not held.doubled_records, (
        f"{len(held.doubled_records)} Linux event documents hold one record twice (a resend folded into the "
        f"event again), e.g. {sample}"
    )


class Verdicts:
    """Every check of a case runs and all failures are reported together, so one defect cannot hide
    another (each case exercises several guarantees at once). Use as a context manager."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except AssertionError as exc:
            self.failures.append(str(exc) or repr(exc))

    def that(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)

    def __enter__(self) -> Verdicts:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None and self.failures:
            raise AssertionError(f"{len(self.failures)} failed check(s):\n- " + "\n- ".join(self.failures))


async def settle_and_count(engine: SearchEngine, case: Case, *receivers: Receiver) -> Holdings:
    """Wait until every receiver's spool is empty, then read everything the engine holds for the case."""
    await wait_drained(*receivers)
    return await asyncio.to_thread(holdings, engine, case)


def assert_rss_bounded(*receivers: Receiver, limit_kib: int = RSS_LIMIT_KIB) -> None:
    for r in receivers:
        peak = r.note_rss()
        assert 0 < peak < limit_kib, f"{r.name}: peak RSS {peak // 1024} MiB (bound {limit_kib // 1024} MiB)"
