"""Interop with a real Postfix from Debian: a private Postfix instance (its own
config_directory, queue_directory and data_directory in a temp dir, smtpd on a loopback
port) with smtpd_sasl_type = dovecot and smtpd_sasl_path at tern-authd's auth socket.
Python's smtplib then authenticates with AUTH PLAIN and AUTH LOGIN: the right password
gives 235, a wrong one or an unknown user 535. Postfix is installed by scripts/deps and
stopped with `postfix -c DIR stop` whatever happens."""
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

from authd_fixture import Authd

SOURCE = os.environ.get("TERN_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def ensure_postfix():
    if os.geteuid() != 0:
        pytest.skip("Postfix's master(8) must be started as root; this test runs as uid %d"
                    % os.geteuid())
    r = subprocess.run([os.path.join(SOURCE, "scripts", "deps"), "postfix"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.path.exists("/usr/sbin/postfix"):
        pytest.skip("postfix cannot be installed: %s" % (r.stderr.strip()[-500:] or "no /usr/sbin/postfix"))
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        pytest.skip("postfix is installed but its 'postfix' user is missing")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postfix:
    def __init__(self, sasl_path):
        self.dir = tempfile.mkdtemp(prefix="tpf")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.maillog = os.path.join(self.dir, "maillog")
        for d in (self.etc, self.spool, self.data):
            os.mkdir(d, 0o755)
        shutil.chown(self.data, "postfix")
        self.port = free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = tern-test.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sasl_path}
maillog_file = {self.maillog}
maillog_file_prefixes = {self.dir}
""")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
                    "postlog unix-dgram n - n - 1 postlogd\n"
                    "anvil unix - - n - 1 anvil\n")

    def postfix(self, *args):
        return subprocess.run(["/usr/sbin/postfix", "-c", self.etc, *args],
                              capture_output=True, text=True, timeout=120)

    def start(self):
        r = self.postfix("start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("postfix did not start (%d): %s %s\n%s"
                           % (r.returncode, r.stdout, r.stderr, self.log_text()))

    def log_text(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        self.postfix("stop")
        # master(8) exits after its children; wait for its lock to go (bounded).
        deadline = time.monotonic() + 20
        pidfile = os.path.join(self.spool, "pid", "master.pid")
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def stack():
    ensure_postfix()
    authd = Authd().start()
    postfix = None
    try:
        postfix = Postfix(authd.auth)
        postfix.start()
        yield authd, postfix
    finally:
        if postfix is not None:
            postfix.cleanup()
        authd.cleanup()


def smtp_auth(port, mech, user, password):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        s.ehlo("client.example")
        assert s.has_extn("auth"), s.esmtp_features
        s.user, s.password = user, password
        try:
            code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code
    finally:
        s.close()


def test_postfix_auth_plain_and_login(stack):
    authd, postfix = stack
    s = smtplib.SMTP("127.0.0.1", postfix.port, timeout=60)
    s.ehlo("client.example")
    # Postfix learnt the mechanisms from authd's handshake.
    assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
    s.close()
    for mech in ("PLAIN", "LOGIN"):
        assert smtp_auth(postfix.port, mech, "bob@example.test", "s3cret pass") == 235
        assert smtp_auth(postfix.port, mech, "alice", "alicepw") == 235
        assert smtp_auth(postfix.port, mech, "bob@example.test", "wrong") == 535
        assert smtp_auth(postfix.port, mech, "nobody@example.test", "s3cret pass") == 535
    log = postfix.log_text()
    assert "postfix/smtpd" in log
    assert "SASL PLAIN authentication failed" in log and "SASL LOGIN authentication failed" in log
    alog = authd.log_text()
    assert "login: user=<bob@example.test>, method=PLAIN, rip=127.0.0.1" in alog
    assert "passwd-file(nobody@example.test,127.0.0.1): unknown user" in alog
