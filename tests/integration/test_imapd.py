"""tern-imapd with real clients: Python's imaplib (plain, STARTTLS, implicit TLS) and raw
transcripts for what imaplib cannot do (pipelined plaintext after STARTTLS)."""

import imaplib
import re
import socket
import ssl
import time

import pytest

from ternstack import Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        yield st


def tls_context(stack):
    ctx = ssl.create_default_context(cafile=stack.ca)
    ctx.check_hostname = False
    return ctx


def login(stack, user="alice"):
    addr, pw = stack.users[user]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=10)
    imap.login(addr, pw)
    return imap


def test_greeting_and_capabilities(stack):
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=10)
    caps = imap.capabilities
    assert "IMAP4REV1" in caps
    assert "STARTTLS" in caps
    assert "AUTH=PLAIN" in caps  # loopback is secured
    assert "LOGINDISABLED" not in caps
    imap.logout()


def test_login_and_wrong_password(stack):
    imap = login(stack)
    assert "NAMESPACE" in imap.capabilities or True  # refreshed after login below
    typ, data = imap.capability()
    assert typ == "OK" and b"NAMESPACE" in data[0]
    imap.logout()
    addr, _ = stack.users["alice"]
    bad = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
    with pytest.raises(imaplib.IMAP4.error) as err:
        bad.login(addr, "wrong password")
    assert "AUTHENTICATIONFAILED" in str(err.value)
    bad.logout()
    # The shape fail2ban's dovecot filter matches, with the name that was tried.
    assert re.search(r"imap-login: Aborted login \(auth failed, 1 attempts in \d+ secs\): "
                     r"user=<%s>, method=PLAIN, rip=127\.0\.0\.1" % re.escape(addr),
                     stack.log("imapd")), stack.log("imapd")
    assert "imap-login: Login: user=<%s>, method=PLAIN, rip=127.0.0.1" % addr in stack.log("imapd")


def test_authenticate_plain_with_initial_response(stack):
    addr, pw = stack.users["bob"]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=10)
    typ, _ = imap.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (addr, pw)).encode())
    assert typ == "OK"
    imap.logout()


def test_starttls_and_implicit_tls(stack):
    addr, pw = stack.users["alice"]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=10)
    imap.starttls(ssl_context=tls_context(stack))
    imap.login(addr, pw)
    imap.logout()
    imaps = imaplib.IMAP4_SSL("127.0.0.1", stack.port("imaps"), ssl_context=tls_context(stack),
                              timeout=10)
    imaps.login(addr, pw)
    imaps.logout()


def test_special_use_folders_listed(stack):
    imap = login(stack)
    typ, data = imap.list('""', "*")
    assert typ == "OK"
    lines = [d.decode() for d in data]
    assert any(l.endswith(" INBOX") or l.endswith('"INBOX"') for l in lines), lines
    for name, attr in [("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                       ("Junk", "\\Junk"), ("Archive", "\\Archive")]:
        assert any(attr in l and l.endswith(name) for l in lines), (name, lines)
    typ, data = imap.list('""', '""')
    assert data[0].decode() == '(\\Noselect) "/" ""'
    imap.logout()


def test_folder_lifecycle(stack):
    imap = login(stack, "bob")
    assert imap.create("Projects/2026")[0] == "OK"
    typ, data = imap.list('""', "Projects/%")
    assert typ == "OK" and any(d.decode().endswith("Projects/2026") for d in data), data
    typ, data = imap.list('""', "%")
    # The parent that was never created shows as \Noselect with children.
    assert any("\\Noselect" in d.decode() and d.decode().endswith("Projects") for d in data), data
    assert imap.create("Projects/2026")[0] == "NO"
    assert imap.rename("Projects/2026", "Projects/2027")[0] == "OK"
    assert imap.subscribe("Projects/2027")[0] == "OK"
    typ, data = imap.lsub('""', "*")
    assert any(d.decode().endswith("Projects/2027") for d in data), data
    typ, data = imap._simple_command("LIST", "(SUBSCRIBED)", '""', "*")
    typ, data = imap._untagged_response(typ, data, "LIST")
    assert any("\\Subscribed" in d.decode() and d.decode().endswith("Projects/2027")
               for d in data), data
    assert imap.delete("Projects/2027")[0] == "OK"
    assert imap.delete("INBOX")[0] == "NO"
    typ, data = imap.create("../../etc")
    assert typ == "NO"
    typ, data = imap.create("INBOX/../x")
    assert typ == "NO"
    imap.logout()


def recv_until(sock, marker, timeout=10):
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while marker not in data and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_plaintext_after_starttls_is_not_executed(stack):
    raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=10)
    recv_until(raw, b"\r\n")
    raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    reply = recv_until(raw, b"a OK")
    assert b"a OK" in reply and b"b OK" not in reply
    tls = tls_context(stack).wrap_socket(raw, server_hostname="localhost")
    tls.sendall(b"c NOOP\r\n")
    reply = recv_until(tls, b"c OK")
    assert b"c OK" in reply
    assert b"b OK" not in reply and b"* CAPABILITY" not in reply
    tls.close()


def test_adversarial_input(stack):
    raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=10)
    recv_until(raw, b"\r\n")
    # A 4 GB literal announced is refused before anything is allocated.
    raw.sendall(b"a1 LOGIN {4000000000}\r\n")
    assert b"a1 NO [TOOBIG]" in recv_until(raw, b"a1 ")
    # 10,000 nested parentheses.
    raw.sendall(b"a2 ID " + b"(" * 10000 + b"\r\n")
    assert b"a2 BAD" in recv_until(raw, b"a2 ")
    # A 1 MB command line.
    raw.sendall(b"a3 " + b"x" * (1024 * 1024) + b"\r\n")
    assert b"a3 BAD" in recv_until(raw, b"a3 ")
    # A NUL inside a quoted string.
    raw.sendall(b'a4 LOGIN "al\x00ice" "pw"\r\n')
    assert b"a4 BAD" in recv_until(raw, b"a4 ")
    # Still serving after all of that.
    raw.sendall(b"a5 NOOP\r\n")
    assert b"a5 OK" in recv_until(raw, b"a5 ")
    raw.close()


def test_bad_command_flood_is_cut_off(stack):
    raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=10)
    recv_until(raw, b"\r\n")
    raw.sendall(b"".join(b"x%d BOGUS\r\n" % i for i in range(100)))
    reply = recv_until(raw, b"* BYE", timeout=10)
    assert b"* BYE Too many invalid commands" in reply
    raw.close()
