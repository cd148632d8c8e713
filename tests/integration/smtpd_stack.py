"""A private tern mail stack for smtpd's end-to-end tests: authd, deliverd and smtpd
built in TERN_BUILD_DIR, started with a generated configuration in a temporary
directory, listening on loopback only. Every wait is bounded by a deadline."""

import os
import pwd
import socket
import ssl
import shutil
import subprocess
import tempfile
import time

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(SRC, "build"))

USERS = {"tester@example.org": "tester-pw", "bob@example.org": "bob-secret"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def can_connect_unix(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Stack:
    def __init__(self, command_timeout="3s", per_ip=50, max_conns=400):
        # Our own directory (not pytest's 0700 one): when the tests run as root the
        # daemons drop to "nobody", which must reach the sockets and the store.
        self.tmp = tempfile.mkdtemp(prefix="tern-smtpd-")
        os.chmod(self.tmp, 0o755)
        self.run_dir = os.path.join(self.tmp, "run")
        self.mail_root = os.path.join(self.tmp, "mail")
        os.makedirs(self.run_dir, mode=0o755)
        os.makedirs(self.mail_root, mode=0o755)
        os.makedirs(os.path.join(self.tmp, "state"), mode=0o755)
        self.ports = {k: free_port() for k in ("smtp", "submission", "submissions")}
        self.procs = {}
        self.logs = {}
        user = pwd.getpwuid(os.getuid()).pw_name if os.getuid() != 0 else "nobody"
        self.cert = os.path.join(self.tmp, "tls.pem")
        self.key = os.path.join(self.tmp, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mx.test.example", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        with open(os.path.join(self.tmp, "passwd"), "w") as f:
            for u, p in USERS.items():
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for d in (self.run_dir, self.mail_root, os.path.join(self.tmp, "state")):
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
            os.chmod(self.key, 0o644)
        with open(os.path.join(self.tmp, "aliases"), "w") as f:
            f.write("postmaster: tester@example.org\n")
        self.conf = os.path.join(self.tmp, "tern.conf")
        with open(self.conf, "w") as f:
            f.write(f"""hostname = mx.test.example
domains = example.org
mynetworks = 127.0.0.2/32
run_dir = {self.run_dir}
mail_root = {self.mail_root}
state_dir = {self.tmp}/state
passwd_file = {self.tmp}/passwd
tls_cert = {self.cert}
tls_key = {self.key}
log_target = stderr
default_user = {user}
auth_user = {user}
vmail_user = {user}
shutdown_timeout = 2s

[smtpd]
smtp_listen = 127.0.0.1:{self.ports['smtp']}
submission_listen = 127.0.0.1:{self.ports['submission']}
submissions_listen = 127.0.0.1:{self.ports['submissions']}
command_timeout = {command_timeout}
max_connections_per_ip = {per_ip}
max_connections = {max_conns}
auth_failure_delay = 200ms
auth_failure_delay_max = 1s
max_message_size = 2M

[authd]
auth_failure_delay = 0
auth_failure_delay_max = 0

[deliverd]
alias_file = {self.tmp}/aliases
""")

    def binary(self, name):
        # TERN_SMTPD_BUILD_DIR runs another build of smtpd alone (e.g. ASan) in the stack.
        build = os.environ.get("TERN_SMTPD_BUILD_DIR", BUILD) if name == "smtpd" else BUILD
        return os.path.join(build, name, "tern-" + name)

    def start(self, name):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        self.logs[name] = os.path.join(self.tmp, name + ".log")
        p = subprocess.Popen([self.binary(name), "-c", self.conf], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.procs[name] = p
        if name == "authd":
            wait_for(lambda: can_connect_unix(os.path.join(self.run_dir, "auth")) or p.poll(),
                     what="authd socket")
        elif name == "deliverd":
            wait_for(lambda: can_connect_unix(os.path.join(self.run_dir, "lmtp")) or p.poll(),
                     what="deliverd socket")
        else:
            wait_for(lambda: can_connect(self.ports["smtp"]) or p.poll() is not None,
                     what="smtpd port")
        if p.poll() is not None:
            raise AssertionError("%s exited: %s" % (name, self.log(name)[-2000:]))

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        # A socket file left behind must not look like a running daemon.
        sock = {"authd": "auth", "deliverd": "lmtp"}.get(name)
        if sock is not None:
            try:
                os.unlink(os.path.join(self.run_dir, sock))
            except FileNotFoundError:
                pass

    def start_all(self):
        self.start("authd")
        self.start("deliverd")
        self.start("smtpd")

    def stop_all(self):
        for name in ("smtpd", "deliverd", "authd"):
            self.stop(name)

    def remove(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self, name):
        try:
            with open(self.logs[name], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (KeyError, OSError):
            return ""

    def maildir_new(self, user):
        local, domain = user.split("@")
        d = os.path.join(self.mail_root, domain, local, "new")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return []
        return [os.path.join(d, n) for n in names]

    def wait_for_mail(self, user, marker, timeout=10.0):
        def found():
            for path in self.maildir_new(user):
                with open(path, "rb") as f:
                    data = f.read()
                if marker in data:
                    return data
            return None
        return wait_for(found, timeout, "message %r in %s's Maildir" % (marker, user))

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        return ctx


class Raw:
    """A byte-exact SMTP conversation over a plain socket."""

    def __init__(self, port, source="127.0.0.1", timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                          source_address=(source, 0))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """Reads one complete (possibly multi-line) reply; returns it as bytes."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got %r" % (b"".join(lines) + self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line + b"\r\n")
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    def cmd(self, data):
        self.send(data)
        return self.reply()

    def closed(self, timeout=10):
        self.s.settimeout(timeout)
        try:
            rest = self.s.recv(65536)
        except ConnectionResetError:
            return True
        return rest == b""

    def close(self):
        self.s.close()
