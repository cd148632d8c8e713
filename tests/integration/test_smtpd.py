"""tern-smtpd end to end: authd + deliverd + smtpd from this build, real clients, mail
landing in Maildir. See smtpd_stack.py for the stack."""

import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from smtpd_stack import SRC, Raw, Stack, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def stack():
    st = Stack()
    try:
        st.start_all()
        yield st
    finally:
        st.stop_all()
        if os.environ.get("TERN_KEEP_TMP") is None:
            st.remove()


def marker():
    return ("m-" + uuid.uuid4().hex).encode()


def test_telnet_tutorial_byte_for_byte(stack):
    m = marker()
    r = Raw(stack.ports["smtp"])
    assert r.reply() == b"220 mx.test.example ESMTP tern\r\n"
    assert r.cmd(b"helo lo\r\n") == b"250 mx.test.example\r\n"
    assert r.cmd(b"mail from: user@yahoo.com\r\n") == b"250 2.1.0 Ok\r\n"
    assert r.cmd(b"rcpt to: tester@example.org\r\n") == b"250 2.1.5 Ok\r\n"
    assert r.cmd(b"data\r\n") == b"354 End data with <CR><LF>.<CR><LF>\r\n"
    r.send(b"Subject: test from telnet\r\nFrom: user@yahoo.com\r\n\r\n")
    r.send(b"Hello, " + m + b".\r\n")
    queued = r.cmd(b".\r\n")
    assert queued.startswith(b"250 2.0.0 Ok: queued as ")
    assert r.cmd(b"quit\r\n") == b"221 2.0.0 Bye\r\n"
    assert r.closed()
    data = stack.wait_for_mail("tester@example.org", m)
    assert data.startswith(b"Return-Path: <user@yahoo.com>") or b"Received: from lo" in data
    assert b"Received: from lo (unknown [127.0.0.1])" in data
    assert b"Subject: test from telnet\r\n" in data or b"Subject: test from telnet\n" in data
    qid = queued.split()[-1].decode()
    log = stack.log("smtpd")
    assert "tern/smtpd[%d]: %s: client=unknown[127.0.0.1]" % (stack.procs["smtpd"].pid, qid) in log
    assert "tern/qmgr[%d]: %s: from=<user@yahoo.com>, size=" % (stack.procs["smtpd"].pid, qid) in log
    assert "tern/lmtp[%d]: %s: to=<tester@example.org>, relay=deliverd[lmtp]" % (
        stack.procs["smtpd"].pid, qid) in log


def test_smtplib_plain_25_8bit_and_utf8(stack):
    m = marker()
    with smtplib.SMTP("127.0.0.1", stack.ports["smtp"], timeout=10) as s:
        code, caps = s.ehlo("client.example")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes",
                    "starttls", "dsn", "chunking"):
            assert s.has_extn(ext), ext
        body = ("Subject: caf\u00e9\r\n\r\n8-bit body: gr\u00fc\u00dfe " + m.decode() +
                "\r\n").encode("utf-8")
        refused = s.sendmail("j\u00f6rg@example.com", ["tester@example.org"], body,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    data = stack.wait_for_mail("tester@example.org", m)
    assert "gr\u00fc\u00dfe".encode("utf-8") in data
    assert b" with UTF8SMTP id " in data


def test_unknown_user_refused_at_rcpt(stack):
    with smtplib.SMTP("127.0.0.1", stack.ports["smtp"], timeout=10) as s:
        s.ehlo("x")
        assert s.mail("a@example.com")[0] == 250
        code, msg = s.rcpt("nobody-here@example.org")
        assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)
    assert "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 " in stack.log("smtpd") \
        or ": reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 " in stack.log("smtpd")


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_submission_starttls_auth(stack, mech):
    m = marker()
    with smtplib.SMTP("127.0.0.1", stack.ports["submission"], timeout=10) as s:
        s.ehlo("laptop")
        assert not s.has_extn("auth")  # no AUTH before TLS
        s.starttls(context=stack.client_context())
        s.ehlo("laptop")
        assert "PLAIN" in s.esmtp_features["auth"]
        s.user, s.password = "bob@example.org", "bob-secret"
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()))
        assert code == 235
        msg = EmailMessage()
        msg["From"] = "bob@example.org"
        msg["To"] = "tester@example.org"
        msg["Subject"] = "submission"
        msg.set_content("via 587 " + m.decode())
        del msg["Message-ID"]
        del msg["Date"]
        s.send_message(msg)
    data = stack.wait_for_mail("tester@example.org", m)
    assert b"(Authenticated sender: bob@example.org)" in data
    assert b"with ESMTPSA id" in data
    assert b"\nMessage-ID: <" in data and b"\nDate: " in data  # added on submission
    assert b"(using TLSv1." in data


def test_submissions_implicit_tls_and_sender_check(stack):
    m = marker()
    with smtplib.SMTP_SSL("127.0.0.1", stack.ports["submissions"], timeout=10,
                          context=stack.client_context()) as s:
        s.ehlo("phone")
        s.login("bob@example.org", "bob-secret")
        code, msg = s.mail("tester@example.org")
        assert code == 553, (code, msg)  # not bob's address
        s.rset()
        s.sendmail("bob@example.org", ["tester@example.org"],
                   b"Subject: 465\r\n\r\n" + m + b"\r\n")
    stack.wait_for_mail("tester@example.org", m)


def test_auth_before_starttls_on_587(stack):
    r = Raw(stack.ports["submission"])
    r.reply()
    assert r.cmd(b"EHLO x\r\n").startswith(b"250-")
    plain = base64.b64encode(b"\0bob@example.org\0bob-secret")
    assert r.cmd(b"AUTH PLAIN " + plain + b"\r\n") == \
        b"530 5.7.0 Must issue a STARTTLS command first\r\n"
    assert r.cmd(b"MAIL FROM:<bob@example.org>\r\n") == \
        b"530 5.7.0 Must issue a STARTTLS command first\r\n"
    r.close()


def test_auth_failure_delayed_and_logged(stack):
    r = Raw(stack.ports["smtp"])
    r.reply()
    r.cmd(b"EHLO x\r\n")
    bad = base64.b64encode(b"\0bob@example.org\0wrong")
    t0 = time.monotonic()
    rep = r.cmd(b"AUTH PLAIN " + bad + b"\r\n")
    assert rep.startswith(b"535 5.7.8 ")
    # auth_failure_delay = 200ms (libuv counts whole milliseconds)
    assert time.monotonic() - t0 >= 0.195
    r.close()
    assert "warning: unknown[127.0.0.1]: SASL PLAIN authentication failed:" in stack.log("smtpd")


def test_starttls_plaintext_injection_discarded(stack):
    r = Raw(stack.ports["smtp"])
    r.reply()
    r.cmd(b"EHLO x\r\n")
    # RSET and an envelope ride in the same packet as STARTTLS (CVE-2011-0411).
    r.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
    assert r.reply() == b"220 2.0.0 Ready to start TLS\r\n"
    assert r.buf == b""
    tls = stack.client_context().wrap_socket(r.s, server_hostname="mx.test.example")
    tls.settimeout(10)
    tls.sendall(b"NOOP\r\n")
    data = b""
    while b"\r\n" not in data:
        data += tls.recv(4096)
    # Only the NOOP's reply: the injected commands never ran.
    assert data == b"250 2.0.0 Ok\r\n"
    tls.sendall(b"MAIL FROM:<a@example.com>\r\n")
    data = b""
    while b"\r\n" not in data:
        data += tls.recv(4096)
    assert data == b"503 5.5.1 Error: send HELO/EHLO first\r\n"
    tls.close()


def test_bdat(stack):
    m = marker()
    r = Raw(stack.ports["smtp"])
    r.reply()
    assert b"CHUNKING" in r.cmd(b"EHLO x\r\n")
    chunk1 = b"Subject: bdat\r\n\r\nfirst .\r\n.\r\n"
    chunk2 = b"second " + m + b"\r\n"
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<tester@example.org>\r\n")
    assert r.reply() == b"250 2.1.0 Ok\r\n"
    assert r.reply() == b"250 2.1.5 Ok\r\n"
    assert r.cmd(b"BDAT %d\r\n" % len(chunk1) + chunk1).startswith(b"250 2.0.0 Ok: ")
    assert r.cmd(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2).startswith(b"250 2.0.0 Ok: queued")
    r.cmd(b"QUIT\r\n")
    data = stack.wait_for_mail("tester@example.org", m)
    assert b"first .\r\n.\r\nsecond" in data or b"first .\n.\nsecond" in data


def test_relay_matrix(stack):
    def rcpt(port, source, to, login=None):
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as s:
            s.ehlo("x")
            if login:
                s.starttls(context=stack.client_context())
                s.ehlo("x")
                s.login(*login)
            s.mail(login[0] if login else "someone@example.com")
            return s.rcpt(to)

    # From outside mynetworks (127.0.0.1 is not in it here), unauthenticated: no relay.
    code, msg = rcpt(stack.ports["smtp"], "127.0.0.1", "victim@elsewhere.test")
    assert (code, msg[:5]) == (554, b"5.7.1"), (code, msg)
    assert "Relay access denied" in msg.decode()
    # ... but local delivery is open to anyone.
    assert rcpt(stack.ports["smtp"], "127.0.0.1", "tester@example.org")[0] == 250
    # From mynetworks (127.0.0.2) and when authenticated, the relay decision passes to
    # deliverd: the answer is not smtpd's "Relay access denied".
    for args in ((stack.ports["smtp"], "127.0.0.2", "friend@elsewhere.test"),
                 (stack.ports["submission"], "127.0.0.1", "friend@elsewhere.test",
                  ("bob@example.org", "bob-secret"))):
        code, msg = rcpt(*args)
        assert not (code == 554 and b"Relay access denied" in msg), (args, code, msg)
    log = stack.log("smtpd")
    assert ("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
            "<victim@elsewhere.test>: Relay access denied;") in log or \
        ": reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <victim@elsewhere.test>: " \
        "Relay access denied;" in log


def test_smuggling_end_to_end(stack):
    m = marker()
    r = Raw(stack.ports["smtp"])
    r.reply()
    r.cmd(b"EHLO x\r\n")
    r.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<tester@example.org>\r\nDATA\r\n")
    assert r.reply() == b"250 2.1.0 Ok\r\n"
    assert r.reply() == b"250 2.1.5 Ok\r\n"
    assert r.reply().startswith(b"354")
    r.send(b"Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<ceo@example.org>\r\nRCPT TO:"
           b"<tester@example.org>\r\nDATA\r\nSubject: spoofed " + m + b"\r\n\r\n.\r\n")
    assert r.reply() == b"521 5.5.2 mx.test.example Error: bare <LF> received\r\n"
    assert r.closed()
    time.sleep(0.3)
    for path in stack.maildir_new("tester@example.org"):
        with open(path, "rb") as f:
            assert m not in f.read()


def test_swaks_and_curl(stack):
    subprocess.run([os.path.join(SRC, "scripts", "deps"), "swaks", "curl"], check=True,
                   timeout=600, capture_output=True)
    m = marker().decode()
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                          str(stack.ports["submission"]), "--tls",
                          "--auth", "LOGIN", "--auth-user", "bob@example.org",
                          "--auth-password", "bob-secret", "--from", "bob@example.org",
                          "--to", "tester@example.org", "--header", "Subject: swaks " + m,
                          "--body", "swaks body"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    stack.wait_for_mail("tester@example.org", m.encode())

    m2 = marker().decode()
    mail = os.path.join(stack.tmp, "curl-mail.txt")
    with open(mail, "w") as f:
        f.write("From: bob@example.org\r\nTo: tester@example.org\r\nSubject: curl %s\r\n\r\n"
                "curl body\r\n" % m2)
    out = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--url",
                          "smtps://127.0.0.1:%d" % stack.ports["submissions"], "--user",
                          "bob@example.org:bob-secret", "--mail-from", "bob@example.org",
                          "--mail-rcpt", "tester@example.org", "--upload-file", mail],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    stack.wait_for_mail("tester@example.org", m2.encode())


def test_client_that_never_sends_times_out(stack):
    r = Raw(stack.ports["smtp"], timeout=20)
    r.reply()
    t0 = time.monotonic()
    assert r.reply() == b"421 4.4.2 mx.test.example Error: timeout exceeded\r\n"
    assert time.monotonic() - t0 >= 2.5  # command_timeout = 3s
    assert r.closed()


def test_per_ip_connection_cap(stack):
    socks, refused, greeted = [], 0, 0
    try:
        for _ in range(500):
            s = socket.create_connection(("127.0.0.1", stack.ports["smtp"]), timeout=10)
            socks.append(s)
        for s in socks:
            data = b""
            try:
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            if data.startswith(b"220 "):
                greeted += 1
            else:
                refused += 1
    finally:
        for s in socks:
            s.close()
    assert greeted <= 50, greeted
    assert greeted >= 1 and refused >= 450, (greeted, refused)
    # The cap frees up again.
    wait_for(lambda: Raw(stack.ports["smtp"]).reply().startswith(b"220 "), 10, "greeting")


def test_deliverd_stopped_then_back(stack):
    m = marker()
    stack.stop("deliverd")
    try:
        with smtplib.SMTP("127.0.0.1", stack.ports["smtp"], timeout=10) as s:
            s.ehlo("x")
            code, msg = s.mail("a@example.com")
            assert (code, msg[:5]) == (451, b"4.3.0"), (code, msg)
    finally:
        stack.start("deliverd")
    with smtplib.SMTP("127.0.0.1", stack.ports["smtp"], timeout=10) as s:
        s.sendmail("a@example.com", ["tester@example.org"], b"Subject: back\r\n\r\n" + m + b"\r\n")
    stack.wait_for_mail("tester@example.org", m)


def test_authd_stopped(stack):
    stack.stop("authd")
    try:
        r = Raw(stack.ports["smtp"])
        r.reply()
        r.cmd(b"EHLO x\r\n")
        plain = base64.b64encode(b"\0bob@example.org\0bob-secret")
        rep = r.cmd(b"AUTH PLAIN " + plain + b"\r\n")
        assert rep == b"454 4.7.0 Temporary authentication failure\r\n", rep
        r.close()
    finally:
        stack.start("authd")


def test_pflogsumm_reads_our_log(stack):
    subprocess.run([os.path.join(SRC, "scripts", "deps"), "pflogsumm"], check=True,
                   timeout=600, capture_output=True)
    out = subprocess.run(["pflogsumm", "--syslog-name=tern", stack.logs["smtpd"]],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = out.stdout

    def count(label):
        for line in report.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == label and parts[0].isdigit():
                return int(parts[0])
        raise AssertionError("no %r line in:\n%s" % (label, report))

    assert count("received") >= 5, report
    assert count("delivered") >= 5, report
    assert count("rejected") >= 2, report
    assert "Relay access denied" in report


def test_fail2ban_postfix_filter_matches(stack):
    """fail2ban's stock postfix filter, with tern's program name (smtpd/fail2ban/), finds
    the relay reject, the unknown user, the SASL failure and "too many errors" in our log,
    and (as upstream intends) not the authd-down line."""
    subprocess.run([os.path.join(SRC, "scripts", "deps"), "fail2ban"], check=True,
                   timeout=600, capture_output=True)
    r = Raw(stack.ports["smtp"])
    r.reply()
    for _ in range(25):
        r.send(b"BOGUS\r\n")
    data = b""
    while b"421 " not in data:
        chunk = r.s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert b"421 4.7.0 mx.test.example Error: too many errors\r\n" in data
    r.close()
    fdir = os.path.join(stack.tmp, "filter.d")
    os.makedirs(fdir, exist_ok=True)
    for name in ("postfix.conf", "common.conf"):
        shutil.copy(os.path.join("/etc/fail2ban/filter.d", name), fdir)
    shutil.copy(os.path.join(SRC, "smtpd", "fail2ban", "tern-smtpd.conf"), fdir)
    log = stack.log("smtpd")
    wanted = {
        "Relay access denied;": 1, "Recipient address rejected: User unknown": 1,
        "SASL PLAIN authentication failed: ": 1,
        "too many errors after": 1,
    }
    for text in wanted:
        assert text in log, text
    out = subprocess.run(["fail2ban-regex", "--print-all-matched", stack.logs["smtpd"],
                          os.path.join(fdir, "tern-smtpd.conf") + "[mode=aggressive]"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    matched = [l for l in out.stdout.splitlines() if l.startswith("|  ") and "tern/smtpd[" in l]
    for text in wanted:
        assert any(text in l for l in matched), (text, out.stdout[-3000:])
    assert not any("Connection lost to authentication server" in l for l in matched)


def test_sighup_reload_keeps_serving(stack):
    m = marker()
    stack.procs["smtpd"].send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in stack.log("smtpd"), 10, "reload log line")
    with smtplib.SMTP_SSL("127.0.0.1", stack.ports["submissions"], timeout=10,
                          context=stack.client_context()) as s:
        s.login("bob@example.org", "bob-secret")
        s.sendmail("bob@example.org", ["tester@example.org"], b"Subject: hup\r\n\r\n" + m + b"\r\n")
    stack.wait_for_mail("tester@example.org", m)


def test_smtpd_survived_everything(stack):
    # Runs last: no earlier test may have crashed the daemon.
    assert stack.procs["smtpd"].poll() is None, stack.log("smtpd")[-3000:]
    log = stack.log("smtpd")
    assert "panic:" not in log and "Sanitizer" not in log
