"""`ternctl mailbox status|reindex` against a running stack: the figures match what an IMAP
client (imaplib) reads with STATUS, a file dropped into the Maildir by hand is picked up by
reindex with every old UID kept, files written as root stay the store owner's, and the
errors have their sysexits.h codes."""

import imaplib
import os
import re
import subprocess
import time

import pytest

from ternstack import BUILD, Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

EX_USAGE, EX_DATAERR, EX_NOUSER = 64, 65, 67


def ternctl(stack, *args):
    return subprocess.run([os.path.join(BUILD, "ternctl", "ternctl"), "-c",
                           stack.env["TERN_CONF"], *args],
                          capture_output=True, text=True, timeout=60, check=False)


def status_line(output, folder):
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        if name == folder:
            return dict(kv.split("=", 1) for kv in rest.split())
    raise AssertionError("no %s in %r" % (folder, output))


def imap_login(stack):
    m = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=20)
    addr, pw = stack.users["alice"]
    m.login(addr, pw)
    return m


def imap_status(m):
    typ, data = m.status("INBOX", "(MESSAGES UNSEEN UIDVALIDITY UIDNEXT HIGHESTMODSEQ)")
    assert typ == "OK", data
    text = data[0].decode()
    return {k.lower(): v for k, v in re.findall(r"([A-Z]+) (\d+)", text)}


def inbox_uids(m):
    m.select("INBOX")
    typ, data = m.uid("SEARCH", None, "ALL")
    assert typ == "OK"
    return [int(u) for u in data[0].split()]


def test_status_and_reindex():
    with Stack() as st:
        m = imap_login(st)
        for i in range(3):
            msg = "From: a@example.test\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i)
            typ, _ = m.append("INBOX", None, None, msg.encode())
            assert typ == "OK"
        m.select("INBOX")
        m.store("2", "+FLAGS", "(\\Seen)")
        m.close()
        want = imap_status(m)
        r = ternctl(st, "mailbox", "status", st.users["alice"][0])
        assert r.returncode == 0, r.stderr
        got = status_line(r.stdout, "INBOX")
        for key in ("messages", "unseen", "uidvalidity", "uidnext", "highestmodseq"):
            assert got[key] == want[key], (key, got, want)
        assert got["messages"] == "3" and got["unseen"] == "2"
        before = inbox_uids(m)
        m.logout()

        # A message put into the Maildir by hand, as a restore would.
        inbox = st.maildir("alice")
        name = "%d.M1P%dQ1.restored" % (time.time(), os.getpid())
        with open(os.path.join(inbox, "tmp", name), "w") as f:
            f.write("From: b@example.test\nSubject: restored\n\nbody\n")
        os.chmod(os.path.join(inbox, "tmp", name), 0o644)
        os.rename(os.path.join(inbox, "tmp", name), os.path.join(inbox, "new", name))
        r = ternctl(st, "mailbox", "reindex", st.users["alice"][0], "INBOX")
        assert r.returncode == 0, r.stderr
        got = status_line(r.stdout, "INBOX")
        assert got["messages"] == "4" and got["uidvalidity"] == want["uidvalidity"]
        # Whatever ternctl created belongs to the store's owner, not to whoever ran it.
        owner = os.stat(inbox).st_uid
        for f in ("tern-index", "tern-index.log"):
            assert os.stat(os.path.join(inbox, f)).st_uid == owner, f

        m = imap_login(st)
        after = inbox_uids(m)
        assert after[:3] == before and len(after) == 4 and after[3] > before[-1]
        assert imap_status(m)["uidvalidity"] == want["uidvalidity"]
        m.logout()


def test_errors():
    with Stack() as st:
        alice = st.users["alice"][0]
        assert ternctl(st, "mailbox").returncode == EX_USAGE
        assert ternctl(st, "mailbox", "frob", alice).returncode == EX_USAGE
        r = ternctl(st, "mailbox", "status", "nobody-here@" + alice.split("@")[1])
        assert r.returncode == EX_NOUSER and "not found" in r.stderr
        r = ternctl(st, "mailbox", "status", alice, "No such folder")
        assert r.returncode == EX_DATAERR and "no folder" in r.stderr
        r = ternctl(st, "mailbox", "status", alice, "../../etc")
        assert r.returncode == EX_DATAERR
