"""A throw-away MIT Kerberos realm ``AUDIT.TEST`` for tests (k5test), with keytab and ccache helpers.

Why real: GSS-API behaviour (channel bindings, flags, name canonicalization) is exactly what the receivers
must get right, and only MIT's libraries show it. One realm serves the whole test session; principals are
created lazily and cached, so tests can ask for any principal they need.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

REALM = "AUDIT.TEST"
ILLUMOS_SERVICE = "audit/localhost"  # illumos audit_remote targets audit@<host>
LINUX_SERVICE = "auditd/localhost"  # audisp-remote targets auditd@<remote_server>
ILLUMOS_CLIENT = "host/client.example"
KDC_PACKAGES = "krb5-kdc krb5-admin-server krb5-user libkrb5-dev"


class KdcError(RuntimeError):
    """The realm could not be created or a kadmin/kinit step failed."""


def linux_client_principal() -> str:
    """What audisp-remote authenticates as: ``auditd/<gethostname()>`` (linux.md §3.13)."""
    return f"auditd/{socket.gethostname()}"


def _ports_free(base: int, count: int = 10) -> bool:
    for port in range(base, base + count):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("0.0.0.0", port))
                except OSError:
                    return False
    return True


def _free_portbase() -> int:
    """A random portbase whose ten ports (k5test uses base..base+9) are all free right now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000, 10)
        if _ports_free(base):
            return base
    raise KdcError("no free k5test portbase found in 20000..60000")


class TestKdc:
    """A running KDC plus keytabs/ccaches on demand.

    Principals may be given with or without ``@AUDIT.TEST``. Keytabs are written 0400 (audisp-remote and
    auditd refuse anything else); ccaches are ``FILE:`` caches holding a TGT obtained from the keytab.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, workdir: Path, realm_name: str = REALM) -> None:
        for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "krb5-config"):
            if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
                raise KdcError(f"'{tool}' not found: apt-get install -y {KDC_PACKAGES}")
        import k5test  # imported late so a missing tool is reported first

        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.realm_name = realm_name
        last_error: Exception | None = None
        for _ in range(3):  # another process may grab a port between the check and krb5kdc's bind
            try:
                self._realm: Any = k5test.K5Realm(
                    realm=realm_name,
                    portbase=_free_portbase(),
                    krb5_conf={
                        "libdefaults": {
                            "rdns": "false",
                            "dns_canonicalize_hostname": "false",
                            "dns_lookup_realm": "false",
                            "dns_lookup_kdc": "false",
                            "udp_preference_limit": "1",
                        }
                    },
                    create_host=False,
                    get_creds=True,
                )
                break
            except Exception as err:  # k5test raises bare Exception
                last_error = err
        else:
            raise KdcError(f"could not start the test KDC: {last_error!r}")
        self._keytabs: dict[str, Path] = {}
        self._ccaches: dict[str, str] = {}
        rcache = self.workdir / "rcache"
        rcache.mkdir(exist_ok=True)
        self.env: dict[str, str] = {**self._realm.env, "KRB5RCACHEDIR": str(rcache)}
        self.krb5_conf = Path(self.env["KRB5_CONFIG"])
        self.kdc_log = Path(self._realm.tmpdir) / "kdc.log"
        self._principals: set[str] = {self.qualify("user"), self.qualify("user/admin")}

    # -- names ----------------------------------------------------------------------------------------------

    def qualify(self, principal: str) -> str:
        """``svc/host`` → ``svc/host@AUDIT.TEST`` (already-qualified names pass through)."""
        return principal if "@" in principal else f"{principal}@{self.realm_name}"

    @staticmethod
    def _file_stem(principal: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", principal)

    # -- principals, keytabs, ccaches -------------------------------------------------------------------------

    def add_principal(self, principal: str) -> str:
        """Create ``principal`` with a random key if it does not exist yet; return its full name."""
        full = self.qualify(principal)
        if full not in self._principals:
            try:
                self._realm.addprinc(full)
            except Exception as err:
                raise KdcError(f"addprinc {full}: {err}") from err
            self._principals.add(full)
        return full

    def keytab_for(self, principal: str) -> Path:
        """A keytab (mode 0400) holding ``principal``'s current keys, created on first use."""
        full = self.add_principal(principal)
        if full not in self._keytabs:
            path = self.workdir / "keytabs" / f"{self._file_stem(full)}.keytab"
            path.parent.mkdir(exist_ok=True)
            try:
                self._realm.extract_keytab(full, str(path))
            except Exception as err:
                raise KdcError(f"ktadd {full}: {err}") from err
            path.chmod(0o400)
            self._keytabs[full] = path
        return self._keytabs[full]

    def service_keytab(self, principal: str = ILLUMOS_SERVICE) -> Path:
        """The acceptor keytab for a service principal (same as :meth:`keytab_for`; named for intent)."""
        return self.keytab_for(principal)

    def client_ccache(self, principal: str = ILLUMOS_CLIENT) -> str:
        """``FILE:<path>`` of a credential cache holding a fresh TGT for ``principal`` (kinit from its keytab)."""
        full = self.qualify(principal)
        if full not in self._ccaches:
            keytab = self.keytab_for(full)
            path = self.workdir / "ccaches" / f"{self._file_stem(full)}.ccache"
            path.parent.mkdir(exist_ok=True)
            ccache = f"FILE:{path}"
            proc = subprocess.run(
                ["kinit", "-k", "-t", str(keytab), "-c", ccache, full],
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=30,
            )
            if proc.returncode != 0:
                raise KdcError(f"kinit {full}: {proc.stdout}{proc.stderr}")
            self._ccaches[full] = ccache
        return self._ccaches[full]

    def default_ccache(self) -> str:
        """The realm's own ccache (TGT for ``user@AUDIT.TEST``), i.e. ``KRB5CCNAME`` of :attr:`env`."""
        return f"FILE:{self.env['KRB5CCNAME']}"

    def stop(self) -> None:
        """Stop krb5kdc (only k5test's own child) and remove the realm's temp dir."""
        self._realm.stop()
