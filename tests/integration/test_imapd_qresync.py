"""QRESYNC (RFC 7162) in tern-imapd over real sockets: one session expunges and flags,
another resyncs with SELECT (QRESYNC ...) and must get exactly the VANISHED UIDs and the
changed flags; VANISHED pushed during IDLE and in place of EXPUNGE; UID FETCH
(CHANGEDSINCE m VANISHED); a resync across many changes (the index folded into new
snapshots in between); tombstones surviving a restart of the daemons; the BAD cases."""

import imaplib
import os
import re
import socket
import time

import pytest

from ternstack import Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

_counter = [0]


def drop_message(folder_dir, subject):
    """Writes a message into new/ the way any Maildir MDA does (tmp, then rename)."""
    _counter[0] += 1
    name = "%d.M%dP%dQ%d.testhost" % (time.time(), _counter[0], os.getpid(), _counter[0])
    text = "From: a@example.test\nSubject: %s\nMessage-ID: <%s@t>\n\nbody\n" % (subject, name)
    tmp = os.path.join(folder_dir, "tmp", name)
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(folder_dir, "new", name))


class Client:
    """A raw IMAP client: commands out, every response line back (nothing interpreted)."""

    def __init__(self, stack, user="alice"):
        self.sock = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=20)
        self.buf = b""
        self.n = 0
        self.readline()  # greeting
        addr, pw = stack.users[user]
        self.ok('LOGIN "%s" "%s"' % (addr, pw))

    def readline(self, timeout=20):
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no line; have %r" % self.buf)
            self.sock.settimeout(max(0.1, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def send(self, text):
        self.n += 1
        tag = "t%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        return tag

    def cmd(self, text):
        tag = self.send(text)
        lines = []
        for _ in range(200000):
            line = self.readline()
            if line.startswith(tag + " "):
                return line[len(tag) + 1:], lines
            lines.append(line)
        raise AssertionError("no tagged reply")

    def ok(self, text):
        status, lines = self.cmd(text)
        assert status.startswith("OK"), (text, status, lines)
        return lines

    def close(self):
        try:
            self.cmd("LOGOUT")
        finally:
            self.sock.close()


def uid_set(text):
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        lo, hi = int(lo), int(hi or lo)
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return out


def vanished(lines, earlier=True):
    """The UIDs of all VANISHED (EARLIER) (or plain VANISHED) lines."""
    prefix = "* VANISHED (EARLIER) " if earlier else "* VANISHED "
    out = set()
    for line in lines:
        if line.startswith(prefix) and (earlier or "(EARLIER)" not in line):
            out |= uid_set(line[len(prefix):])
    return out


def fetches(lines):
    """{uid: (flags, modseq)} of the FETCH lines."""
    out = {}
    for line in lines:
        m = re.match(r"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)$", line)
        if m:
            out[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return out


def select_info(lines):
    text = "\n".join(lines)
    return (int(re.search(r"\[UIDVALIDITY (\d+)\]", text).group(1)),
            int(re.search(r"\[HIGHESTMODSEQ (\d+)\]", text).group(1)))


def snapshot_generation(folder_dir):
    """The generation in tern-index's header (bytes 32..39, little-endian): +1 per snapshot
    written (docs/store.md)."""
    with open(os.path.join(folder_dir, "tern-index"), "rb") as f:
        head = f.read(64)
    assert head[:8] == b"TERNIDX1"
    return int.from_bytes(head[32:40], "little")


def make_folder(stack, client, name, count):
    client.ok('CREATE "%s"' % name)
    folder_dir = os.path.join(stack.maildir("alice"), "." + name)
    for i in range(count):
        drop_message(folder_dir, "%s %d" % (name, i))
    return folder_dir


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        yield st


def test_enable_capability_and_bad_cases(stack):
    c = Client(stack)
    make_folder(stack, c, "qbad", 3)
    caps = " ".join(c.ok("CAPABILITY"))
    assert " QRESYNC" in caps and " CONDSTORE" in caps
    # RFC 7162 3.2.5: the parameter without ENABLE QRESYNC is BAD, nothing selected.
    status, _ = c.cmd('SELECT "qbad" (QRESYNC (1 1))')
    assert status.startswith("BAD"), status
    status, _ = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert status.startswith("BAD"), status  # not selected, and not enabled
    assert c.ok("ENABLE QRESYNC") == ["* ENABLED QRESYNC"]
    assert c.ok("ENABLE QRESYNC CONDSTORE") == ["* ENABLED"]  # both on already
    for bad in ["(QRESYNC (0 1))", "(QRESYNC (1 0))", "(QRESYNC (1 99999999999999999999))",
                "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 1:5 (1:2 3)))", "(QRESYNC)",
                "(QRESYNC 1 1)", "(FOO)"]:
        status, _ = c.cmd('SELECT "qbad" %s' % bad)
        assert status.startswith("BAD"), (bad, status)
    lines = c.ok('SELECT "qbad"')
    status, _ = c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert status.startswith("BAD"), status  # VANISHED only with UID FETCH
    status, _ = c.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")
    assert status.startswith("BAD"), status  # VANISHED needs CHANGEDSINCE
    # A second SELECT closes the first and says so.
    lines = c.ok('EXAMINE "qbad"')
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed.", lines
    c.close()
    # A session that did not enable QRESYNC may not ask for VANISHED.
    d = Client(stack)
    d.ok('SELECT "qbad"')
    status, _ = d.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert status.startswith("BAD"), status
    d.close()


def test_resync_after_another_session_expunged_and_flagged(stack):
    a = Client(stack)
    make_folder(stack, a, "qr1", 10)
    uidvalidity, highest = select_info(a.ok('SELECT "qr1"'))
    a.close()
    # Another session changes the folder while the first client is away.
    b = Client(stack)
    b.ok('SELECT "qr1"')
    b.ok("UID STORE 2,3,7 +FLAGS (\\Deleted)")
    b.ok("UID EXPUNGE 2,3,7")
    b.ok("UID STORE 5 +FLAGS (\\Flagged)")
    b.close()

    c = Client(stack)
    c.ok("ENABLE QRESYNC")
    lines = c.ok('SELECT "qr1" (QRESYNC (%d %d))' % (uidvalidity, highest))
    assert vanished(lines) == {2, 3, 7}, lines
    changed = fetches(lines)
    assert set(changed) == {5}, lines
    assert changed[5][0] == "\\Flagged" and changed[5][1] > highest
    assert not any(re.match(r"\* \d+ EXPUNGE", x) for x in lines)
    _, now = select_info(lines)
    assert now > highest + 3  # each expunge took its own MODSEQ

    # Known UIDs limit both answers.
    lines = c.ok('SELECT "qr1" (QRESYNC (%d %d 1:4))' % (uidvalidity, highest))
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed."
    assert vanished(lines) == {2, 3} and fetches(lines) == {}, lines
    # Up to date: nothing to report.
    lines = c.ok('EXAMINE "qr1" (QRESYNC (%d %d))' % (uidvalidity, now))
    assert vanished(lines) == set() and fetches(lines) == {}, lines
    # Another UIDVALIDITY: a plain select.
    lines = c.ok('SELECT "qr1" (QRESYNC (%d %d))' % (uidvalidity + 1, highest))
    assert vanished(lines) == set() and fetches(lines) == {}, lines
    assert "* 7 EXISTS" in lines

    # UID FETCH (CHANGEDSINCE m VANISHED), limited to the UID set asked for.
    lines = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
    assert vanished(lines) == {2, 3, 7} and set(fetches(lines)) == {5}, lines
    lines = c.ok("UID FETCH 4:10 (FLAGS) (VANISHED CHANGEDSINCE %d)" % highest)
    assert vanished(lines) == {7} and set(fetches(lines)) == {5}, lines
    c.close()


def test_seq_match_data_limits_the_superset(stack):
    a = Client(stack)
    make_folder(stack, a, "qr2", 6)
    uidvalidity, _ = select_info(a.ok('SELECT "qr2"'))
    a.ok("UID STORE 1 +FLAGS (\\Deleted)")
    a.ok("UID EXPUNGE 1")
    # The client now knows numbers 1..5 = UIDs 2..6; then UID 5 goes while it is away.
    a.ok("UID STORE 5 +FLAGS (\\Deleted)")
    a.ok("UID EXPUNGE 5")
    _, highest = select_info(a.ok('SELECT "qr2"'))
    a.close()
    c = Client(stack)
    c.ok("ENABLE QRESYNC")
    # A MODSEQ the server cannot answer exactly (above HIGHESTMODSEQ): the superset,
    # every UID below UIDNEXT not in the folder.
    stale = highest + 1000
    lines = c.ok('SELECT "qr2" (QRESYNC (%d %d))' % (uidvalidity, stale))
    assert vanished(lines) == {1, 5}, lines
    # RFC 7162 3.2.5.2: (1,2) (2,3) (3,4) still hold, so nothing at or below UID 4 went.
    lines = c.ok('SELECT "qr2" (QRESYNC (%d %d 2:6 (1:3 2:4)))' % (uidvalidity, stale))
    assert vanished(lines) == {5}, lines
    # (4,5) no longer holds (number 4 is now UID 6): the last pair that holds is (3,4).
    lines = c.ok('SELECT "qr2" (QRESYNC (%d %d 2:6 (1:5 2:6)))' % (uidvalidity, stale))
    assert vanished(lines) == {5}, lines
    # Pairs that never held cut nothing; known UIDs still limit the answer.
    lines = c.ok('SELECT "qr2" (QRESYNC (%d %d 1:4 (1 6)))' % (uidvalidity, stale))
    assert vanished(lines) == {1}, lines
    c.close()


def test_vanished_replaces_expunge_and_is_pushed_during_idle(stack):
    a = Client(stack)
    make_folder(stack, a, "qidle", 5)
    a.ok("ENABLE QRESYNC")
    a.ok('SELECT "qidle"')
    # Its own expunge: VANISHED, never "* n EXPUNGE".
    a.ok("UID STORE 1 +FLAGS (\\Deleted)")
    lines = a.ok("UID EXPUNGE 1")
    assert lines == ["* VANISHED 1"], lines
    a.ok('CREATE "qidle-to"')
    lines = a.ok('UID MOVE 2 "qidle-to"')
    assert "* VANISHED 2" in lines and not any("EXPUNGE" in x for x in lines), lines

    tag = a.send("IDLE")
    assert a.readline() == "+ idling"
    other = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=20)
    other.login(*stack.users["alice"])
    other.select("qidle")
    other.uid("STORE", "3,4", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    got = []
    deadline = time.time() + 20
    while vanished(got, earlier=False) != {3, 4} and time.time() < deadline:
        got.append(a.readline(timeout=max(0.1, deadline - time.time())))
    assert vanished(got, earlier=False) == {3, 4}, got
    assert not any("EXPUNGE" in x for x in got), got
    a.sock.sendall(b"DONE\r\n")
    for _ in range(100):
        line = a.readline()
        if line.startswith(tag + " "):
            assert line.startswith(tag + " OK"), line
            break
    lines = a.ok("NOOP")
    assert not any("EXPUNGE" in x or "VANISHED" in x for x in lines), lines
    a.close()


def test_resync_across_index_compaction(stack):
    a = Client(stack)
    folder_dir = make_folder(stack, a, "qcompact", 40)
    uidvalidity, highest = select_info(a.ok('SELECT "qcompact"'))
    before = snapshot_generation(folder_dir)
    a.ok("UID STORE 3,10:12 +FLAGS (\\Deleted)")
    a.ok("UID EXPUNGE 3,10:12")
    # Enough flag changes to fold the log into a new snapshot (more than once).
    for i in range(80):
        a.ok("STORE 1:* %sFLAGS (\\Seen)" % ("+" if i % 2 == 0 else "-"))
    a.ok("UID STORE 20,40 +FLAGS (\\Deleted)")
    a.ok("UID EXPUNGE 20,40")
    a.ok("UID STORE 7 +FLAGS (\\Answered)")
    # Not the inode: a new snapshot may get the old one's inode number back.
    assert snapshot_generation(folder_dir) >= before + 2, "the index was not compacted"
    a.close()
    c = Client(stack)
    c.ok("ENABLE QRESYNC")
    lines = c.ok('SELECT "qcompact" (QRESYNC (%d %d))' % (uidvalidity, highest))
    assert vanished(lines) == {3, 10, 11, 12, 20, 40}, lines
    # Every message's \Seen went on and off: all changed, 7 also \Answered.
    changed = fetches(lines)
    assert len(changed) == 34 and changed[7][0] == "\\Answered", lines
    c.close()


def test_tombstones_survive_a_restart():
    with Stack() as st:
        a = Client(st)
        make_folder(st, a, "qrestart", 8)
        uidvalidity, highest = select_info(a.ok('SELECT "qrestart"'))
        a.ok("UID STORE 2,6 +FLAGS (\\Deleted)")
        a.ok("UID EXPUNGE 2,6")
        a.close()
        st._devstack("stop")
        st.start()
        c = Client(st)
        c.ok("ENABLE QRESYNC")
        lines = c.ok('SELECT "qrestart" (QRESYNC (%d %d))' % (uidvalidity, highest))
        assert select_info(lines)[0] == uidvalidity
        assert vanished(lines) == {2, 6}, lines
        assert fetches(lines) == {}, lines
        c.close()
