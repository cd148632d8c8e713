"""tern-authd as a process: the auth-client handshake and requests over its real socket,
userdb lookups, the passwd-file reloaded on change without a restart, fail2ban-shaped log
lines, a connection that sends garbage not affecting others, and a clean SIGTERM."""
import os
import signal
import socket
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


def test_userdb_refuses_unlisted_peer(authd):
    """SO_PEERCRED: a process of a user not in userdb_allowed_users is disconnected."""
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    import pwd
    other = pwd.getpwnam("daemon")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become 'daemon' and try the userdb socket
        os.close(r)
        result = b"?"
        try:
            os.setgid(other.pw_gid)
            os.setuid(other.pw_uid)
            c = LineClient(authd.userdb, timeout=5)
            try:
                c.line()
                result = b"answered"
            except (EOFError, ConnectionResetError):
                result = b"refused"
        except Exception as e:  # noqa: BLE001 - report anything to the parent
            result = repr(e).encode()
        os.write(w, result)
        os._exit(0)
    os.close(w)
    got = os.read(r, 200)
    os.waitpid(pid, 0)
    assert got == b"refused"
    assert "auth-userdb: refused peer uid=%d" % other.pw_uid in authd.log_text()
    # root (an allowed user) still gets answers
    c = LineClient(authd.userdb)
    assert c.line() == "VERSION\t1\t0"


def ternctl(authd, *args, stdin=None):
    import subprocess
    from authd_fixture import build_dir
    return subprocess.run([os.path.join(build_dir(), "ternctl", "ternctl"), "-c", authd.conf,
                           *args], capture_output=True, text=True, timeout=60, input=stdin)


def test_ternctl_against_authd(authd):
    r = ternctl(authd, "auth", "test", "bob", "s3cret pass")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "auth succeeded: user=bob@example.test\n"
    r = ternctl(authd, "auth", "test", "bob", "nope")
    assert r.returncode == 77 and r.stdout.startswith("auth failed")
    r = ternctl(authd, "user", "lookup", "BOB")
    assert r.returncode == 0, r.stderr
    assert "home=%s/mail/example.test/bob\n" % authd.dir in r.stdout
    assert "quota_bytes=5242880\n" in r.stdout
    assert ternctl(authd, "user", "lookup", "nobody").returncode == 67  # EX_NOUSER
    # A user added by ternctl (password on stdin) can log in at once, no restart.
    r = ternctl(authd, "user", "add", "dave", stdin="davepw\n")
    assert r.returncode == 0, r.stderr
    time.sleep(0.2)
    r = ternctl(authd, "auth", "test", "dave@example.test", "davepw")
    assert r.returncode == 0, r.stdout + r.stderr
    # authd down: a temporary failure, never a success.
    authd.stop()
    r = ternctl(authd, "auth", "test", "bob", "s3cret pass")
    assert r.returncode == 75  # EX_TEMPFAIL
    assert ternctl(authd, "user", "lookup", "bob").returncode == 69  # EX_UNAVAILABLE


def test_half_closed_client(authd):
    """A client that sends a request and shuts down its sending side: authd neither
    hangs nor crashes, and keeps serving others."""
    c = LineClient(authd.auth)
    handshake(c)
    c.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=%s\n" % b64(b"\0bob\0s3cret pass"))
    c.sock.shutdown(socket.SHUT_WR)
    try:
        while True:  # whatever comes, the connection must end (bounded by the timeout)
            c.line()
    except EOFError:
        pass
    c.close()
    other = LineClient(authd.auth)
    handshake(other)
    other.send("AUTH\t1\tPLAIN\tservice=smtp\tresp=%s\n" % b64(b"\0alice\0alicepw"))
    assert other.line() == "OK\t1\tuser=alice@example.test"
    assert authd.proc.poll() is None
