"""TLS to the engine with real certificates made by openssl: CA file, client certificate, verify_certs."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from auditrecv.config import Search
from auditrecv.sink import BulkBatch, BulkIndexer, Result, RetryPolicy
from tests.sink.fake_engine import FakeEngine


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=auditrecv test CA", cwd=d)  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=auditrecv-{name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


def server_context(pki: Path, require_client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    if require_client_cert:
        ctx.load_verify_locations(pki / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


DOCS = [("tls-1", "a", {"n": 1}, 1)]


async def test_ca_file_and_client_certificate(pki: Path) -> None:
    fake = await FakeEngine().start(server_context(pki, require_client_cert=True))
    try:
        settings = Search(urls=[fake.url], ca_file=str(pki / "ca.pem"),
                          client_cert=str(pki / "client.pem"), client_key=str(pki / "client.key"))  # fmt: skip
        async with BulkIndexer(settings) as idx:
            outcomes = await idx.index(BulkBatch.of(DOCS))
        assert outcomes.results() == [Result.CREATED]
        subject = dict(x[0] for x in fake.requests[0].peercert["subject"])
        assert subject["commonName"] == "auditrecv-client"
    finally:
        await fake.stop()


async def test_untrusted_certificate_is_refused_unless_verify_certs_is_off(pki: Path) -> None:
    fake = await FakeEngine().start(server_context(pki, require_client_cert=False))
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)
        if len(delays) >= 2:
            raise RuntimeError("gave up")  # stop the retry loop: two refusals are enough

    try:
        async with BulkIndexer(Search(urls=[fake.url]), sleep=sleep, policy=RetryPolicy()) as idx:
            with pytest.raises(ExceptionGroup) as exc:
                await idx.index(BulkBatch.of(DOCS))
            assert exc.group_contains(RuntimeError, match="gave up")
        assert fake.requests == []  # the handshake failed: not one byte of data reached the server
        assert idx.metrics.errors_by_status == {"connection": 2}
        assert "certificate verify failed" in idx.metrics.last_error.lower()
        async with BulkIndexer(Search(urls=[fake.url], verify_certs=False)) as idx:
            outcomes = await idx.index(BulkBatch.of(DOCS))
        assert outcomes.results() == [Result.CREATED]
    finally:
        await fake.stop()
