"""tern-imapd BINARY (RFC 3516): FETCH BINARY[] of a base64 attachment gives the original
bytes, BINARY.SIZE its length, a quoted-printable part decoded, an unknown transfer
encoding refused with [UNKNOWN-CTE], BINARY.PEEK leaves \\Seen alone, and APPEND takes a
literal8 — through imaplib and a raw socket where imaplib cannot."""

import base64
import imaplib
import os
import socket
import time

import pytest

from ternstack import Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

ATTACHMENT = bytes(range(256)) * 40 + b"\x00\r\n\x00end"


def message():
    b64 = base64.encodebytes(ATTACHMENT).decode()
    return ("From: a@example.test\nTo: b@example.test\nSubject: binary\n"
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n"
            "--zz\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
            "Gr=C3=BC=C3=9Fe, a long=\n line\nbye\n"
            "--zz\nContent-Type: application/octet-stream\n"
            "Content-Transfer-Encoding: base64\n\n" + b64 +
            "--zz\nContent-Type: application/octet-stream\n"
            "Content-Transfer-Encoding: x-strange\n\nwhatever\n"
            "--zz--\n")


def drop(maildir, text):
    name = "%d.M1P%d.testhost" % (time.time(), os.getpid())
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(maildir, "new", name))


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        drop(st.maildir("alice"), message())
        yield st


def login(stack):
    addr, pw = stack.users["alice"]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
    imap.login(addr, pw)
    return imap


def test_binary_fetch(stack):
    imap = login(stack)
    typ, data = imap.capability()
    assert b" BINARY" in data[0]  # advertised after login
    typ, data = imap.select("INBOX")
    assert typ == "OK" and int(data[0]) == 1
    typ, data = imap.fetch("1", "(BINARY.PEEK[2])")
    assert typ == "OK"
    assert b"BINARY[2] ~{" in data[0][0]  # it holds NULs: a literal8
    assert data[0][1] == ATTACHMENT
    typ, data = imap.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]  # PEEK
    typ, data = imap.fetch("1", "(BINARY.SIZE[2] BINARY.SIZE[1])")
    assert typ == "OK"
    assert b"BINARY.SIZE[2] %d" % len(ATTACHMENT) in data[0]
    want_qp = "Grüße, a long line\r\nbye".encode()
    assert b"BINARY.SIZE[1] %d" % len(want_qp) in data[0]
    typ, data = imap.fetch("1", "(BINARY.PEEK[2]<300.10>)")
    assert data[0][1] == ATTACHMENT[300:310]
    assert b"BINARY[2]<300> {10}" in data[0][0]
    typ, data = imap.fetch("1", "(BINARY[1])")
    assert typ == "OK" and data[0][1] == want_qp
    assert b"BINARY[1] {%d}" % len(want_qp) in data[0][0]  # no NUL: a plain literal
    typ, data = imap.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]  # a non-PEEK BINARY sets \Seen
    typ, data = imap.fetch("1", "(BINARY.PEEK[9])")
    assert typ == "OK" and b"BINARY[9] NIL" in data[0]
    typ, data = imap.fetch("1", "(BINARY.PEEK[3])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[-1], data
    with pytest.raises(imaplib.IMAP4.error):
        imap.fetch("1", "(BINARY.SIZE[2]<0.5>)")  # BAD: no partial on a size
    imap.logout()


def recv_until(sock, marker, limit=1 << 20):
    data = b""
    deadline = time.monotonic() + 30
    while marker not in data and len(data) < limit and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_append_literal8(stack):
    addr, pw = stack.users["alice"]
    body = b"Subject: lit8\r\n\r\nnul\x00here\r\n"
    with socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=30) as sock:
        recv_until(sock, b"\r\n")
        sock.sendall(b'a LOGIN "%s" "%s"\r\n' % (addr.encode(), pw.encode()))
        assert b"a OK" in recv_until(sock, b"a ")
        sock.sendall(b"b APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(body), body))
        reply = recv_until(sock, b"b ")
        assert b"b OK" in reply and b"APPENDUID" in reply, reply
        sock.sendall(b"c SELECT INBOX\r\n")
        assert b"c OK" in recv_until(sock, b"c ")
        sock.sendall(b"d FETCH 2 (BINARY.PEEK[])\r\n")
        reply = recv_until(sock, b"d OK")
        assert b"BINARY[] ~{%d}\r\n%s)" % (len(body), body) in reply, reply
        sock.sendall(b"e LOGOUT\r\n")
        recv_until(sock, b"e ")
