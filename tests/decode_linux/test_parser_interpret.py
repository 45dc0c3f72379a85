"""Line parser and interpretation details checked against values worked out by hand from the spec
(linux.md §6-§7) and the libauparse reference, on the native decoder's output (`decode --raw` events)."""

from __future__ import annotations

from typing import Any

from tests.golden.native_core import linux_events


def event_of(*lines: str | bytes) -> dict[str, Any]:
    (event,) = linux_events(list(lines))
    return event


def record_of(line: str | bytes) -> dict[str, Any]:
    """The one record a line makes (``parse_line``): type, type_num, raw, fields, enriched, error."""
    (record,) = event_of(line)["records"]
    return record


def test_node_type_msg_and_enriched() -> None:
    line = (
        "node=web01 type=SYSCALL msg=audit(1700000002.000:4244): arch=c000003e syscall=42 auid=1000 uid=0 "
        'key="net"\x1dARCH=x86_64 SYSCALL=connect AUID="alice" UID="root"\n'
    )
    event = event_of(line.encode())
    (record,) = event["records"]
    assert (event["node"], record["type"], record["type_num"]) == ("web01", "SYSCALL", 1300)
    assert (event["time_ns"], event["serial"]) == (1700000002_000_000_000, 4244)
    assert record["fields"]["key"] == '"net"' and record["fields"]["auid"] == "1000"
    assert record["enriched"] == {"ARCH": "x86_64", "SYSCALL": "connect", "AUID": "alice", "UID": "root"}
    assert record["raw"] == line[:-1]


def test_unknown_type_numbers_resolve_when_known() -> None:
    assert record_of("type=UNKNOWN[1327] msg=audit(1.002:3): proctitle=6C73")["type"] == "PROCTITLE"
    record = record_of("type=UNKNOWN[1999] msg=audit(1.002:3): x=1")
    assert (record["type"], record["type_num"]) == ("UNKNOWN[1999]", 1999)


def test_user_record_inner_msg_is_flattened() -> None:
    decoded = event_of(
        "type=USER_LOGIN msg=audit(1.5:7): pid=2201 uid=0 auid=1000 ses=4 msg='op=login id=1000 "
        'exe="/usr/sbin/sshd" hostname=203.0.113.9 addr=203.0.113.9 terminal=/dev/pts/1 res=success\''
    )
    (record,) = decoded["records"]
    assert record["fields"]["op"] == "login" and record["fields"]["res"] == "success"
    assert record["fields"]["exe"] == '"/usr/sbin/sshd"'
    assert "msg" not in record["fields"]
    assert decoded["complete"] == "single"
    assert decoded["outcome"] == "success"
    assert decoded["user_msg"]["addr"] == "203.0.113.9" and decoded["user_msg"]["terminal"] == "/dev/pts/1"


def test_errors_never_raise_and_keep_raw() -> None:
    # a blank line is no record (parse_line alone kept "" and "\x1d", a space to str.isspace, as raw)
    assert linux_events([""]) == linux_events(["\x1d"]) == []
    for text in ["type=", "type=X msg=audit(abc)", "node=", "type=A msg=audit(1.2:3)"]:
        assert [r["raw"] for e in linux_events([text]) for r in e["records"]] == [text]
    assert record_of("type=X msg=audit(abc)")["error"] is not None
    assert record_of(b"\xff\xfe type")["error"].startswith("fragment:")


def test_old_prose_without_colon_is_parsed() -> None:
    record = record_of(
        "type=DAEMON_END msg=audit(1481078697.892:7799): auditd normal halt, sending auid=? pid=? res=success"
    )
    assert record["fields"]["res"] == "success" and record["fields"]["auid"] == "?"
    event = event_of("type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512 res=success")
    assert event["serial"] == 34 and event["records"][0]["fields"]["auid"] == "0"


def sockaddr(saddr: str) -> dict[str, Any]:
    """``decode_sockaddr``: the decoded address of a SOCKADDR record."""
    (decoded,) = event_of(f"type=SOCKADDR msg=audit(1.0:1): saddr={saddr}")["sockaddr"]
    return decoded


def test_sockaddr_families() -> None:
    inet = {"family": "inet", "address": "192.0.2.1", "port": 80}
    assert sockaddr("02000050C0000201000000000000000000") == inet
    six = sockaddr("0A000016000000000000000000000000000000000000000100000000")
    assert (six["family"], six["address"], six["port"]) == ("inet6", "::1", 22)
    assert sockaddr("01002F746D702F7800")["path"] == "/tmp/x"
    assert sockaddr("0100006162630000")["path"] == "@abc"
    assert sockaddr("00020050C0000201") == inet  # big-endian sender
    assert sockaddr("zz")["family"] is None


def execve_args(*lines: str) -> tuple[int, list[str]]:
    """``execve_args``: the argument count and arguments of an event's EXECVE records."""
    process = event_of(*lines)["process"]
    return process["argc"], process["args"]


def test_execve_split_arguments_and_hex() -> None:
    assert execve_args(
        'type=EXECVE msg=audit(1.0:1): argc=3 a0="bash" a1_len=20 a1[0]="0123456789" a1[1]="ABCDEFGHIJ"',
        "type=EXECVE msg=audit(1.0:1): a2=6120622063",
    ) == (3, ["bash", "0123456789ABCDEFGHIJ", "a b c"])
    # a hex-encoded argument cut in the middle of a multi-byte character (UTF-8 e-acute = C3 A9)
    assert execve_args("type=EXECVE msg=audit(1.0:2): argc=1 a0_len=2 a0[0]=C3 a0[1]=A9") == (1, ["é"])


def test_execve_gaps_are_bounded_by_what_was_sent_not_by_argc() -> None:
    """A missing chunk record keeps its argument's place, but a sender's argc cannot make 61 bytes
    into 200 001 arguments (memory and time for the whole pipeline)."""
    assert execve_args('type=EXECVE msg=audit(1.0:3): argc=4 a0="a" a1="b" a3="d"') == (4, ["a", "b", "", "d"])
    assert execve_args('type=EXECVE msg=audit(1.0:4): argc=999999999999 a200000="x"') == (999999999999, ["x"])


def keys(key: str) -> list[str]:
    """``split_keys``: the rule keys of a record's key= field."""
    found: list[str] = event_of(f"type=SYSCALL msg=audit(1.0:1): syscall=1 key={key}")["keys"]
    return found


def mode(value: str) -> str:
    """``interpret_mode``: a PATH record's mode= as libauparse interprets it."""
    text: str = record_of(f'type=PATH msg=audit(1.0:1): item=0 name="/x" mode={value}')["interpreted"]["mode"]
    return text


def test_keys_mode_and_exit() -> None:
    assert keys("(null)") == []
    assert keys('"net"') == ["net"]
    assert keys("65786563013634626974") == ["exec", "64bit"]
    assert mode("0100755") == "file,755"
    assert mode("042755") == "dir,sgid,755"
    line = (
        "type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 a0=5 "
        "a1=7ffc12ac3ab0 a2=10 a3=4 items=0 ppid=1 pid=1648 auid=4294967295 uid=0 ses=4294967295 "
        'comm="google_ip_forwa" exe="/usr/bin/python3.5" key="net"'
    )
    decoded = event_of(line)
    assert decoded["syscall"]["name"] == "connect"
    assert (decoded["syscall"]["errno"], decoded["syscall"]["success"]) == ("EINPROGRESS", False)
    assert decoded["outcome"] == "failure"
    assert decoded["user"]["ids"]["auid"] is None and decoded["session"] is None
    assert decoded["records"][0]["interpreted"]["exit"] == "EINPROGRESS(Operation now in progress)"


def test_every_fixture_line_decodes() -> None:
    """(The Python parser had a lazy and an eager path, checked to agree here; the native one has one.)
    Every line of the reference logs decodes, into records that keep their text."""
    from .helpers import CAPTURES, GO_LIBAUDIT, USERSPACE

    files = [*USERSPACE.glob("auparse/test/*.log"), *GO_LIBAUDIT.glob("**/*.log"), CAPTURES / "input-events.log"]
    checked = 0
    for path in files:
        lines = [line for line in path.read_text().split("\n") if line.strip()]
        events = linux_events(lines)
        raws = [r["raw"] for e in events for r in e["records"]]
        assert all(any(raw.startswith(line) for raw in raws) for line in lines if "type=EOE" not in line), path
        checked += len(lines)
    assert checked > 100


def test_decode_lines_on_the_audisp_remote_input() -> None:
    from .helpers import CAPTURES

    docs = linux_events((CAPTURES / "input-events.log").read_bytes(), source="10.0.0.5")
    assert [(d["id"], d["node"], d["complete"]) for d in docs] == [
        ("1700000000.123:4242", None, "eoe"),
        ("1700000001.500:4243", "web01", "single"),  # its EOE line is folded away (orphan_eoe)
        ("1700000002.000:4244", "web01", "flush"),
        ("1700000003.000:4245", None, "flush"),
    ]
    login, connect, split = docs[1], docs[2], docs[3]
    assert login["user_msg"]["hostname"] == "203.0.113.9" and login["outcome"] == "success"
    assert connect["syscall"]["name"] == "connect" and connect["sockaddr"][0]["address"] == "192.0.2.1"
    assert connect["user"]["names"]["uid"] == "root" and connect["user"]["ids"]["auid"] is None
    assert connect["process"]["title"] == "curl http://192.0.2.1/"
    assert split["process"]["args"] == ["bash", "0123456789ABCDEFGHIJ"]
    assert all(d["source"] == "10.0.0.5" for d in docs)


def test_tty_data_is_decoded() -> None:
    line = 'type=TTY msg=audit(1.000:9): tty pid=1 uid=0 auid=0 ses=1 major=136 minor=0 comm="bash" data=6C730D'
    assert event_of(line)["records"][0]["interpreted"]["data"] == "ls\r"


def test_invalid_utf8_is_escaped_not_kept_as_surrogates() -> None:
    line = b"type=USER_CMD msg=audit(1.000:4): pid=1 uid=0 msg='cmd=\"\xff\xfe\" res=success'"
    for variant in (line, line.decode("utf-8", "surrogateescape")):
        assert "\\xff\\xfe" in record_of(variant)["raw"]  # and the event is JSON (orjson wrote it)


def test_hostile_argument_numbers_neither_pad_nor_fail() -> None:
    """a99999999=... would make a naive argv 100M entries long, and int() of 4300+ digits raises:
    a sender must not be able to blow up the receiver's memory with one line."""
    line = 'type=EXECVE msg=audit(1700000000.000:5): argc=2 a0="ls" a99999999="x" a' + "9" * 5000 + '="y"'
    assert event_of(line)["process"]["args"] == ["ls", "x"]
