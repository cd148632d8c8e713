"""Starting a real tern-authd for integration tests: a temp run dir with a config and a
passwd-file, the process, and a line-oriented client for its sockets. Every wait is
bounded; the process is stopped (by pid) when the test ends."""
import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SHA512_S3CRET = ("{SHA512-CRYPT}$6$WxyRe4xjBnjCdaLu$amWAVzyyDlHMuGCsGUxpdjMcnLfYNog6He6AGgRYtQ8/"
                 "8K3NVjiPWjFnPM9unJf5aOjdehIktyeGMSjtqWL421")  # "s3cret pass", doveadm pw

DEFAULT_PASSWD = ("bob@example.test:" + SHA512_S3CRET + "::::::userdb_quota_rule=*:bytes=5M\n"
                  "alice@example.test:{PLAIN}alicepw\n")


def build_dir():
    return os.environ.get("TERN_BUILD_DIR") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build")


def b64(data):
    return base64.b64encode(data).decode()


class Authd:
    def __init__(self, passwd=DEFAULT_PASSWD, extra_conf=""):
        # Short path: Unix socket names are capped at 107 bytes.
        self.dir = tempfile.mkdtemp(prefix="tad")
        os.chmod(self.dir, 0o755)  # Postfix's smtpd (user postfix) must reach the socket
        self.passwd = os.path.join(self.dir, "passwd")
        self.auth = os.path.join(self.dir, "auth")
        self.userdb = os.path.join(self.dir, "auth-userdb")
        self.log = os.path.join(self.dir, "authd.log")
        with open(self.passwd, "w") as f:
            f.write(passwd)
        os.chmod(self.passwd, 0o644)
        self.conf = os.path.join(self.dir, "tern.conf")
        # As root, authd drops to an unprivileged user (as in production) and must still
        # be able to remove its sockets at exit.
        if os.geteuid() == 0:
            user = "nobody"
            shutil.chown(self.dir, "nobody")
        else:
            user = pwd.getpwuid(os.geteuid()).pw_name
        with open(self.conf, "w") as f:
            f.write(f"run_dir = {self.dir}\npasswd_file = {self.passwd}\n"
                    f"domains = example.test\nmail_root = {self.dir}/mail\n"
                    f"log_target = stderr\nauth_user = {user}\n"
                    f"[authd]\nauth_failure_delay = 100ms\nauth_failure_delay_max = 400ms\n"
                    + extra_conf)
        self.proc = None

    def start(self):
        binary = os.path.join(build_dir(), "authd", "tern-authd")
        self.logf = open(self.log, "ab")
        logged_before = self.logf.tell()
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=self.logf,
                                     stderr=self.logf, stdin=subprocess.DEVNULL)
        # Ready once it says it listens: the socket files exist from bind() on, but get
        # their owner, group and mode only after it (a test that stats them must wait).
        deadline = time.monotonic() + 15
        while not (os.path.exists(self.auth) and os.path.exists(self.userdb) and
                   "listening on" in self.log_text()[logged_before:]):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tern-authd did not start:\n" + self.log_text())
            time.sleep(0.02)
        return self

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None:
            self.logf.close()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class LineClient:
    """A raw client for the auth or userdb socket."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; pending: %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def until(self, prefix, limit=100):
        lines = []
        for _ in range(limit):
            lines.append(self.line())
            if lines[-1].startswith(prefix):
                return lines
        raise AssertionError("no %r in %r" % (prefix, lines))

    def close(self):
        self.sock.close()
