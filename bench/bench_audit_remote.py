"""Benchmark: illumos audit_remote receiver throughput and ack latency.

Runs the transport.c emulator (auditrecv.testclient.illumos) against
  * baseline: a trivial in-process server that acks each record at once (no spool, no policy),
  * auditrecv with an in-memory spool (protocol + server overhead),
  * auditrecv with the real durable spool (ack after group commit + fsync),
for 1 host and for N concurrent hosts, with the dummy mech and with Kerberos (a throw-away MIT
KDC from tests/infra/kdc.py). Prints records/s, ack latency p50/p99 and ratios to the baseline
measured in the same run. Client and servers share one process and event loop, so absolute
numbers are pessimistic; the ratios are the point.

    .venv/bin/python bench/bench_audit_remote.py [--records 20000] [--hosts 100] [--mech dummy,krb5] [--deadline 900]

Each row is printed as soon as it is measured; past --deadline the bench stops, says which scenario it
was in and how far it got, and exits 3.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402

from auditrecv.config import AuditRemoteListener, Gss  # noqa: E402
from auditrecv.receive import dummy_mech  # noqa: E402
from auditrecv.receive.framing import FrameDecoder, encode_frame  # noqa: E402
from auditrecv.receive.listeners import start_audit_remote_server  # noqa: E402
from auditrecv.spool import Source, Spool, SpoolRecord, SpoolState  # noqa: E402
from auditrecv.spool.record import RecordKind  # noqa: E402
from auditrecv.testclient.illumos import IllumosClient, _percentile  # noqa: E402


class MemorySpool:
    """Takes everything at once: the receiver's own cost, without a disk."""

    state: SpoolState = "ok"

    def __init__(self) -> None:
        self.count = 0

    async def append(self, records: Sequence[SpoolRecord]) -> list[int]:
        await asyncio.sleep(0)
        self.count += len(records)
        return list(range(len(records)))

    def try_append_now(self, records: Sequence[SpoolRecord], appender: object) -> list[int] | None:
        return None  # every batch goes through append, as a group commit would

    def try_append_one(
        self, kind: RecordKind, payload: bytes, source: Source, received_ns: int, appender: object
    ) -> int | None:
        return None

    async def wait_for_space(self, timeout: float | None = None) -> bool:
        return True


def make_records(n: int, size: int) -> list[bytes]:
    out = []
    for i in range(n):
        body = (b"%08d" % i) * (size // 8)
        body = body[: size - 5]
        out.append(b"\x14" + struct.pack(">I", 5 + len(body)) + body)
    return out


# --------------------------------------------------------------------------- baseline server


async def start_baseline(keytab: str | None) -> asyncio.Server:
    """Ack-only server: version, context, unwrap, MIC. No checks, no spool, no per-connection tasks."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameDecoder(1 << 22)
        state = "version"
        ctx: Any = None
        try:
            while data := await reader.read(262144):
                frames.feed(data)
                out: list[bytes] = []
                for tok in frames.frames():
                    if state == "version":
                        out.append(encode_frame(b"01"))
                        state = "context"
                    elif state == "context":
                        if tok[2:14] == bytes.fromhex("060a2b060104012a021a0102") or tok[3:15] == bytes.fromhex(
                            "060a2b060104012a021a0102"
                        ):
                            ctx = "dummy"
                        else:
                            import gssapi

                            from auditrecv.receive.gss import null_address_bindings

                            creds = gssapi.Credentials(usage="accept", store={"keytab": keytab})
                            ctx = gssapi.SecurityContext(
                                creds=creds, usage="accept", channel_bindings=null_address_bindings(b"0101")
                            )
                            reply = ctx.step(tok)
                            if reply:
                                out.append(encode_frame(reply))
                        state = "records"
                    elif ctx == "dummy":
                        plain = dummy_mech.unwrap(tok)
                        out.append(encode_frame(plain[:8] + dummy_mech.MIC_TOKEN))
                    else:
                        import gssapi.raw as gssraw

                        plain = gssraw.unwrap(ctx, tok).message
                        out.append(encode_frame(plain[:8] + gssraw.get_mic(ctx, plain)))
                if out:
                    writer.write(b"".join(out))
        except Exception as exc:
            print("baseline server error:", repr(exc), file=sys.stderr)
        except asyncio.CancelledError:
            pass  # shutdown (deadline): end quietly instead of asyncio logging a cancelled handler
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


# --------------------------------------------------------------------------- runs


def progress_of(clients: list[IllumosClient], expected: int) -> str:
    """How far a scenario got: what a stuck run needs to say (issue 10 hung silently on resets)."""
    acked = sum(c.stats.acked for c in clients)
    resets = sum(c.stats.resets for c in clients)
    reasons = [r for c in clients for r in c.stats.reset_reasons]
    last = f", last reset: {reasons[-1]}" if reasons else ""
    return f"{acked}/{expected} records acked, {resets} connection resets{last}"


async def drive(
    port: int, mech: str, hosts: int, per_host: list[bytes], ccache: str | None, dl: benchkit.Deadline, scenario: str
) -> dict[str, float]:
    clients = [
        IllumosClient("127.0.0.1", port, mech=mech, ccache=ccache, service_host="localhost") for _ in range(hosts)
    ]
    dl.phase(scenario, lambda: progress_of(clients, hosts * len(per_host)))
    for c in clients:
        await c.connect()

    async def one(c: IllumosClient) -> None:
        await c.send_records(per_host, wait_when_full=True)
        if not await c.wait_all_acked(300):
            raise RuntimeError("not all records acked")

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clients))
    elapsed = time.perf_counter() - start
    lat = [x for c in clients for x in c.stats.ack_latencies]
    for c in clients:
        await c.close()
    total = hosts * len(per_host)
    return {
        "rate": total / elapsed,
        "p50": _percentile(lat, 0.5) * 1000,
        "p99": _percentile(lat, 0.99) * 1000,
        "resets": float(sum(c.stats.resets for c in clients)),
    }


async def with_auditrecv(spool: Any, gss: Gss, fn: Callable[[int], Awaitable[dict[str, float]]]) -> dict[str, float]:
    # The dummy mech is allowed only from the networks named for it (none by default): without
    # dummy_mech_networks every dummy client was refused, reconnected and retransmitted for ever (issue 10).
    # Every emulated host connects from 127.0.0.1: no per-peer cap (real hosts have addresses of their own).
    settings = AuditRemoteListener(
        host="127.0.0.1",
        port=0,
        allow_dummy_mech=True,
        dummy_mech_networks=["127.0.0.0/8"],
        max_connections=10_000,
        max_connections_per_peer=0,
    )
    server = await start_audit_remote_server(settings, gss, spool)
    try:
        return await fn(server.port)
    finally:
        await server.close()


async def main_async(args: argparse.Namespace, dl: benchkit.Deadline) -> None:
    logging.basicConfig(level=logging.ERROR)
    kdc = None
    keytab = ccache = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-remote-"))
    mechs = args.mech.split(",")
    if "krb5" in mechs:
        import os

        from tests.infra.kdc import ILLUMOS_CLIENT, ILLUMOS_SERVICE, TestKdc

        kdc = TestKdc(tmp / "kdc")
        os.environ.update(kdc.env)
        keytab = str(kdc.service_keytab(ILLUMOS_SERVICE))
        ccache = kdc.client_ccache(ILLUMOS_CLIENT)
    gss = Gss(keytab=keytab or "")
    dl.phase("building the records")
    recs = make_records(args.records, args.size)
    print(f"records: {args.records} x {args.size} B per scenario; client qsize 100; one process, one loop")
    print(f"{'scenario':40s} {'rec/s':>9s} {'x base':>7s} {'p50 ms':>8s} {'p99 ms':>8s}", flush=True)
    try:
        for mech in mechs:
            client_mech = "dummy" if mech == "dummy" else "kerberos_v5"
            for hosts in (1, args.hosts):
                per_host = recs[: max(1, args.records // hosts)]
                rates: dict[str, float] = {}
                for label in ("baseline ack-only", "auditrecv, memory spool", "auditrecv, durable spool"):
                    name = f"{mech:5s} {hosts:3d} host(s) {label}"

                    async def run(
                        port: int,
                        hosts: int = hosts,
                        per_host: list[bytes] = per_host,
                        client_mech: str = client_mech,
                        name: str = name,
                    ) -> dict[str, float]:
                        return await drive(port, client_mech, hosts, per_host, ccache, dl, name)

                    if label.startswith("baseline"):
                        base_srv = await start_baseline(keytab)
                        try:
                            r = await run(base_srv.sockets[0].getsockname()[1])
                        finally:
                            base_srv.close()
                    elif "memory" in label:
                        r = await with_auditrecv(MemorySpool(), gss, run)
                    else:
                        spool = await Spool.open(tmp / f"spool-{mech}-{hosts}.db")
                        try:
                            r = await with_auditrecv(spool, gss, run)
                        finally:
                            await spool.close()
                    rates[label] = r["rate"]
                    base_rate = rates["baseline ack-only"]
                    resets = f"   ({r['resets']:.0f} connection resets!)" if r["resets"] else ""
                    dl.measured(
                        f"{name:40s} {r['rate']:9.0f} {r['rate'] / base_rate:7.2f} {r['p50']:8.2f} {r['p99']:8.2f}"
                        f"{resets}"
                    )
                base_rate = rates["baseline ack-only"]
                dl.measured(
                    f"ratio {mech} {hosts} host(s): durable spool / baseline "
                    f"{rates['auditrecv, durable spool'] / base_rate:.2f}x, memory spool / baseline "
                    f"{rates['auditrecv, memory spool'] / base_rate:.2f}x"
                )
    finally:
        if kdc is not None:
            kdc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20000, help="records per scenario (split across hosts)")
    ap.add_argument("--size", type=int, default=300, help="record size in bytes")
    ap.add_argument("--hosts", type=int, default=100, help="concurrent hosts for the many-host scenario")
    ap.add_argument("--mech", default="dummy,krb5", help="comma list of dummy, krb5")
    benchkit.add_deadline_argument(ap, 900)
    args = ap.parse_args()
    sys.exit(benchkit.run("bench_audit_remote", args.deadline, lambda dl: asyncio.run(main_async(args, dl))))


if __name__ == "__main__":
    main()
