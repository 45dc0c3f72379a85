#!/usr/bin/env python3
"""Generate the BSM decoder's lookup tables (native/tables/bsm/, embedded by native/build.rs).

Why a script: the event and class tables come from upstream files (illumos audit_event.txt /
audit_class.txt, OpenBSM etc/audit_event / etc/audit_class) that live beside the checkout as test
fixtures and must not be vendored; this turns their facts into our own TSV/JSON so the package ships
only data we wrote. The small tables (errno, signals, setppriv ops, adt/PAM failure codes) are facts
transcribed from the headers cited next to each table below.

Usage: python scripts/gen_bsm_tables.py [--fixtures DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = Path(os.environ.get("AUDITRECV_SHARED", REPO.parent / "shared")) / "fixtures" / "bsm"
DEFAULT_OUT = REPO / "native" / "tables" / "bsm"

# Event numbers the original Erlang auditrecv (audefs.erl) knows but upstream illumos does not
# (bsm.md section 8.1): presumably a local SmartOS kernel change. Classes unknown, so none.
EXTRA_ILLUMOS_EVENTS = [
    (313, "AUE_AUDITON_GETPINFO", "auditon(2) - get process audit info (original auditrecv only)", ""),
    (314, "AUE_AUDITON_SETPMASK", "auditon(2) - set process preselection mask (original auditrecv only)", ""),
    (315, "AUE_AUDITON_GETKAUDIT", "auditon(2) - get kernel audit info (original auditrecv only)", ""),
    (316, "AUE_AUDITON_SETKAUDIT", "auditon(2) - set kernel audit info (original auditrecv only)", ""),
    (317, "AUE_AUDITON_OTHER", "auditon(2) - other command (original auditrecv only)", ""),
]

# Newer illumos audit_class.txt (and audefs.erl) define this class; the stored fixture predates it.
EXTRA_ILLUMOS_CLASSES = [(0x00008000, "cy", "cryptographic")]

# illumos usr/src/uts/common/sys/errno.h (native errno carried by kernel return tokens).
ILLUMOS_ERRNO = {
    1: "EPERM",
    2: "ENOENT",
    3: "ESRCH",
    4: "EINTR",
    5: "EIO",
    6: "ENXIO",
    7: "E2BIG",
    8: "ENOEXEC",
    9: "EBADF",
    10: "ECHILD",
    11: "EAGAIN",
    12: "ENOMEM",
    13: "EACCES",
    14: "EFAULT",
    15: "ENOTBLK",
    16: "EBUSY",
    17: "EEXIST",
    18: "EXDEV",
    19: "ENODEV",
    20: "ENOTDIR",
    21: "EISDIR",
    22: "EINVAL",
    23: "ENFILE",
    24: "EMFILE",
    25: "ENOTTY",
    26: "ETXTBSY",
    27: "EFBIG",
    28: "ENOSPC",
    29: "ESPIPE",
    30: "EROFS",
    31: "EMLINK",
    32: "EPIPE",
    33: "EDOM",
    34: "ERANGE",
    35: "ENOMSG",
    36: "EIDRM",
    37: "ECHRNG",
    38: "EL2NSYNC",
    39: "EL3HLT",
    40: "EL3RST",
    41: "ELNRNG",
    42: "EUNATCH",
    43: "ENOCSI",
    44: "EL2HLT",
    45: "EDEADLK",
    46: "ENOLCK",
    47: "ECANCELED",
    48: "ENOTSUP",
    49: "EDQUOT",
    50: "EBADE",
    51: "EBADR",
    52: "EXFULL",
    53: "ENOANO",
    54: "EBADRQC",
    55: "EBADSLT",
    56: "EDEADLOCK",
    57: "EBFONT",
    58: "EOWNERDEAD",
    59: "ENOTRECOVERABLE",
    60: "ENOSTR",
    61: "ENODATA",
    62: "ETIME",
    63: "ENOSR",
    64: "ENONET",
    65: "ENOPKG",
    66: "EREMOTE",
    67: "ENOLINK",
    68: "EADV",
    69: "ESRMNT",
    70: "ECOMM",
    71: "EPROTO",
    72: "ELOCKUNMAPPED",
    73: "ENOTACTIVE",
    74: "EMULTIHOP",
    77: "EBADMSG",
    78: "ENAMETOOLONG",
    79: "EOVERFLOW",
    80: "ENOTUNIQ",
    81: "EBADFD",
    82: "EREMCHG",
    83: "ELIBACC",
    84: "ELIBBAD",
    85: "ELIBSCN",
    86: "ELIBMAX",
    87: "ELIBEXEC",
    88: "EILSEQ",
    89: "ENOSYS",
    90: "ELOOP",
    91: "ERESTART",
    92: "ESTRPIPE",
    93: "ENOTEMPTY",
    94: "EUSERS",
    95: "ENOTSOCK",
    96: "EDESTADDRREQ",
    97: "EMSGSIZE",
    98: "EPROTOTYPE",
    99: "ENOPROTOOPT",
    120: "EPROTONOSUPPORT",
    121: "ESOCKTNOSUPPORT",
    122: "EOPNOTSUPP",
    123: "EPFNOSUPPORT",
    124: "EAFNOSUPPORT",
    125: "EADDRINUSE",
    126: "EADDRNOTAVAIL",
    127: "ENETDOWN",
    128: "ENETUNREACH",
    129: "ENETRESET",
    130: "ECONNABORTED",
    131: "ECONNRESET",
    132: "ENOBUFS",
    133: "EISCONN",
    134: "ENOTCONN",
    143: "ESHUTDOWN",
    144: "ETOOMANYREFS",
    145: "ETIMEDOUT",
    146: "ECONNREFUSED",
    147: "EHOSTDOWN",
    148: "EHOSTUNREACH",
    149: "EALREADY",
    150: "EINPROGRESS",
    151: "ESTALE",
}

# OpenBSM sys/bsm/audit_errno.h: BSM errno = the Solaris numbers above plus these.
BSM_EXTRA_ERRNO = {
    190: "EPROCLIM",
    191: "EBADRPC",
    192: "ERPCMISMATCH",
    193: "EPROGUNAVAIL",
    194: "EPROGMISMATCH",
    195: "EPROCUNAVAIL",
    196: "EFTYPE",
    197: "EAUTH",
    198: "ENEEDAUTH",
    199: "ENOATTR",
    200: "EDOOFUS",
    201: "EJUSTRETURN",
    202: "ENOIOCTL",
    203: "EDIRIOCTL",
    204: "EPWROFF",
    205: "EDEVERR",
    206: "EBADEXEC",
    207: "EBADARCH",
    208: "ESHLIBVERS",
    209: "EBADMACHO",
    210: "EPOLICY",
    211: "EDOTDOT",
    212: "EUCLEAN",
    213: "ENOTNAM",
    214: "ENAVAIL",
    215: "EISNAM",
    216: "EREMOTEIO",
    217: "ENOMEDIUM",
    218: "EMEDIUMTYPE",
    219: "ENOKEY",
    220: "EKEYEXPIRED",
    221: "EKEYREVOKED",
    222: "EKEYREJECTED",
    223: "ENOTCAPABLE",
    224: "ECAPMODE",
    225: "EINTEGRITY",
    250: "UNKNOWN",
}

# illumos usr/src/uts/common/sys/iso/signal_iso.h (aliases SIGIOT/SIGCLD/SIGIO omitted); 42..73 are
# the real-time signals _SIGRTMIN.._SIGRTMAX.
ILLUMOS_SIGNALS = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGEMT",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGBUS",
    11: "SIGSEGV",
    12: "SIGSYS",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    16: "SIGUSR1",
    17: "SIGUSR2",
    18: "SIGCHLD",
    19: "SIGPWR",
    20: "SIGWINCH",
    21: "SIGURG",
    22: "SIGPOLL",
    23: "SIGSTOP",
    24: "SIGTSTP",
    25: "SIGCONT",
    26: "SIGTTIN",
    27: "SIGTTOU",
    28: "SIGVTALRM",
    29: "SIGPROF",
    30: "SIGXCPU",
    31: "SIGXFSZ",
    32: "SIGWAITING",
    33: "SIGLWP",
    34: "SIGFREEZE",
    35: "SIGTHAW",
    36: "SIGCANCEL",
    37: "SIGLOST",
    38: "SIGXRES",
    39: "SIGJVM1",
    40: "SIGJVM2",
    41: "SIGINFO",
}
ILLUMOS_SIGNALS.update({42 + i: ("SIGRTMIN" if i == 0 else f"SIGRTMIN+{i}") for i in range(32)})

# sys/priv.h: setppriv(2) op argument.
PRIV_OPS = {0: "PRIV_ON", 1: "PRIV_OFF", 2: "PRIV_SET"}

# lib/libbsm adt.xml -> adt_event.h enum adt_fail_value (retval of user-level return tokens).
ADT_FAIL_VALUES = [
    "PW_ATTR",
    "PW",
    "USERNAME",
    "AUTH",
    "UID",
    "UNKNOWN",
    "EXPIRED",
    "ACCOUNT_LOCKED",
    "BAD_DIALUP",
    "BAD_ID",
    "BAD_PW",
    "CONSOLE",
    "MAX_TRIES",
    "PROTOCOL_FAILURE",
    "EXCLUDED_USER",
    "ANON_USER",
    "BAD_CMD",
    "BAD_TTY",
    "PROGRAM",
    "CHDIR_FAILED",
    "INPUT_OVERFLOW",
    "DEVICE_PERM",
    "AUTH_BYPASS",
    "LOGIN_DISABLED",
]

# illumos security/pam_appl.h error numbers (adt retval = 2000 + n).
PAM_ERRORS = [
    "PAM_SUCCESS",
    "PAM_OPEN_ERR",
    "PAM_SYMBOL_ERR",
    "PAM_SERVICE_ERR",
    "PAM_SYSTEM_ERR",
    "PAM_BUF_ERR",
    "PAM_CONV_ERR",
    "PAM_PERM_DENIED",
    "PAM_MAXTRIES",
    "PAM_AUTH_ERR",
    "PAM_NEW_AUTHTOK_REQD",
    "PAM_CRED_INSUFFICIENT",
    "PAM_AUTHINFO_UNAVAIL",
    "PAM_USER_UNKNOWN",
    "PAM_CRED_UNAVAIL",
    "PAM_CRED_EXPIRED",
    "PAM_CRED_ERR",
    "PAM_ACCT_EXPIRED",
    "PAM_AUTHTOK_EXPIRED",
    "PAM_SESSION_ERR",
    "PAM_AUTHTOK_ERR",
    "PAM_AUTHTOK_RECOVERY_ERR",
    "PAM_AUTHTOK_LOCK_BUSY",
    "PAM_AUTHTOK_DISABLE_AGING",
    "PAM_NO_MODULE_DATA",
    "PAM_IGNORE",
    "PAM_ABORT",
    "PAM_TRY_AGAIN",
]


def read_events(path: Path) -> list[tuple[int, str, str, str]]:
    """Parse `num:AUE_NAME:description:classes` lines (the description may not contain ':')."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        num, name, classes = parts[0], parts[1], parts[-1]
        desc = ":".join(parts[2:-1])
        rows.append((int(num), name, desc, classes))
    return rows


def read_classes(path: Path) -> list[tuple[int, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        mask, name, desc = line.split(":", 2)
        rows.append((int(mask, 16), name, desc))
    return rows


def write_tsv(path: Path, header: list[str], rows: list[tuple[object, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("# generated by scripts/gen_bsm_tables.py; do not edit\n")
        out.write("\t".join(header) + "\n")
        for row in rows:
            out.write("\t".join(str(v) for v in row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    illumos_events = read_events(args.fixtures / "illumos" / "audit_event.txt")
    known = {row[0] for row in illumos_events}
    illumos_events += [row for row in EXTRA_ILLUMOS_EVENTS if row[0] not in known]
    illumos_events.sort()
    write_tsv(out / "illumos_events.tsv", ["event", "name", "description", "classes"], illumos_events)
    write_tsv(
        out / "openbsm_events.tsv",
        ["event", "name", "description", "classes"],
        sorted(read_events(args.fixtures / "openbsm" / "etc_audit_event")),
    )

    illumos_classes = read_classes(args.fixtures / "illumos" / "audit_class.txt")
    names = {row[1] for row in illumos_classes}
    illumos_classes += [row for row in EXTRA_ILLUMOS_CLASSES if row[1] not in names]
    illumos_classes.sort()
    write_tsv(
        out / "illumos_classes.tsv",
        ["mask", "name", "description"],
        [(f"0x{m:08x}", n, d) for m, n, d in illumos_classes],
    )
    write_tsv(
        out / "openbsm_classes.tsv",
        ["mask", "name", "description"],
        [(f"0x{m:08x}", n, d) for m, n, d in read_classes(args.fixtures / "openbsm" / "etc_audit_class")],
    )

    misc = {
        "_comment": "generated by scripts/gen_bsm_tables.py; sources are cited in that script",
        "illumos_errno": {str(k): v for k, v in sorted(ILLUMOS_ERRNO.items())},
        "bsm_extra_errno": {str(k): v for k, v in sorted(BSM_EXTRA_ERRNO.items())},
        "signals": {str(k): v for k, v in sorted(ILLUMOS_SIGNALS.items())},
        "priv_ops": {str(k): v for k, v in PRIV_OPS.items()},
        "adt_fail_values": {str(1000 + i): f"ADT_FAIL_VALUE_{n}" for i, n in enumerate(ADT_FAIL_VALUES)},
        "pam_errors": {str(2000 + i): n for i, n in enumerate(PAM_ERRORS)},
    }
    (out / "misc.json").write_text(json.dumps(misc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(illumos_events)} illumos events, tables in {out}")


if __name__ == "__main__":
    main()
