"""The AGI wire protocol without Asterisk: replies, quoting, errors and every kind of hang-up."""

from __future__ import annotations

import socket
import threading

import pytest
from fake_asterisk import FakeAsterisk, _args

from telephony.voxagi.protocol import (
    AgiChannel,
    AgiCommandError,
    AgiHangup,
    AgiReply,
    LineSource,
    format_command,
    parse_reply_line,
)


@pytest.mark.parametrize(
    "line, reply",
    [
        ("200 result=0 endpos=12345", AgiReply(0, None, 12345)),
        ("200 result=-1 endpos=0", AgiReply(-1, None, 0)),
        ("200 result=53 endpos=8000", AgiReply(53, None, 8000)),
        ("200 result=1 (http://127.0.0.1:8020)", AgiReply(1, "http://127.0.0.1:8020")),
        ("200 result=1 (a (nested) value)", AgiReply(1, "a (nested) value")),
        ("200 result=1 ()", AgiReply(1, "")),
        ("200 result=0", AgiReply(0)),
        ("200 result=1 (x) endpos=5\r", AgiReply(1, "x", 5)),
    ],
)
def test_parse_reply_line(line, reply):
    assert parse_reply_line(line) == reply


@pytest.mark.parametrize("line", ["200 result=", "200 ok", "hello", ""])
def test_unparsable_replies_raise(line):
    with pytest.raises(AgiCommandError):
        parse_reply_line(line)


def test_format_command_quotes_text_and_leaves_numbers_bare():
    line = format_command("STREAM FILE", '/tmp/a "b"\\c', "12#")
    assert line == b'STREAM FILE "/tmp/a \\"b\\"\\\\c" "12#"\n'
    assert _args(line.decode()[len("STREAM FILE ") :].rstrip("\n")) == ['/tmp/a "b"\\c', "12#"]
    assert format_command("VERBOSE", "hi", 3) == b'VERBOSE "hi" 3\n'
    assert format_command("STREAM FILE", "x", "") == b'STREAM FILE "x" ""\n'
    with pytest.raises(ValueError):
        format_command("VERBOSE", "two\nlines")


def replying(*lines: str):
    """A responder that answers every command with the same lines."""
    return lambda command: list(lines)


def test_environment_and_arguments_are_read():
    fake = FakeAsterisk({"agi_arg_1": "Hello, world", "agi_arg_2": "", "agi_arg_3": "de"})
    try:
        channel = fake.channel()
        assert channel.env["agi_channel"] == "Local/test-1;2"
        assert channel.args == ["Hello, world", "", "de"]
    finally:
        fake.close()


def test_510_and_multiline_520_raise_command_errors():
    fake = FakeAsterisk(
        respond=lambda c: (
            ["510 Invalid or unknown command"]
            if c.startswith("BOGUS")
            else [
                "520-Invalid command syntax.  Proper usage follows:",
                "Usage: STREAM FILE <filename> <escape_digits> [sample offset]",
                "520 End of proper usage.",
            ]
        )
    )
    try:
        channel = fake.channel()
        with pytest.raises(AgiCommandError) as unknown:
            channel.command("BOGUS")
        assert unknown.value.code == 510
        with pytest.raises(AgiCommandError) as usage:
            channel.command("STREAM FILE")
        assert usage.value.code == 520
        assert "Usage: STREAM FILE" in usage.value.message
        # The channel is still usable after errors: the reply stream stayed in step.
        fake.respond = replying("200 result=0 endpos=7")
        assert channel.stream_file("x").endpos == 7
    finally:
        fake.close()


@pytest.mark.parametrize("lines", [["511 Command Not Permitted on a dead channel"], ["HANGUP"], []])
def test_hangup_in_any_form_raises_agi_hangup(lines):
    fake = FakeAsterisk(respond=replying(*lines))
    try:
        channel = fake.channel()
        if not lines:  # EOF: Asterisk closed the connection
            fake.ours.shutdown(socket.SHUT_RDWR)
        with pytest.raises(AgiHangup):
            channel.set_variable("A", "1")
        assert channel.hung_up
        with pytest.raises(AgiHangup):
            channel.set_variable("A", "2")
    finally:
        fake.close()


def test_hangup_pending_sees_a_hangup_line_without_a_command():
    fake = FakeAsterisk()
    try:
        channel = fake.channel()
        assert not channel.hangup_pending(0.01)
        fake.ours.sendall(b"HANGUP\n")
        assert channel.hangup_pending(1.0)
    finally:
        fake.close()


def test_line_source_reassembles_split_lines():
    parts = [b"200 res", b"ult=0 end", b"pos=3\n200 result=1 (v)\n", b""]
    lock = threading.Lock()

    def read(_: int) -> bytes:
        with lock:
            return parts.pop(0)

    r, w = socket.socketpair()
    try:
        lines = LineSource(read, r.fileno())
        assert lines.readline() == "200 result=0 endpos=3"
        assert lines.readline() == "200 result=1 (v)"
        with pytest.raises(AgiHangup):
            lines.readline()
    finally:
        r.close()
        w.close()


def test_get_variable_distinguishes_unset_from_empty():
    fake = FakeAsterisk(respond=lambda c: ["200 result=1 ()"] if "EMPTY" in c else ["200 result=0"])
    try:
        channel = AgiChannel(LineSource.from_socket(fake.theirs), fake.theirs.sendall).start()
        assert channel.get_variable("UNSET") is None
        assert channel.get_variable("EMPTY") == ""
    finally:
        fake.close()


def test_fastagi_request_from_url_and_arguments():
    from telephony.fastagi import call_request
    from telephony.voxagi.config import ConfigError

    assert call_request("say?voice=joe&language=de", ["Hallo."]) == (
        "Hallo.",
        {"voice": "joe", "language": "de"},
    )
    assert call_request("say?text=From+the+URL", []) == ("From the URL", {})
    assert call_request("", ["Hi.", "ann"]) == ("Hi.", {"voice": "ann"})
    with pytest.raises(ConfigError):
        call_request("shout", ["Hi."])
    with pytest.raises(ConfigError):
        call_request("say?volume=11", ["Hi."])
