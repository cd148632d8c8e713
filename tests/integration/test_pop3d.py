"""tern-pop3d end to end with real clients: Python poplib over STLS and 995, fetchmail
into a local mbox (with --keep and without), curl, STLS injection, failed-login logging
and delay, authd down, IN-USE, and delivery (deliverd) during an open POP3 session."""
import mailbox
import os
import re
import poplib
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from pop3d_stack import AUTHD, DELIVERD, DOMAIN, POP3D, SRC, Stack, wait_for

ALICE = f"alice@{DOMAIN}"

MSG1 = b"From: a@example.net\nSubject: one\n\nHello\n.leading dot\n"
MSG2 = b"From: b@example.net\r\nSubject: two\r\n\r\n..two dots\r\nno final newline"
MSG3 = b"From: c@example.net\nSubject: three\n\nl1\nl2\nl3\n"


@pytest.fixture(autouse=True)
def need_binaries():
    for b in (AUTHD, POP3D):
        if not b.exists():
            pytest.fail(f"{b} is not built")


@pytest.fixture
def stack():
    s = Stack()
    s.add_message("alice", "1700000001.M1P1.test", MSG1)
    s.add_message("alice", "1700000002.M2P1.test:2,", MSG2, sub="cur")
    s.add_message("alice", "1700000003.M3P1.test", MSG3)
    s.start()
    yield s
    s.stop()


def tls_context(stack):
    ctx = ssl.create_default_context(cafile=str(stack.cert))
    return ctx


def wire(msg):
    """What RETR must return for a stored message, as poplib hands it back (lines
    without CRLF, dot-unstuffed)."""
    return msg.replace(b"\r\n", b"\n").split(b"\n")[:-1] if msg.endswith(b"\n") else \
        msg.replace(b"\r\n", b"\n").split(b"\n")


def test_poplib_stls_full_session(stack):
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "STLS", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE",
              "EXPIRE", "LOGIN-DELAY", "IMPLEMENTATION", "SASL"):
        assert c in caps, caps
    assert "PLAIN" in caps["SASL"]
    p.stls(context=tls_context(stack))
    assert "STLS" not in p.capa()
    p.user(ALICE)
    p.pass_("secret")
    count, size = p.stat()
    assert count == 3
    _, listing, _ = p.list()
    sizes = [int(line.split()[1]) for line in listing]
    # Sizes are CRLF sizes: bytes plus one per bare LF.
    assert sizes == [len(MSG1) + MSG1.count(b"\n"), len(MSG2), len(MSG3) + MSG3.count(b"\n")]
    assert size == sum(sizes)
    _, uidls, _ = p.uidl()
    # Dovecot's %08Xu%08Xv: UID then UIDVALIDITY, upper-case hex.
    ids = [u.split()[1] for u in uidls]
    assert [i[:8] for i in ids] == [b"00000001", b"00000002", b"00000003"]
    assert len({i[8:] for i in ids}) == 1 and re.fullmatch(rb"[0-9A-F]{8}", ids[0][8:])
    _, lines, _ = p.retr(1)
    assert lines == wire(MSG1)
    _, lines, _ = p.retr(2)
    assert lines == wire(MSG2)
    _, lines, _ = p.top(3, 1)
    assert lines == [b"From: c@example.net", b"Subject: three", b"", b"l1"]
    p.dele(1)
    p.dele(3)
    assert p.stat()[0] == 1
    p.rset()
    assert p.stat()[0] == 3
    p.dele(3)
    p.quit()
    # QUIT applied: message 3 is gone, 1 and 2 were read and are \Seen in cur/.
    assert stack.files("alice", "new") == []
    assert stack.files("alice", "cur") == ["1700000001.M1P1.test:2,S",
                                           "1700000002.M2P1.test:2,S"]
    log = stack.log()
    assert f"pop3-login: Login: user=<{ALICE}>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1" in log
    assert "TLS, session=<" in log
    wait_for(lambda: "Disconnected: Logged out" in stack.log(), "the logout line")
    assert f"pop3({ALICE})<" in stack.log()


def test_pop3s_implicit_tls_and_auth_plain(stack):
    p = poplib.POP3_SSL("127.0.0.1", stack.pop3s_port, context=tls_context(stack), timeout=30)
    assert "STLS" not in p.capa()
    # AUTH PLAIN with an initial response (RFC 5034).
    resp = p._shortcmd("AUTH PLAIN " + __import__("base64").b64encode(
        f"\0{ALICE}\0secret".encode()).decode())
    assert resp.startswith(b"+OK")
    assert p.stat()[0] == 3
    p.quit()


def test_dropped_connection_deletes_nothing(stack):
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p.user(ALICE)
    p.pass_("secret")
    p.dele(1)
    p.dele(2)
    p.retr(3)
    # Gone without QUIT.
    p.sock.shutdown(socket.SHUT_RDWR)
    p.file.close()
    p.sock.close()
    # The server notices the drop and frees the mailbox; until then it is IN-USE.
    p2 = None
    for _ in range(100):
        p2 = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
        p2.user(ALICE)
        try:
            p2.pass_("secret")
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0]
            p2.close()
            p2 = None
            time.sleep(0.1)
    assert p2 is not None
    assert p2.stat()[0] == 3
    p2.quit()
    # Opening moved the new messages to cur/; nothing was deleted or marked \Seen.
    assert stack.files("alice", "cur") == ["1700000001.M1P1.test:2,",
                                           "1700000002.M2P1.test:2,",
                                           "1700000003.M3P1.test:2,"]


def test_in_use(stack):
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p.user(ALICE)
    p.pass_("secret")
    p2 = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p2.user(ALICE)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        p2.pass_("secret")
    p.quit()
    p3 = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p3.user(ALICE)
    p3.pass_("secret")
    p3.quit()


def test_auth_failure_delayed_and_logged_for_fail2ban(stack):
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p.user(ALICE)
    start = time.monotonic()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong")
    assert time.monotonic() - start >= 0.9
    p.quit()
    wait_for(lambda: "auth failed" in stack.log(), "the disconnect log line")
    # fail2ban's dovecot filter (failregex, 2nd line) after its prefix.
    rx = re.compile(r"pop3-login: (?:Aborted login|Disconnected)(?::(?: [^ \(]+)+)? "
                    r"\((?:auth failed, \d+ attempts(?: in \d+ secs)?|tried to use "
                    r"(?:disabled|disallowed) \S+ auth)\):(?: user=<[^>]*>,)?(?: method=\S+,)?"
                    r" rip=(?P<host>[0-9a-fA-F:.]+)(?:[^>]*(?:, session=<\S+>)?)\s*$", re.M)
    m = rx.search(stack.log())
    assert m and m.group("host") == "127.0.0.1", stack.log()


def test_plaintext_after_stls_not_executed(stack):
    raw = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"+OK")
    # The injected commands arrive in the same packet as STLS (CVE-2011-0411 class).
    raw.sendall(f"STLS\r\nUSER {ALICE}\r\nPASS secret\r\n".encode())
    assert f.readline() == b"+OK Begin TLS negotiation now.\r\n"
    tls = tls_context(stack).wrap_socket(raw, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"STAT\r\n")
    assert tf.readline() == b"-ERR Not logged in.\r\n"
    tls.sendall(b"QUIT\r\n")
    assert tf.readline().startswith(b"+OK")
    tls.close()


def test_authd_down_is_sys_temp(stack):
    stack.stop_one("authd")
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=60)
    p.user(ALICE)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p.pass_("secret")
    p.quit()
    # authd back: the next login works without restarting pop3d.
    for sock in ("auth", "auth-userdb"):
        try:
            os.unlink(stack.run / sock)
        except FileNotFoundError:
            pass
    stack.start_authd()
    ok = False
    for _ in range(40):
        p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=60)
        p.user(ALICE)
        try:
            p.pass_("secret")
            ok = True
            p.quit()
            break
        except poplib.error_proto as e:
            assert b"[SYS/TEMP]" in e.args[0]
            p.quit()
            time.sleep(0.25)
    assert ok


def test_curl_list_and_retr(stack):
    base = f"pop3://127.0.0.1:{stack.pop3_port}/"
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-u", f"{ALICE}:secret", base],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\r\n")[:3] == [b"1 %d" % (len(MSG1) + MSG1.count(b"\n")),
                                          b"2 %d" % len(MSG2),
                                          b"3 %d" % (len(MSG3) + MSG3.count(b"\n"))]
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--ssl-reqd", "--cacert",
                        str(stack.cert), "-u", f"{ALICE}:secret",
                        f"pop3://localhost:{stack.pop3_port}/2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == MSG2 + b"\r\n"
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", str(stack.cert),
                        "-u", f"{ALICE}:secret", f"pop3s://localhost:{stack.pop3s_port}/1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == MSG1.replace(b"\n", b"\r\n")


def run_fetchmail(stack, tmp_path, keep):
    if shutil.which("fetchmail") is None:
        subprocess.run([str(SRC / "scripts" / "deps"), "fetchmail"], check=True, timeout=600)
    mbox = tmp_path / "mbox"
    mda = tmp_path / "mda.py"
    mda.write_text("import mailbox, sys\n"
                   "box = mailbox.mbox(sys.argv[1])\n"
                   "box.lock()\nbox.add(sys.stdin.buffer.read())\nbox.flush()\nbox.unlock()\n")
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"poll localhost protocol pop3 port {stack.pop3s_port}\n"
                  f"  user \"{ALICE}\" password \"secret\"\n"
                  f"  ssl sslcertck sslcertfile \"{stack.cert}\"\n"
                  f"  {'keep' if keep else 'nokeep'} fetchall\n"
                  f"  mda \"/usr/bin/python3 {mda} {mbox}\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog",
                        "--idfile", str(tmp_path / "fetchids"), "-v"],
                       capture_output=True, env=env, timeout=120)
    # 0 = mail retrieved.
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    return mailbox.mbox(str(mbox))


def test_fetchmail_keep(stack, tmp_path):
    box = run_fetchmail(stack, tmp_path, keep=True)
    subjects = sorted(m["Subject"] for m in box)
    assert subjects == ["one", "three", "two"]
    two = [m for m in box if m["Subject"] == "two"][0]
    assert b"..two dots" in two.as_bytes() or b".two dots" in two.as_bytes()
    # --keep: still on the server, now \Seen.
    assert stack.files("alice", "new") == []
    assert len(stack.files("alice", "cur")) == 3


def test_fetchmail_nokeep(stack, tmp_path):
    box = run_fetchmail(stack, tmp_path, keep=False)
    assert len(box) == 3
    assert stack.files("alice", "new") == [] and stack.files("alice", "cur") == []


@pytest.fixture
def stack_with_deliverd():
    if not DELIVERD.exists():
        pytest.fail(f"{DELIVERD} is not built")
    s = Stack(with_deliverd=True)
    s.add_message("alice", "1700000001.M1P1.test", MSG1)
    s.start()
    yield s
    s.stop()


def test_delivery_during_session_waits_for_next_login(stack_with_deliverd):
    import smtplib
    s = stack_with_deliverd
    p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
    p.user(ALICE)
    p.pass_("secret")
    assert p.stat()[0] == 1
    lmtp = smtplib.LMTP(str(s.run / "lmtp"), timeout=30)
    lmtp.sendmail("x@example.net", [ALICE], b"Subject: during\r\n\r\nnew\r\n")
    lmtp.quit()
    # The session's login moved the first message to cur/; the new one waits in new/.
    wait_for(lambda: len(s.files("alice", "new")) == 1, "delivery")
    assert p.stat()[0] == 1
    p.dele(1)
    p.quit()
    p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
    p.user(ALICE)
    p.pass_("secret")
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert b"Subject: during" in lines
    p.quit()


def test_plaintext_refused_when_not_secured():
    s = Stack(extra_pop3d="pop3_plaintext_on_loopback = no").start()
    try:
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
        caps = p.capa()
        assert "USER" not in caps and "STLS" in caps
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext"):
            p.user(ALICE)
        p.quit()
        wait_for(lambda: "tried to use disallowed plaintext auth" in s.log(), "log line")
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
        p.stls(context=ssl.create_default_context(cafile=str(s.cert)))
        assert "USER" in p.capa()
        p.user(ALICE)
        p.pass_("secret")
        p.quit()
    finally:
        s.stop()


def test_sigterm_ends_open_sessions_without_update(stack):
    p = poplib.POP3("127.0.0.1", stack.pop3_port, timeout=30)
    p.user(ALICE)
    p.pass_("secret")
    p.dele(1)
    idle = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=30)
    proc = stack.procs["pop3d"]
    proc.terminate()
    assert proc.wait(timeout=20) == 0
    # The client is told, and its DELE was never applied.
    assert p.file.readline() == b"-ERR Server shutting down.\r\n"
    idle.close()
    assert len(stack.files("alice", "cur")) == 3
    assert "stopped" in stack.log()


def test_sasl_continuations_through_authd(stack):
    """AUTH LOGIN and AUTH CRAM-MD5 need challenges from authd (CONT) and the client's
    answers back; a wrong CRAM-MD5 digest fails with [AUTH]."""
    import base64
    import hmac

    def raw():
        s = socket.create_connection(("127.0.0.1", stack.pop3_port), timeout=30)
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        return s, f

    s, f = raw()
    s.sendall(b"AUTH LOGIN\r\n")
    assert base64.b64decode(f.readline()[2:].strip()) == b"Username:"
    s.sendall(base64.b64encode(ALICE.encode()) + b"\r\n")
    assert base64.b64decode(f.readline()[2:].strip()) == b"Password:"
    s.sendall(base64.b64encode(b"secret") + b"\r\n")
    assert f.readline() == b"+OK Logged in.\r\n"
    s.sendall(b"STAT\r\nQUIT\r\n")
    assert f.readline().startswith(b"+OK 3 ")
    s.close()

    for password, want in (("secret", b"+OK Logged in.\r\n"),
                           ("wrong", b"-ERR [AUTH] Authentication failed.\r\n")):
        s, f = raw()
        s.sendall(b"AUTH CRAM-MD5\r\n")
        line = f.readline()
        assert line.startswith(b"+ "), line
        challenge = base64.b64decode(line[2:].strip())
        digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
        s.sendall(base64.b64encode(f"{ALICE} {digest}".encode()) + b"\r\n")
        assert f.readline() == want
        s.sendall(b"QUIT\r\n")
        f.readline()
        s.close()


def test_fail2ban_dovecot_filter_bans_from_our_lines(tmp_path):
    """Debian's fail2ban with its stock dovecot filter, only the daemon tag overridden
    (what a filter.d/tern file does), finds the client address in our failure lines:
    a failed login and a refused plaintext login; never in a successful one."""
    if shutil.which("fail2ban-regex") is None:
        subprocess.run([str(SRC / "scripts" / "deps"), "fail2ban"], check=True, timeout=600)
    s = Stack(extra_pop3d="pop3_plaintext_on_loopback = no").start()
    try:
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
        with pytest.raises(poplib.error_proto):
            p.user(ALICE)
        p.quit()
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
        p.stls(context=ssl.create_default_context(cafile=str(s.cert)))
        p.user(ALICE)
        with pytest.raises(poplib.error_proto):
            p.pass_("wrong")
        p.quit()
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=30)
        p.stls(context=ssl.create_default_context(cafile=str(s.cert)))
        p.user(ALICE)
        p.pass_("secret")
        p.quit()
        wait_for(lambda: s.log().count("pop3-login: Disconnected (") >= 2 and
                 "Logged out" in s.log(), "the log lines")
        log = tmp_path / "pop3d.log"
        log.write_text(s.log())
    finally:
        s.stop()
    r = subprocess.run(["fail2ban-regex", "-o", "ip", str(log),
                        "/etc/fail2ban/filter.d/dovecot.conf"
                        "[_daemon=tern/(?:imapd|pop3d|authd)]"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # One per failure (plaintext refused, auth failed); port probes and the good login
    # (and its logout) are not failures.
    assert r.stdout.split() == ["127.0.0.1", "127.0.0.1"], r.stdout + log.read_text()
