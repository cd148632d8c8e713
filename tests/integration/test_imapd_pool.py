"""tern-imapd shares one loaded folder among its sessions (store_pool): 200 sessions
selecting the same INBOX hold about one descriptor each (the socket), not one per
mailbox file, and all of them learn of a new delivery while they IDLE."""

import os
import re
import select
import socket
import time

import pytest

from ternstack import Stack, built, recv_until as _recv_until

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

SESSIONS = 200


@pytest.fixture(scope="module")
def stack():
    with Stack(extra_conf="[imapd]\nmax_connections_per_ip = 1000") as st:
        yield st


def recv_until(sock, marker, timeout=30):
    """As ternstack's, waiting longer: 200 sessions share one imapd here."""
    return _recv_until(sock, marker, timeout)


_counter = [0]


def drop_message(maildir, subject):
    _counter[0] += 1
    name = "%d.M%dP%dQ%d.pooltest" % (time.time(), _counter[0], os.getpid(), _counter[0])
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "w") as f:
        f.write("From: a@example.test\nSubject: %s\n\nhello\n" % subject)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(maildir, "new", name))


def imapd_fds(stack):
    with open(os.path.join(stack.dir, "pid", "imapd.pid")) as f:
        pid = int(f.read().strip())
    return len(os.listdir("/proc/%d/fd" % pid))


def test_sessions_share_one_folder_and_all_learn_of_new_mail(stack):
    addr, pw = stack.users["alice"]
    maildir = stack.maildir("alice")
    for i in range(3):
        drop_message(maildir, "before %d" % i)
    base = imapd_fds(stack)
    sessions = []
    try:
        counts = set()
        for i in range(SESSIONS):
            raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=30)
            sessions.append(raw)
            recv_until(raw, b"\r\n")
            raw.sendall(b'a LOGIN "%s" "%s"\r\nb SELECT INBOX\r\n' % (addr.encode(),
                                                                      pw.encode()))
            reply = recv_until(raw, b"b OK")
            assert b"b OK" in reply, reply
            counts.add(int(re.search(rb"\* (\d+) EXISTS", reply).group(1)))
            raw.sendall(b"c IDLE\r\n")
            assert b"+ idling" in recv_until(raw, b"+ idling")
        assert len(counts) == 1, counts  # every session saw the same folder
        exists = b"* %d EXISTS" % (counts.pop() + 1)
        held = imapd_fds(stack) - base
        # One socket per session, plus one folder's descriptors (dir, cur, new, tmp, log,
        # cache) and the IDLE watch. Six per session (the old way) would be 1,200.
        assert held <= SESSIONS + 16, held
        drop_message(maildir, "pushed")
        pending = {raw.fileno(): raw for raw in sessions}
        got = {fd: b"" for fd in pending}
        deadline = time.time() + 60
        while pending and time.time() < deadline:
            ready, _, _ = select.select(list(pending.values()), [], [], 1.0)
            for raw in ready:
                chunk = raw.recv(65536)
                got[raw.fileno()] += chunk
                if exists in got[raw.fileno()] or not chunk:
                    del pending[raw.fileno()]
        assert not pending, "%d of %d sessions got no EXISTS" % (len(pending), SESSIONS)
        assert all(exists in data for data in got.values())
        for raw in sessions:
            raw.sendall(b"DONE\r\nd LOGOUT\r\n")
        for raw in sessions:
            assert b"d OK" in recv_until(raw, b"d OK")
    finally:
        for raw in sessions:
            raw.close()
    # The sessions are gone; the folder stays loaded for the next one (a few descriptors).
    deadline = time.time() + 10
    while imapd_fds(stack) - base > 16 and time.time() < deadline:
        time.sleep(0.1)
    assert imapd_fds(stack) - base <= 16


def test_status_and_select_see_changes_of_other_sessions(stack):
    addr, pw = stack.users["bob"]
    maildir = stack.maildir("bob")
    drop_message(maildir, "one")

    def session():
        raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=30)
        recv_until(raw, b"\r\n")
        raw.sendall(b'a LOGIN "%s" "%s"\r\n' % (addr.encode(), pw.encode()))
        assert b"a OK" in recv_until(raw, b"a OK")
        return raw

    a, b = session(), session()
    a.sendall(b"s SELECT INBOX\r\n")
    reply = recv_until(a, b"s OK")
    n = int(re.search(rb"\* (\d+) EXISTS", reply).group(1))
    # b's STATUS shares a's loaded folder and must still see the new delivery.
    drop_message(maildir, "two")
    b.sendall(b"t STATUS INBOX (MESSAGES UNSEEN)\r\n")
    reply = recv_until(b, b"t OK")
    assert b"MESSAGES %d" % (n + 1) in reply, reply
    # b expunges one; a sees it only when it is told (NOOP), with its own numbers.
    b.sendall(b'u SELECT INBOX\r\nv STORE 1 +FLAGS (\\Deleted)\r\nw EXPUNGE\r\n')
    reply = recv_until(b, b"w OK")
    assert b"* 1 EXPUNGE" in reply, reply
    a.sendall(b"x FETCH %d (FLAGS)\r\n" % n)
    reply = recv_until(a, b"x OK")
    assert b"x OK" in reply and b"EXPUNGE" not in reply, reply  # not during FETCH
    a.sendall(b"y NOOP\r\n")
    reply = recv_until(a, b"y OK")
    assert b"* 1 EXPUNGE" in reply and b"* %d EXISTS" % n in reply, reply
    for raw in (a, b):
        raw.sendall(b"z LOGOUT\r\n")
        recv_until(raw, b"z OK")
        raw.close()
