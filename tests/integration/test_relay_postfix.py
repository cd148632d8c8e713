"""tern-deliverd's relay client against a real Postfix (Debian) as the receiving MX: a
private Postfix instance (own config, queue and log; smtpd on a free loopback port with
STARTTLS; bob.test delivered by Postfix's virtual agent into Maildirs). deliverd finds
Postfix through MX records served by the test's DNS responder. The proof is Postfix's own
log (a TLS connection from us, status=sent into the Maildir), the bytes in its Maildir, and
our DSN for a recipient Postfix rejects, delivered by Postfix to the sender's Maildir."""
import email
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_relay import BODY, DELIVERD, DNS, Deliverd, RUN_AS, give, wait_for

SOURCE = Path(os.environ.get("TERN_SOURCE_DIR", "."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def postfix():
    if os.getuid() != 0:
        pytest.skip("a private Postfix instance needs root to start")
    if not DELIVERD.exists():
        pytest.fail(f"{DELIVERD} is not built")
    r = subprocess.run([str(SOURCE / "scripts" / "deps"), "postfix"], capture_output=True,
                       text=True, timeout=600, check=False)
    if r.returncode != 0 or not os.path.exists("/usr/sbin/postfix"):
        pytest.skip(f"postfix not installable: {r.stderr[-300:]}")
    # Postfix's post-install refuses a config directory under /tmp here; /var/tmp works.
    top = Path(tempfile.mkdtemp(prefix="tern-relay-pf-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    conf = top / "postfix"
    conf.mkdir()
    port = free_port()
    key, crt = top / "pf.key", top / "pf.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=mx.bob.test"],
                   check=True, capture_output=True, timeout=60)
    vmail = top / "vmail"
    vmail.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
    (conf / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {top}/pf-queue
data_directory = {top}/pf-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {top}/postfix.log
myhostname = mx.bob.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_tls_cert_file = {crt}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
virtual_mailbox_domains = bob.test
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = inline:{{ bob@bob.test=bob/, sam@bob.test=sam/ }}
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
smtpd_relay_restrictions = permit_mynetworks, reject
""")
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith("smtp ") and " inet " in line:
            line = f"127.0.0.1:{port} inet n - n - - smtpd"
        elif line[:1].isalnum() and len(fields) >= 8:
            fields[4] = "n"  # no chroot: our private paths are absolute
            line = " ".join(fields)
        out.append(line)
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    (top / "pf-queue").mkdir()
    (top / "pf-data").mkdir()
    shutil.chown(top / "pf-data", user="postfix")
    menv = dict(os.environ, MAIL_CONFIG=str(conf))
    subprocess.run(["postfix", "-c", str(conf), "post-install", "create-missing"], env=menv,
                   capture_output=True, text=True, timeout=120, check=False)
    r = subprocess.run(["postfix", "-c", str(conf), "start"], env=menv, capture_output=True,
                       text=True, timeout=120, check=False)
    if r.returncode != 0:
        log = top / "postfix.log"
        shutil.rmtree(top, ignore_errors=True)
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
    yield top, port, vmail
    subprocess.run(["postfix", "-c", str(conf), "stop"], env=menv, capture_output=True,
                   timeout=120, check=False)
    shutil.rmtree(top, ignore_errors=True)


def maildir_files(vmail, user):
    new = vmail / user / "new"
    return sorted(new.iterdir()) if new.exists() else []


def test_relay_to_postfix_with_starttls_and_dsn(postfix):
    top, port, vmail = postfix
    dns = DNS({"bob.test": {"MX": [(10, "mx.bob.test")]}, "mx.bob.test": {"A": ["127.0.0.1"]}})
    root = top / "tern"
    root.mkdir()
    os.chmod(root, 0o755)
    d = Deliverd(root, "", dns.port, port)
    try:
        d.start()
        d.lmtp_send("sam@bob.test", ["bob@bob.test", "nobody@bob.test"], BODY)
        wait_for(lambda: maildir_files(vmail, "bob"), timeout=60, what="Postfix delivery")
        got = maildir_files(vmail, "bob")[0].read_bytes()
        # Postfix adds Return-Path/Delivered-To/Received (and the Message-ID and Date our
        # test message lacks); our header lines and the body arrive unchanged.
        ours = BODY.replace(b"\r\n", b"\n")
        our_head, our_body = ours.split(b"\n\n", 1)
        head, body = got.split(b"\n\n", 1)
        assert body == our_body, got
        assert all(line in head.split(b"\n") for line in our_head.split(b"\n")), got
        assert b"Return-Path: <sam@bob.test>" in got
        assert b"with ESMTPS" in got  # Postfix says: the message came over TLS
        log = wait_for(lambda: "status=sent" in d.logtext() and d.logtext(), what="our log")
        assert re.search(r"to=<bob@bob\.test>, relay=mx\.bob\.test\[127\.0\.0\.1\]:%d, "
                         r"delay=[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: "
                         r"queued as \w+\)" % port, log), log
        assert re.search(r"to=<nobody@bob\.test>, .*dsn=5\.1\.1, status=bounced \(host "
                         r"mx\.bob\.test\[127\.0\.0\.1\] said: 550 5\.1\.1 ", log), log
        pflog = (top / "postfix.log").read_text()
        assert re.search(r"postfix/smtpd\[\d+\]: Anonymous TLS connection established from "
                         r"\S+\[127\.0\.0\.1\]", pflog), pflog[-2000:]
        # Our DSN for nobody@ reaches the sender's Maildir through Postfix.
        wait_for(lambda: maildir_files(vmail, "sam"), timeout=60, what="the DSN at Postfix")
        dsn = email.message_from_bytes(maildir_files(vmail, "sam")[0].read_bytes())
        assert dsn.get_content_type() == "multipart/report"
        assert dsn["Return-Path"] == "<>"
        fields = dsn.get_payload()[1].get_payload()
        assert fields[1]["Final-Recipient"] == "rfc822; nobody@bob.test"
        assert fields[1]["Status"] == "5.1.1"
        wait_for(lambda: d.queued() == [], what="queue empty")
    finally:
        if d.proc is not None:
            d.stop()
        dns.close()
