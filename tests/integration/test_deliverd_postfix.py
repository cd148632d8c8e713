"""A real Postfix (Debian) delivering through lmtp:unix: to tern-deliverd: a private
Postfix instance (own config, queue and log, loopback SMTP on a free port) with
virtual_transport pointing at deliverd's LMTP socket. The proof is the Maildir content
(our bytes after Postfix's Received line, with deliverd's Return-Path and Delivered-To)
and Postfix's own `postfix/lmtp[...]: ... status=sent (250 2.0.0 ...)` log line."""
import os
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from deliverd_harness import AUTHD, DELIVERD, SOURCE, Env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def postfix_env():
    if os.getuid() != 0:
        pytest.skip("a private Postfix instance needs root to start")
    for b in (AUTHD, DELIVERD):
        if not b.exists():
            pytest.fail(f"{b} is not built")
    r = subprocess.run([str(SOURCE / "scripts" / "deps"), "postfix"], capture_output=True,
                       text=True, timeout=600, check=False)
    if r.returncode != 0 or not os.path.exists("/usr/sbin/postfix"):
        pytest.skip(f"postfix not installable: {r.stderr[-300:]}")
    # Postfix's post-install refuses a config directory under /tmp here; /var/tmp works.
    # (As root, Env makes its own directory under base.)
    env = Env(None, extra_deliverd="lmtp_allowed_users = postfix\n", base="/var/tmp")
    top = env.tmp
    conf = top / "postfix"
    conf.mkdir()
    port = free_port()
    (conf / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {top}/pf-queue
data_directory = {top}/pf-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {top}/postfix.log
myhostname = mx.example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = example.test
virtual_mailbox_maps = static:ok
virtual_transport = lmtp:unix:{env.lmtp}
smtpd_relay_restrictions = permit_mynetworks, reject
""")
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    out = []
    for line in master:
        fields = line.split()
        if line.startswith("smtp ") and " inet " in line:
            line = f"127.0.0.1:{port} inet n - n - - smtpd"
        elif line[:1].isalnum() and len(fields) >= 8:
            # No chroot (Debian chroots most services): the LMTP socket path is absolute.
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    (top / "pf-queue").mkdir()
    (top / "pf-data").mkdir()
    shutil.chown(top / "pf-data", user="postfix")
    env.start()
    os.chmod(env.run, 0o755)
    menv = dict(os.environ, MAIL_CONFIG=str(conf))
    subprocess.run(["postfix", "-c", str(conf), "post-install", "create-missing"], env=menv,
                   capture_output=True, text=True, timeout=120, check=False)
    r = subprocess.run(["postfix", "-c", str(conf), "start"], env=menv, capture_output=True,
                       text=True, timeout=120, check=False)
    if r.returncode != 0:
        env.stop()
        env.cleanup()
        log = top / "postfix.log"
        pytest.fail(f"postfix start: rc={r.returncode} {r.stdout} {r.stderr} "
                    f"{log.read_text()[-500:] if log.exists() else ''}")
    deadline = time.monotonic() + 30
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    yield env, port, top
    subprocess.run(["postfix", "-c", str(conf), "stop"], env=menv, capture_output=True,
                   timeout=120, check=False)
    env.stop()
    env.cleanup()


def test_postfix_delivers_through_lmtp(postfix_env):
    env, port, top = postfix_env
    body = (b"From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: via postfix\r\n"
            b"Message-ID: <pf-1@remote.test>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"
            b"First line.\r\n.dot line\r\nLast line.\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        refused = c.sendmail("sender@remote.test",
                             ["alice@example.test", "bob@example.test", "nobody@example.test"],
                             body)
        assert refused == {}  # Postfix accepts, deliverd decides per recipient.
    deadline = time.monotonic() + 60
    for _ in range(600):
        if env.messages("alice@example.test") and env.messages("bob@example.test"):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for user in ("alice@example.test", "bob@example.test"):
        msgs = env.messages(user)
        assert len(msgs) == 1, (user, env.log_text()[-2000:])
        m = msgs[0]
        prefix = b"Return-Path: <sender@remote.test>\r\nDelivered-To: " + user.encode() + b"\r\n"
        assert m.startswith(prefix)
        rest = m[len(prefix):]
        # Postfix put its Received line first; the rest is byte for byte what we sent.
        assert rest.startswith(b"Received: ")
        assert rest.endswith(body), rest[-400:]
    log = ""
    for _ in range(100):
        log = (top / "postfix.log").read_text(errors="replace")
        if "to=<nobody@example.test>" in log and log.count("status=sent") >= 2:
            break
        time.sleep(0.1)
    assert "postfix/lmtp[" in log
    assert "to=<alice@example.test>" in log and "status=sent (250 2.0.0 <alice@example.test>" in log
    # The unknown user is refused by deliverd at RCPT: Postfix bounces it (5.1.1).
    assert "to=<nobody@example.test>" in log and "status=bounced" in log and "5.1.1" in log
