"""Line parser and interpretation details checked against values worked out by hand from the spec
(linux.md §6-§7) and the libauparse reference."""

from __future__ import annotations

from auditrecv.decode.linux import EventAssembler, interpret, parse_line
from auditrecv.decode.linux.interpret import decode_sockaddr, execve_args, interpret_mode, split_keys


def test_node_type_msg_and_enriched() -> None:
    line = (
        "node=web01 type=SYSCALL msg=audit(1700000002.000:4244): arch=c000003e syscall=42 auid=1000 uid=0 "
        'key="net"\x1dARCH=x86_64 SYSCALL=connect AUID="alice" UID="root"\n'
    )
    record = parse_line(line.encode())
    assert (record.node, record.type_name, record.type_num) == ("web01", "SYSCALL", 1300)
    assert (record.time_ns, record.serial) == (1700000002_000_000_000, 4244)
    assert record.fields["key"] == '"net"' and record.fields["auid"] == "1000"
    assert record.enriched == {"ARCH": "x86_64", "SYSCALL": "connect", "AUID": "alice", "UID": "root"}
    assert record.raw == line[:-1]


def test_unknown_type_numbers_resolve_when_known() -> None:
    assert parse_line("type=UNKNOWN[1327] msg=audit(1.002:3): proctitle=6C73").type_name == "PROCTITLE"
    record = parse_line("type=UNKNOWN[1999] msg=audit(1.002:3): x=1")
    assert (record.type_name, record.type_num) == ("UNKNOWN[1999]", 1999)


def test_user_record_inner_msg_is_flattened() -> None:
    record = parse_line(
        "type=USER_LOGIN msg=audit(1.5:7): pid=2201 uid=0 auid=1000 ses=4 msg='op=login id=1000 "
        'exe="/usr/sbin/sshd" hostname=203.0.113.9 addr=203.0.113.9 terminal=/dev/pts/1 res=success\''
    )
    assert record.fields["op"] == "login" and record.fields["res"] == "success"
    assert record.fields["exe"] == '"/usr/sbin/sshd"'
    assert "msg" not in record.fields
    asm = EventAssembler()
    (event,) = asm.add(record, "s", 0.0)
    decoded = interpret(event)
    assert decoded["outcome"] == "success"
    assert decoded["user_msg"]["addr"] == "203.0.113.9" and decoded["user_msg"]["terminal"] == "/dev/pts/1"


def test_errors_never_raise_and_keep_raw() -> None:
    for text in ["", "type=", "type=X msg=audit(abc)", "node=", "\x1d", "type=A msg=audit(1.2:3)"]:
        record = parse_line(text)
        assert record.raw == text
    assert parse_line("type=X msg=audit(abc)").error is not None
    assert parse_line(b"\xff\xfe type").fragment


def test_old_prose_without_colon_is_parsed() -> None:
    record = parse_line(
        "type=DAEMON_END msg=audit(1481078697.892:7799): auditd normal halt, sending auid=? pid=? res=success"
    )
    assert record.fields["res"] == "success" and record.fields["auid"] == "?"
    record = parse_line("type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512 res=success")
    assert record.serial == 34 and record.fields["auid"] == "0"


def test_sockaddr_families() -> None:
    inet = {"family": "inet", "address": "192.0.2.1", "port": 80}
    assert decode_sockaddr("02000050C0000201000000000000000000") == inet
    six = decode_sockaddr("0A000016000000000000000000000000000000000000000100000000")
    assert (six["family"], six["address"], six["port"]) == ("inet6", "::1", 22)
    assert decode_sockaddr("01002F746D702F7800")["path"] == "/tmp/x"
    assert decode_sockaddr("0100006162630000")["path"] == "@abc"
    assert decode_sockaddr("00020050C0000201") == inet  # big-endian sender
    assert decode_sockaddr("zz")["family"] is None


def test_execve_split_arguments_and_hex() -> None:
    records = [
        parse_line('type=EXECVE msg=audit(1.0:1): argc=3 a0="bash" a1_len=20 a1[0]="0123456789" a1[1]="ABCDEFGHIJ"'),
        parse_line("type=EXECVE msg=audit(1.0:1): a2=6120622063"),
    ]
    assert execve_args(records) == (3, ["bash", "0123456789ABCDEFGHIJ", "a b c"])
    # a hex-encoded argument cut in the middle of a multi-byte character (UTF-8 e-acute = C3 A9)
    record = parse_line("type=EXECVE msg=audit(1.0:2): argc=1 a0_len=2 a0[0]=C3 a0[1]=A9")
    assert execve_args([record]) == (1, ["é"])


def test_execve_gaps_are_bounded_by_what_was_sent_not_by_argc() -> None:
    """A missing chunk record keeps its argument's place, but a sender's argc cannot make 61 bytes
    into 200 001 arguments (memory and time for the whole pipeline)."""
    missing = parse_line('type=EXECVE msg=audit(1.0:3): argc=4 a0="a" a1="b" a3="d"')
    assert execve_args([missing]) == (4, ["a", "b", "", "d"])
    bomb = parse_line('type=EXECVE msg=audit(1.0:4): argc=999999999999 a200000="x"')
    assert execve_args([bomb]) == (999999999999, ["x"])


def test_keys_mode_and_exit() -> None:
    assert split_keys("(null)") == []
    assert split_keys('"net"') == ["net"]
    assert split_keys("65786563013634626974") == ["exec", "64bit"]
    assert interpret_mode("0100755") == "file,755"
    assert interpret_mode("042755") == "dir,sgid,755"
    line = (
        "type=SYSCALL msg=audit(1492753107.096:9004): arch=c000003e syscall=42 success=no exit=-115 a0=5 "
        "a1=7ffc12ac3ab0 a2=10 a3=4 items=0 ppid=1 pid=1648 auid=4294967295 uid=0 ses=4294967295 "
        'comm="google_ip_forwa" exe="/usr/bin/python3.5" key="net"'
    )
    asm = EventAssembler()
    asm.add_line(line, "s", 0.0)
    (event,) = asm.flush()
    decoded = interpret(event)
    assert decoded["syscall"]["name"] == "connect"
    assert (decoded["syscall"]["errno"], decoded["syscall"]["success"]) == ("EINPROGRESS", False)
    assert decoded["outcome"] == "failure"
    assert decoded["user"]["ids"]["auid"] is None and decoded["session"] is None
    assert decoded["records"][0]["interpreted"]["exit"] == "EINPROGRESS(Operation now in progress)"


def test_lazy_and_eager_parsing_agree_on_every_fixture_line() -> None:
    from .helpers import CAPTURES, GO_LIBAUDIT, USERSPACE

    files = [*USERSPACE.glob("auparse/test/*.log"), *GO_LIBAUDIT.glob("**/*.log"), CAPTURES / "input-events.log"]
    checked = 0
    for path in files:
        for line in path.read_text().split("\n"):
            lazy, eager = parse_line(line), parse_line(line, lazy=False)
            assert (lazy.fields, lazy.enriched, lazy.duplicates, lazy.text) == (
                eager.fields,
                eager.enriched,
                eager.duplicates,
                eager.text,
            )
            checked += 1
    assert checked > 100


def test_hand_built_record_without_serial_becomes_error_event() -> None:
    from auditrecv.decode.linux import LinuxRecord

    record = LinuxRecord("SYSCALL", 1300, None, 1, None, {}, {}, "type=SYSCALL")
    (event,) = EventAssembler().add(record, "s", 0.0, tag=5)
    assert event.error == "record without a serial" and event.tags == [5]


def test_decode_lines_on_the_audisp_remote_input() -> None:
    from auditrecv.decode.linux import decode_lines

    from .helpers import CAPTURES

    with (CAPTURES / "input-events.log").open(encoding="utf-8") as handle:
        docs = list(decode_lines(handle, source="10.0.0.5"))
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
    asm = EventAssembler()
    asm.add_line(line, "s", 0.0)
    (event,) = asm.flush()
    assert interpret(event)["records"][0]["interpreted"]["data"] == "ls\r"


def test_invalid_utf8_is_escaped_not_kept_as_surrogates() -> None:
    import orjson

    line = b"type=USER_CMD msg=audit(1.000:4): pid=1 uid=0 msg='cmd=\"\xff\xfe\" res=success'"
    for variant in (line, line.decode("utf-8", "surrogateescape")):
        record = parse_line(variant)
        assert "\\xff\\xfe" in record.raw
        asm = EventAssembler()
        (event,) = asm.add(record, "s", 0.0)
        orjson.dumps(interpret(event))


def test_hostile_argument_numbers_neither_pad_nor_fail() -> None:
    """a99999999=... would make a naive argv 100M entries long, and int() of 4300+ digits raises:
    a sender must not be able to blow up the receiver's memory with one line."""
    from auditrecv.decode.linux import EventAssembler, interpret

    line = 'type=EXECVE msg=audit(1700000000.000:5): argc=2 a0="ls" a99999999="x" a' + "9" * 5000 + '="y"'
    assembler = EventAssembler()
    events = assembler.add_line(line, "s", 0.0) + assembler.flush()
    assert len(events) == 1
    assert interpret(events[0])["process"]["args"] == ["ls", "x"]
