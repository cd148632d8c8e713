"""tern-authd as a process: the auth-client handshake and requests over its real socket,
userdb lookups, the passwd-file reloaded on change without a restart, fail2ban-shaped log
lines, a connection that sends garbage not affecting others, and a clean SIGTERM."""
import os
import signal
import time

import pytest

from authd_fixture import Authd, LineClient, b64


@pytest.fixture
def authd():
    a = Authd().start()
    yield a
    a.cleanup()


def handshake(c):
    c.send("VERSION\t1\t0\nCPID\t1234\n")
    return c.until("DONE")


def test_handshake_and_plain(authd):
    c = LineClient(authd.auth)
    lines = handshake(c)
    assert lines[0] == "VERSION\t1\t2"
    kinds = [l.split("\t")[0] for l in lines]
    # Postfix needs every MECH before SPID (protocols.md 3.1).
    assert kinds == ["VERSION", "MECH", "MECH", "SPID", "CUID", "COOKIE", "DONE"]
    assert lines[1] == "MECH\tPLAIN\tplaintext" and lines[2] == "MECH\tLOGIN\tplaintext"
    c.send("AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tresp=%s\n"
           % b64(b"\0bob\0s3cret pass"))
    assert c.line() == "OK\t1\tuser=bob@example.test"
    c.send("AUTH\t2\tPLAIN\tservice=smtp\trip=203.0.113.9\tsecured\tresp=%s\n"
           % b64(b"\0bob\0wrong"))
    assert c.line() == "FAIL\t2\tuser=bob@example.test\treason=Authentication failed"
    c.close()
    log = authd.log_text()
    # fail2ban's dovecot filter: <driver>(<user>,<ip>): invalid credentials
    assert "tern/authd[" in log
    assert "passwd-file(bob@example.test,203.0.113.9): invalid credentials" in log
    assert "s3cret" not in log and "wrong" not in log


def test_garbage_closes_only_that_connection(authd):
    good = LineClient(authd.auth)
    handshake(good)
    bad = LineClient(authd.auth)
    handshake(bad)
    bad.send(b"\x00\x01garbage\n")
    with pytest.raises(EOFError):
        bad.line()
    bad2 = LineClient(authd.auth)
    bad2.send("A" * 20000)
    with pytest.raises((EOFError, ConnectionResetError)):
        bad2.line()
    good.send("AUTH\t1\tPLAIN\tservice=imap\tresp=%s\n" % b64(b"\0alice\0alicepw"))
    assert good.line() == "OK\t1\tuser=alice@example.test"


def test_userdb_lookup(authd):
    c = LineClient(authd.userdb)
    assert c.line() == "VERSION\t1\t0"
    assert c.line().startswith("SPID\t")
    c.send("VERSION\t1\t0\nUSER\t1\tBob@Example.TEST\tservice=lmtp\nUSER\t2\tnobody\tservice=lmtp\n")
    f = c.line().split("\t")
    assert f[:3] == ["USER", "1", "bob@example.test"]
    assert "home=%s/mail/example.test/bob" % authd.dir in f
    assert "quota_bytes=5242880" in f
    assert c.line() == "NOTFOUND\t2"


def test_passwd_file_reload(authd):
    c = LineClient(authd.auth)
    handshake(c)
    c.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=%s\n" % b64(b"\0carol\0newpw"))
    assert c.line().startswith("FAIL\t1\t")
    # Replace the file the way an editor or `ternctl user add` would.
    tmp = authd.passwd + ".new"
    with open(authd.passwd) as f:
        text = f.read()
    with open(tmp, "w") as f:
        f.write(text + "carol@example.test:{PLAIN}newpw\n")
    os.rename(tmp, authd.passwd)
    time.sleep(0.2)  # the file is stat'ed at most every 100 ms
    c.send("AUTH\t2\tPLAIN\tservice=smtp\tresp=%s\n" % b64(b"\0carol\0newpw"))
    assert c.line() == "OK\t2\tuser=carol@example.test"
    assert "reloaded: 3 users" in authd.log_text()


def test_sigterm_exits_cleanly(authd):
    c = LineClient(authd.auth)
    handshake(c)
    authd.proc.send_signal(signal.SIGTERM)
    assert authd.proc.wait(timeout=15) == 0
    assert not os.path.exists(authd.auth)
