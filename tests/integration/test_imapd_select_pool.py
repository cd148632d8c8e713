"""tern-imapd opens a folder it has not loaded on the thread pool, not on its event loop: a
first SELECT (which builds the index: seconds on a big folder) must not stall the other
sessions. A FIFO stands in for a disk that does not answer: alice's INBOX has no index
yet and its dovecot-uidlist (read on first open, to keep Dovecot's UIDs) is a FIFO with
no writer, so her SELECT waits in open(2). Meanwhile bob is served (NOOP, and a SELECT of
his own INBOX); when the "disk" answers with a uidlist, alice's SELECT ends with the
UIDVALIDITY and UIDs it gave.

With the open on the loop thread, bob would hang until alice's read returned, so this
test fails if the first open of a folder ever moves back onto the loop."""

import errno
import os
import socket
import time

import pytest

from ternstack import Stack, built, drop_file as drop, recv_until

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")


def session(st, user):
    addr, pw = st.users[user]
    s = socket.create_connection(("127.0.0.1", st.port("imap")), timeout=30)
    assert b"OK" in recv_until(s, b"\r\n", 10)
    s.sendall(b'l LOGIN "%s" "%s"\r\n' % (addr.encode(), pw.encode()))
    assert b"l OK" in recv_until(s, b"l OK", 10)
    return s


def open_writer(path, timeout):
    """Opens the FIFO for writing once a reader has it open (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_first_select_does_not_stall_other_sessions():
    with Stack() as st:
        box = st.maildir("alice")
        drop(box, "1700000000.M1P1.host", "Subject: one\n\nfirst body\n")
        drop(box, "1700000001.M2P1.host", "Subject: two\n\nsecond body\n")
        fifo = os.path.join(box, "dovecot-uidlist")
        owner = os.stat(box)
        os.mkfifo(fifo, 0o600)
        os.chown(fifo, owner.st_uid, owner.st_gid)
        stuck = session(st, "alice")
        writer = None
        try:
            stuck.sendall(b"b SELECT INBOX\r\n")
            # The open is on its way to the FIFO (a reader appears on it).
            writer = open_writer(fifo, 20)

            # Bob is served while alice's first open waits on the "disk".
            other = session(st, "bob")
            other.sendall(b"n NOOP\r\n")
            assert b"n OK" in recv_until(other, b"n OK", 10)
            other.sendall(b"s SELECT INBOX\r\n")
            assert b"s OK" in recv_until(other, b"s OK", 10)
            other.sendall(b"z LOGOUT\r\n")
            other.close()

            # Alice's SELECT has not finished: its uidlist has not answered yet.
            early = recv_until(stuck, b"\r\nb ", 0.3)
            assert b"b OK" not in early and b"b NO" not in early

            # The "disk" answers with Dovecot's list (no lines: the files it never saw
            # get UIDs from its N on): the SELECT ends with its UIDVALIDITY.
            os.write(writer, b"3 V1234567 N5\n")
            os.close(writer)
            writer = None
            rest = early + recv_until(stuck, b"\r\nb ", 20) + recv_until(stuck, b"\r\n", 5)
            assert b"\r\nb OK" in rest, rest[-300:]
            assert b"* 2 EXISTS" in rest
            assert b"[UIDVALIDITY 1234567]" in rest and b"[UIDNEXT 7]" in rest
            stuck.sendall(b"c UID FETCH 1:* (UID)\r\n")
            out = recv_until(stuck, b"c OK", 10)
            assert b"UID 5)" in out and b"UID 6)" in out
        finally:
            if writer is None and os.path.exists(fifo) and not os.path.isfile(fifo):
                try:
                    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    writer = None
            if writer is not None:
                os.close(writer)  # lets a stuck reader go, whatever failed
            stuck.close()
