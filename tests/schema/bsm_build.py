"""Hand-built illumos (version 2) BSM records for the schema tests, from the layouts in bsm.md section 4.

No public illumos trail exists (bsm.md 10.4), so the zone, login and socket cases are assembled here;
every expected value in the tests is written down from the inputs below, not from the decoder.
"""

from __future__ import annotations

import socket
import struct

from tests.bsm_builders import (
    arg32,
    attr32,
    cstr_list,
    header32,
    path,
    record,
    return32,
    str16,
    subject,
    text,
    zonename,
)


def subject32(auid: int, euid: int, egid: int, ruid: int, rgid: int, pid: int, sid: int, port: int, host: str) -> bytes:
    return subject(auid, euid, egid, ruid, rgid, pid, sid, port, host)


def process32(auid: int, euid: int, egid: int, ruid: int, rgid: int, pid: int, sid: int) -> bytes:
    return subject(auid, euid, egid, ruid, rgid, pid, sid, 0, "0.0.0.0", kind="process")


def exec_args(*args: str) -> bytes:
    return cstr_list(0x3C, list(args))


def priv(set_type: str, privs: str) -> bytes:
    return b"\x38" + str16(set_type) + str16(privs)


def use_of_privilege(success: bool, privs: str) -> bytes:
    return struct.pack(">BB", 0x39, 1 if success else 0) + str16(privs)


def socket_ex_ipv4(domain: int, stype: int, lport: int, laddr: str, fport: int, faddr: str) -> bytes:
    """illumos x86 kernel form: ports little-endian (adr_short), addresses in network order (bsm.md 6.2)."""
    return (
        struct.pack(">BHHH", 0x7F, domain, stype, 4)
        + struct.pack("<H", lport)
        + socket.inet_aton(laddr)
        + struct.pack("<H", fport)
        + socket.inet_aton(faddr)
    )


# ----------------------------------------------------------------------------- the test records

T_SEC = 1_700_000_000  # 2023-11-14T22:13:20Z
SSH_PORT = 0x0BF11600  # rport 61707, lport 22 (bsm.md 6.1 test vector)

EXECVE_ZONE = record(
    header32(23, T_SEC, 123_456_789),
    path("/usr/bin/curl"),
    attr32(0o100755, 0, 2, 0x10001, 5_000_000_123, 0),
    subject32(1001, 1001, 10, 1001, 10, 4242, 77, SSH_PORT, "198.51.100.23"),
    exec_args("curl", "-s", "https://example.com/"),
    return32(0, 0),
    zonename("webzone"),
)

EXECVE_DENIED = record(
    header32(23, T_SEC + 1, 5),
    path("/usr/bin/curl"),
    subject32(1002, 1002, 10, 1002, 10, 4300, 80, 0, "0.0.0.0"),
    exec_args("curl", "http://203.0.113.1/"),
    return32(13, -1),
    zonename("global"),
)

SSH_LOGIN = record(
    header32(6172, T_SEC + 2, 0),
    subject32(1001, 1001, 10, 1001, 10, 5150, 5150, SSH_PORT, "198.51.100.23"),
    text("successful login alice"),
    return32(0, 0),
    zonename("webzone"),
)

SU_FAILED = record(
    header32(6159, T_SEC + 3, 0),
    subject32(1001, 1001, 10, 1001, 10, 5200, 5150, SSH_PORT, "198.51.100.23"),
    text("root"),
    return32(0xFF, 1003),
    zonename("global"),
)

CONNECT = record(
    header32(32, T_SEC + 4, 0),
    arg32(1, 3, "fd"),
    socket_ex_ipv4(2, 2, 40000, "10.0.0.5", 443, "203.0.113.9"),
    subject32(1001, 1001, 10, 1001, 10, 4242, 77, SSH_PORT, "198.51.100.23"),
    return32(0, 0),
    zonename("webzone"),
)

ACCEPT = record(
    header32(33, T_SEC + 5, 0),
    socket_ex_ipv4(2, 2, 22, "10.0.0.5", 61707, "198.51.100.23"),
    subject32(0xFFFFFFFE, 0, 0, 0, 0, 700, 0, 0, "0.0.0.0"),
    return32(0, 5),
    zonename("global"),
)

RENAME = record(
    header32(42, T_SEC + 6, 0),
    path("/etc/passwd.new"),
    attr32(0o100644, 0, 3, 0x10001, 42, 0),
    path("/etc/passwd"),
    attr32(0o100644, 0, 3, 0x10001, 41, 0),
    subject32(1001, 0, 0, 1001, 10, 6000, 77, SSH_PORT, "198.51.100.23"),
    return32(0, 0),
    zonename("global"),
)

PFEXEC = record(
    header32(116, T_SEC + 7, 0),
    path("/usr/sbin/zfs"),
    subject32(1001, 0, 0, 1001, 10, 6100, 77, SSH_PORT, "198.51.100.23"),
    exec_args("zfs", "list"),
    priv("Inherit", "file_dac_read,sys_mount"),
    priv("Inherit", "file_dac_read,sys_mount,sys_config"),
    use_of_privilege(True, "sys_mount"),
    text("first text"),
    text("second text"),
    return32(0, 0),
    zonename("global"),
)

AUDIT_POLICY = record(
    header32(142, T_SEC + 8, 0),
    arg32(1, 0x20, "policy"),
    subject32(0, 0, 0, 0, 0, 800, 1, 0, "0.0.0.0"),
    return32(0, 0),
    zonename("global"),
)

KILL = record(
    header32(15, T_SEC + 9, 0),
    arg32(2, 9, "signal"),
    process32(1001, 1001, 10, 1001, 10, 9999, 77),
    subject32(0, 0, 0, 0, 0, 810, 1, 0, "0.0.0.0"),
    return32(0, 0),
    zonename("global"),
)

ALL = {
    "execve_zone": EXECVE_ZONE,
    "execve_denied": EXECVE_DENIED,
    "ssh_login": SSH_LOGIN,
    "su_failed": SU_FAILED,
    "connect": CONNECT,
    "accept": ACCEPT,
    "rename": RENAME,
    "pfexec": PFEXEC,
    "audit_policy": AUDIT_POLICY,
    "kill": KILL,
}
