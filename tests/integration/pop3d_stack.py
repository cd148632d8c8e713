"""Starts tern-authd, tern-deliverd and tern-pop3d from the build tree with a generated
config in a temporary directory (loopback ports, Unix sockets in the temp dir), for the
pop3d integration tests. Every wait is bounded by count and time."""
import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SRC = Path(os.environ.get("TERN_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("TERN_BUILD_DIR", SRC / "build"))
AUTHD = BUILD / "authd" / "tern-authd"
DELIVERD = BUILD / "deliverd" / "tern-deliverd"
POP3D = BUILD / "pop3d" / "tern-pop3d"

DOMAIN = "example.test"
USERS = {"alice": "secret", "bob": "hunter2"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory):
    cert, key = directory / "tern.pem", directory / "tern.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def wait_for(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# As root the daemons run as an unprivileged account from the start (the daemon frame
# refuses to drop privileges to root), so the whole tree must be theirs.
RUN_AS = "nobody" if os.geteuid() == 0 else getpass.getuser()


class Stack:
    """One tern installation in its own temp dir (traversable by RUN_AS, unlike pytest's
    per-user root). start() runs the daemons; stop() ends them and removes the dir."""

    def __init__(self, tmp=None, extra_pop3d="", with_deliverd=False, users=None):
        self.tmp = Path(tempfile.mkdtemp(prefix="tern-pop3d-", dir=tmp))
        os.chmod(self.tmp, 0o755)
        self.run = self.tmp / "run"
        self.mail = self.tmp / "mail"
        self.state = self.tmp / "state"
        for d in (self.run, self.mail, self.state):
            d.mkdir(mode=0o700, exist_ok=True)
        self.cert, self.key = make_cert(self.tmp)
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self.procs = {}
        self.logs = {}
        self.with_deliverd = with_deliverd
        self.users = dict(users or USERS)
        me = RUN_AS
        passwd = self.tmp / "passwd"
        passwd.write_text("".join(f"{u}@{DOMAIN}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        self.conf = self.tmp / "tern.conf"
        self.conf.write_text(
            f"domains = {DOMAIN}\n"
            f"run_dir = {self.run}\nmail_root = {self.mail}\nstate_dir = {self.state}\n"
            f"passwd_file = {passwd}\ntls_cert = {self.cert}\ntls_key = {self.key}\n"
            f"log_target = stderr\n"
            f"default_user = {me}\nauth_user = {me}\nvmail_user = {me}\n"
            f"[authd]\nauth_failure_delay = 0\nauth_failure_delay_max = 0\n"
            f"[pop3d]\npop3_listen = 127.0.0.1:{self.pop3_port}\n"
            f"pop3s_listen = 127.0.0.1:{self.pop3s_port}\n"
            f"pop3_auth_failure_delay = 1s\n{extra_pop3d}\n")
        for u in self.users:
            for sub in ("cur", "new", "tmp"):
                (self.maildir(u) / sub).mkdir(parents=True, exist_ok=True)
        self.chown()

    def chown(self, path=None):
        """Gives the tree (or one path) to the daemons' account when running as root."""
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam(RUN_AS)
        paths = [Path(path)] if path else [self.tmp, *self.tmp.rglob("*")]
        for p in paths:
            os.lchown(p, pw.pw_uid, pw.pw_gid)

    def maildir(self, user):
        return self.mail / DOMAIN / user

    def add_message(self, user, name, content, sub="new"):
        path = self.maildir(user) / sub / name
        path.write_bytes(content)
        self.chown(path)
        return path

    def files(self, user, sub):
        return sorted(p.name for p in (self.maildir(user) / sub).iterdir())

    def _start(self, name, binary):
        log = open(self.tmp / f"{name}.log", "wb")
        self.logs[name] = self.tmp / f"{name}.log"
        kwargs = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.procs[name] = subprocess.Popen([str(binary), "-c", str(self.conf)],
                                            stdout=log, stderr=log, **kwargs)
        log.close()

    def start_authd(self):
        self._start("authd", AUTHD)
        wait_for(lambda: (self.run / "auth").exists() and (self.run / "auth-userdb").exists(),
                 "authd sockets")

    def start(self):
        self.start_authd()
        if self.with_deliverd:
            self._start("deliverd", DELIVERD)
            wait_for(lambda: (self.run / "lmtp").exists(), "deliverd socket")
        self._start("pop3d", POP3D)
        wait_for(lambda: port_open(self.pop3_port) and port_open(self.pop3s_port),
                 "pop3d listeners")
        return self

    def stop_one(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)

    def stop(self):
        for name in list(self.procs):
            self.stop_one(name)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self, name="pop3d"):
        return self.logs[name].read_text(errors="replace")
