"""The client libraries against the real thing: Debian's Dovecot auth service. ternctl's
`auth test` (libcommon/auth/auth_client) and `user lookup` (userdb_client) are pointed at
Dovecot's auth-client and auth-userdb sockets, proving the wire format of our clients
against Dovecot's server, not just against our own. Needs root (Dovecot's master) and
installs dovecot-core with scripts/deps; skips with the reason otherwise."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from authd_fixture import SHA512_S3CRET, build_dir

SOURCE = os.environ.get("TERN_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.fixture
def dovecot():
    if os.geteuid() != 0:
        pytest.skip("Dovecot's master must be started as root; this test runs as uid %d"
                    % os.geteuid())
    r = subprocess.run([os.path.join(SOURCE, "scripts", "deps"), "dovecot-core"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not os.path.exists("/usr/sbin/dovecot"):
        pytest.skip("dovecot-core cannot be installed: " + r.stderr.strip()[-500:])
    tmp = tempfile.mkdtemp(prefix="tdv")
    os.chmod(tmp, 0o755)
    base = os.path.join(tmp, "run")
    os.mkdir(base)
    passwd = os.path.join(tmp, "passwd")
    with open(passwd, "w") as f:
        f.write("bob@example.test:%s::::/srv/mail/example.test/bob::"
                "userdb_quota_rule=*:bytes=1000\n" % SHA512_S3CRET)
    os.chmod(passwd, 0o644)
    conf = os.path.join(tmp, "dovecot.conf")
    log = os.path.join(tmp, "dovecot.log")
    with open(conf, "w") as f:
        f.write(f"""base_dir = {base}
state_dir = {tmp}/state
protocols =
log_path = {log}
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
  default_fields = uid=nobody gid=nogroup
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
""")
    proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(base, "auth-userdb")):
            assert proc.poll() is None and time.monotonic() < deadline, open(log).read()
            time.sleep(0.05)
        tern_conf = os.path.join(tmp, "tern.conf")
        with open(tern_conf, "w") as f:
            f.write(f"domains = example.test\n[authd]\n"
                    f"auth_socket = {base}/auth-client\nuserdb_socket = {base}/auth-userdb\n")
        yield tern_conf
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


def ternctl(conf, *args):
    return subprocess.run([os.path.join(build_dir(), "ternctl", "ternctl"), "-c", conf, *args],
                          capture_output=True, text=True, timeout=60)


def test_auth_client_against_dovecot(dovecot):
    r = ternctl(dovecot, "auth", "test", "bob@example.test", "s3cret pass")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "auth succeeded: user=bob@example.test\n"
    r = ternctl(dovecot, "auth", "test", "bob@example.test", "wrong")
    assert r.returncode == 77, r.stdout + r.stderr


def test_userdb_client_against_dovecot(dovecot):
    r = ternctl(dovecot, "user", "lookup", "bob@example.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "home=/srv/mail/example.test/bob\n" in r.stdout
    r = ternctl(dovecot, "user", "lookup", "nobody@example.test")
    assert r.returncode == 67, r.stdout + r.stderr
