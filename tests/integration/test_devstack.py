"""scripts/devstack: start the stack in a temp dir, check what it wrote and that every
built daemon answers, then stop it and check that no process is left.

Works with any subset of daemons built (none included): the checks for a daemon run only
when its binary exists in TERN_BUILD_DIR.
"""

import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

SOURCE = os.environ.get("TERN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TERN_BUILD_DIR") or os.path.join(SOURCE, "build")
DEVSTACK = os.path.join(SOURCE, "scripts", "devstack")
DAEMONS = ["authd", "deliverd", "smtpd", "imapd", "pop3d"]
STANDARD_PORTS = [25, 587, 465, 143, 993, 110, 995, 24, 4190]
IO_TIMEOUT = 10.0

REQUIRED_VARS = [
    "TERN_SMTP_PORT", "TERN_SUBMISSION_PORT", "TERN_SUBMISSIONS_PORT", "TERN_IMAP_PORT",
    "TERN_IMAPS_PORT", "TERN_POP3_PORT", "TERN_POP3S_PORT", "TERN_CONF", "TERN_RUN_DIR",
    "TERN_MAIL_ROOT", "TERN_LOG_DIR", "TERN_CA_CERT", "TERN_DOMAIN", "TERN_USERS",
]


def built(daemon):
    return os.access(os.path.join(BUILD, daemon, "tern-" + daemon), os.X_OK)


def devstack(*args, check=True):
    p = subprocess.run([DEVSTACK, *args], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("devstack %s failed (%d):\n%s%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def ports_free(base):
    for port in STANDARD_PORTS:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", base + port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pids_of_conf(conf):
    """Live (non-zombie) processes whose command line names this stack's tern.conf."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if conf.encode() in argv and state not in (b"Z", b"X"):
            out.append(int(entry))
    return out


@pytest.fixture(scope="module")
def stack():
    # Not pytest's tmp_path: as root the daemons drop privileges and must be able to
    # reach the stack's files, and /tmp/pytest-of-root is mode 0700.
    directory = tempfile.mkdtemp(prefix="tern-devstack-test-")
    rng = random.Random()
    started = None
    for _attempt in range(10):
        base = rng.randrange(20000, 60000 - 5000, 100)
        if not ports_free(base):
            continue
        p = devstack("start", "--dir", directory, "--port-base", str(base), "--build", BUILD,
                     check=False)
        if p.returncode == 0:
            started = p
            break
        if "already in use" not in p.stderr:
            devstack("stop", "--dir", directory, check=False)
            pytest.fail("devstack start failed:\n%s%s" % (p.stdout, p.stderr))
    assert started is not None, "no free port base found in 10 tries"
    env = read_env(os.path.join(directory, "stack.env"))
    yield {"dir": directory, "env": env, "base": base}
    devstack("stop", "--dir", directory, check=False)
    shutil.rmtree(directory, ignore_errors=True)


def read_env(path):
    """Sources the file in a shell (so it must be valid shell) and returns its TERN_ vars."""
    p = subprocess.run(["/bin/sh", "-c", 'set -a; . "$1"; env', "sh", path],
                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    env = {}
    for line in p.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("TERN_"):
            env[key] = value
    return env


def users(env):
    out = []
    for item in env["TERN_USERS"].split():
        login, _, password = item.partition(":")
        out.append((login, password))
    return out


def test_stack_env_has_every_variable(stack):
    env = stack["env"]
    for var in REQUIRED_VARS:
        assert env.get(var), "%s missing or empty in stack.env" % var
    base = stack["base"]
    assert int(env["TERN_SMTP_PORT"]) == base + 25
    assert int(env["TERN_SUBMISSION_PORT"]) == base + 587
    assert int(env["TERN_SUBMISSIONS_PORT"]) == base + 465
    assert int(env["TERN_IMAP_PORT"]) == base + 143
    assert int(env["TERN_IMAPS_PORT"]) == base + 993
    assert int(env["TERN_POP3_PORT"]) == base + 110
    assert int(env["TERN_POP3S_PORT"]) == base + 995
    assert env["TERN_DOMAIN"] == "example.test"
    assert [u for u, _ in users(env)] == ["alice@example.test", "bob@example.test"]
    for _user, password in users(env):
        assert len(password) >= 12
    for var in ("TERN_CONF", "TERN_CA_CERT"):
        assert os.path.isfile(env[var]), env[var]
    for var in ("TERN_RUN_DIR", "TERN_MAIL_ROOT", "TERN_LOG_DIR"):
        assert os.path.isdir(env[var]), env[var]


def test_config_is_loopback_only(stack):
    with open(stack["env"]["TERN_CONF"], encoding="utf-8") as f:
        conf = f.read()
    listens = [line for line in conf.splitlines() if line.split("=")[0].strip().endswith("_listen")]
    assert listens, "no listener keys in tern.conf"
    for line in listens:
        for item in line.split("=", 1)[1].replace(",", " ").split():
            assert item.startswith("127.0.0.1:"), line
    assert "log_target = stderr" in conf


def test_certificate_verifies_with_the_ca(stack):
    env = stack["env"]
    cert = os.path.join(stack["dir"], "tls", "server.pem")
    p = subprocess.run(["openssl", "verify", "-CAfile", env["TERN_CA_CERT"], cert],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and ": OK" in p.stdout, p.stdout + p.stderr
    for host in ("localhost", "example.test"):
        p = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-checkhost", host],
                           capture_output=True, text=True, timeout=30)
        assert "does match" in p.stdout, p.stdout + p.stderr
    # A certificate that the CA did not sign must not verify (the check can fail).
    p = subprocess.run(["openssl", "verify", "-CAfile", cert, env["TERN_CA_CERT"]],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0


def test_passwd_file_has_alice_and_bob(stack):
    env = stack["env"]
    with open(os.path.join(stack["dir"], "passwd"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split(":") for line in f if line.strip()]
    by_user = {row[0]: row for row in rows}
    for login, password in users(env):
        row = by_user[login]
        assert len(row) >= 7, row
        assert row[1].startswith("{SHA512-CRYPT}$6$"), row[1]
        hashed = row[1][len("{SHA512-CRYPT}"):]
        salt = hashed.split("$")[2]
        for guess, should_match in ((password, True), (password + "x", False)):
            p = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
                               input=guess + "\n", capture_output=True, text=True, timeout=30)
            assert (p.stdout.strip() == hashed) == should_match
        assert row[5].startswith(env["TERN_MAIL_ROOT"]), row


def recv_until(sock, done, limit=65536):
    """Reads until done(data) or IO_TIMEOUT; bounded by size and time."""
    data = b""
    deadline = time.monotonic() + IO_TIMEOUT
    while not done(data):
        left = deadline - time.monotonic()
        assert left > 0, "timed out; got %r" % data
        assert len(data) < limit, "reply too long: %r" % data[:200]
        sock.settimeout(left)
        chunk = sock.recv(4096)
        assert chunk, "connection closed; got %r" % data
        data += chunk
    return data


def greeting(port, prefix, tls_ca=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock = raw
    try:
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
        data = recv_until(sock, lambda d: b"\r\n" in d)
        assert data.startswith(prefix), data
    finally:
        sock.close()


def test_authd_answers_the_handshake(stack):
    if not built("authd"):
        pytest.skip("tern-authd is not built")
    env = stack["env"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(IO_TIMEOUT)
    sock.connect(env["TERN_AUTH_SOCKET"])
    try:
        sock.sendall(b"VERSION\t1\t0\nCPID\t%d\n" % os.getpid())
        data = recv_until(sock, lambda d: d.startswith(b"DONE\n") or b"\nDONE\n" in d)
    finally:
        sock.close()
    lines = data.decode("ascii", "replace").split("\n")
    assert lines[0].startswith("VERSION\t1\t"), lines
    assert any(line.startswith("MECH\tPLAIN") for line in lines), lines
    assert any(line.startswith("SPID\t") for line in lines), lines


def test_deliverd_greets_on_lmtp(stack):
    if not built("deliverd"):
        pytest.skip("tern-deliverd is not built")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(IO_TIMEOUT)
    sock.connect(stack["env"]["TERN_LMTP_SOCKET"])
    try:
        assert recv_until(sock, lambda d: b"\r\n" in d).startswith(b"220")
    finally:
        sock.close()


@pytest.mark.parametrize("daemon,var,prefix,tls", [
    ("smtpd", "TERN_SMTP_PORT", b"220", False),
    ("smtpd", "TERN_SUBMISSION_PORT", b"220", False),
    ("smtpd", "TERN_SUBMISSIONS_PORT", b"220", True),
    ("imapd", "TERN_IMAP_PORT", b"* OK", False),
    ("imapd", "TERN_IMAPS_PORT", b"* OK", True),
    ("pop3d", "TERN_POP3_PORT", b"+OK", False),
    ("pop3d", "TERN_POP3S_PORT", b"+OK", True),
])
def test_daemon_greets(stack, daemon, var, prefix, tls):
    if not built(daemon):
        pytest.skip("tern-%s is not built" % daemon)
    env = stack["env"]
    greeting(int(env[var]), prefix, env["TERN_CA_CERT"] if tls else None)


def test_status_and_double_start(stack):
    expected = [d for d in DAEMONS if built(d)]
    assert stack["env"].get("TERN_DAEMONS", "").split() == expected
    p = devstack("status", "--dir", stack["dir"], "--build", BUILD, check=False)
    for daemon in expected:
        assert "%-9s running" % daemon in p.stdout, p.stdout
    assert p.returncode == (0 if expected else 3), p.stdout
    if expected:
        p = devstack("start", "--dir", stack["dir"], "--build", BUILD, check=False)
        assert p.returncode != 0 and "already running" in p.stderr, p.stderr


def test_daemons_drop_privileges_as_root(stack):
    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    pids = pids_of_conf(stack["env"]["TERN_CONF"])
    if not pids:
        pytest.skip("no daemon is built")
    for pid in pids:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        assert "0" not in uids, "pid %d still has uid 0: %s" % (pid, uids)


def test_stop_leaves_no_process(stack):
    conf = stack["env"]["TERN_CONF"]
    before = pids_of_conf(conf)
    assert len(before) == len([d for d in DAEMONS if built(d)])
    devstack("stop", "--dir", stack["dir"])
    assert pids_of_conf(conf) == []
    assert not [f for f in os.listdir(os.path.join(stack["dir"], "pid")) if f.endswith(".pid")]
    # The stack starts again with the same users (passwords are kept in DIR).
    p = devstack("start", "--dir", stack["dir"], "--build", BUILD, check=False)
    assert p.returncode == 0, p.stderr
    again = read_env(os.path.join(stack["dir"], "stack.env"))
    assert again["TERN_USERS"] == stack["env"]["TERN_USERS"]
    assert again["TERN_SMTP_PORT"] == stack["env"]["TERN_SMTP_PORT"]
    devstack("stop", "--dir", stack["dir"])
    assert pids_of_conf(conf) == []
