"""tern-imapd reads message files on the thread pool, not on its event loop: while one
session's FETCH is stuck opening a message file (a FIFO with no writer stands in for a
disk that does not answer), another session is served at once; when the file answers,
the stuck FETCH ends with a tagged response and imapd is still healthy.

With the reads on the loop thread the second session would hang until the first read
returned, so this test fails if message reads ever move back onto the loop."""

import imaplib
import os
import socket
import time

import pytest

from ternstack import Stack, built, drop_file as drop, recv_until

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")


def login(stack, user="alice"):
    addr, pw = stack.users[user]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
    imap.login(addr, pw)
    return imap


def test_blocked_file_read_does_not_stall_other_sessions():
    with Stack() as st:
        box = st.maildir("alice")
        drop(box, "1700000000.M1P1.host", "Subject: one\n\nfirst body\n")
        drop(box, "1700000001.M2P1.host", "Subject: two\n\nsecond body\n")
        imap = login(st)
        typ, data = imap.select("INBOX")
        assert typ == "OK" and data[0] == b"2"
        typ, data = imap.fetch("1:2", "(UID)")
        assert typ == "OK"
        imap.logout()

        cur = os.path.join(box, "cur")
        name = [n for n in os.listdir(cur) if n.startswith("1700000001.")][0]
        path = os.path.join(cur, name)
        addr, pw = st.users["alice"]
        stuck = socket.create_connection(("127.0.0.1", st.port("imap")), timeout=30)
        try:
            assert b"OK" in recv_until(stuck, b"\r\n", 10)
            stuck.sendall(b'a LOGIN "%s" "%s"\r\nb EXAMINE INBOX\r\n' % (addr.encode(),
                                                                         pw.encode()))
            assert b"b OK" in recv_until(stuck, b"b OK", 10)
            # Message 2's file becomes a FIFO with no writer: open(2) blocks until one
            # comes. (After the EXAMINE: a rescan would rightly drop a non-file.)
            owner = os.stat(path)
            os.unlink(path)
            os.mkfifo(path)
            os.chmod(path, owner.st_mode & 0o777)
            os.chown(path, owner.st_uid, owner.st_gid)
            stuck.sendall(b"c FETCH 2 BODY.PEEK[]\r\n")
            time.sleep(0.5)

            # Another session is served while the FETCH waits on the file.
            other = login(st, "bob")
            t0 = time.monotonic()
            typ, _ = other.select("INBOX")
            assert typ == "OK"
            typ, _ = other.noop()
            assert typ == "OK"
            assert time.monotonic() - t0 < 20
            # So is a FETCH of another message in the same folder, by a third session.
            third = login(st)
            third.select("INBOX", readonly=True)
            typ, data = third.fetch("1", "(BODY.PEEK[TEXT])")
            assert typ == "OK" and b"first body" in data[0][1]
            third.logout()
            other.logout()

            # The stuck FETCH has not finished: its file has not answered yet.
            stuck.settimeout(0.2)
            try:
                early = stuck.recv(65536)
            except socket.timeout:
                early = b""
            assert b"c OK" not in early and b"c NO" not in early

            # The file answers (a writer opens and closes the FIFO): the FETCH ends.
            # (The reader may give up on the FIFO as soon as the open returns — it cannot
            # pread one — so the write may find no reader left.)
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, b"Subject: two\n\nsecond body\n")
            except BrokenPipeError:
                pass
            os.close(fd)
            rest = recv_until(stuck, b"\r\nc ", 20) + recv_until(stuck, b"\r\n", 5)
            assert b"\r\nc OK" in rest or b"\r\nc NO" in rest, rest[-300:]
            stuck.sendall(b"d NOOP\r\n")
            assert b"d OK" in recv_until(stuck, b"d OK", 10)
        finally:
            stuck.close()
            if os.path.exists(path):
                os.unlink(path)
