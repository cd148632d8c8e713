"""A running tern stack for integration tests, started the way a user starts it
(scripts/devstack) in a private directory on a free port base, and stopped afterwards.

    from ternstack import Stack
    with Stack() as st:
        st.env["TERN_IMAP_PORT"], st.users["alice"], st.ca, st.log("imapd")
"""

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time

SOURCE = os.environ.get("TERN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TERN_BUILD_DIR") or os.path.join(SOURCE, "build")
DEVSTACK = os.path.join(SOURCE, "scripts", "devstack")
STANDARD_PORTS = [25, 587, 465, 143, 993, 110, 995, 24, 4190]


def drop_file(maildir, name, text):
    """Puts a message file into maildir/new/ as an MDA does (written in tmp/, renamed)."""
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(maildir, "new", name))


def recv_until(sock, marker, timeout=10):
    """Reads from sock until marker has arrived, the peer closed, or timeout seconds passed;
    returns everything read (the caller checks for the marker)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def built(daemon):
    return os.access(os.path.join(BUILD, daemon, "tern-" + daemon), os.X_OK)


def _ports_free(base):
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


def _free_port_base():
    for _ in range(200):
        base = random.randrange(20000, 60000, 1000)
        if _ports_free(base):
            return base
    raise RuntimeError("no free port base found")


class Stack:
    """Starts every built daemon; `extra_conf` is written to DIR/conf.d/test.conf before
    the daemons start (for limits a test needs, e.g. short timeouts)."""

    def __init__(self, extra_conf=None):
        self.extra_conf = extra_conf
        # Not pytest's tmp_path: as root the daemons drop privileges and must reach it.
        self.dir = tempfile.mkdtemp(prefix="tern-test-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.env = {}
        self.users = {}

    def _devstack(self, *args):
        p = subprocess.run([DEVSTACK, *args, "--dir", self.dir], capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError("devstack %s failed:\n%s%s" % (args[0], p.stdout, p.stderr))
        return p

    def _start_on_free_ports(self):
        # Another test running in parallel may take a port between the check and the
        # bind: try a few bases, bounded.
        for attempt in range(5):
            base = _free_port_base()
            try:
                return self._devstack("start", "--port-base", str(base), "--build", BUILD)
            except RuntimeError as e:
                if "already in use" not in str(e) or attempt == 4:
                    raise

    def start(self):
        if self.extra_conf:
            # devstack rewrites tern.conf on each start; conf.d/ overrides its keys.
            os.makedirs(os.path.join(self.dir, "conf.d"), exist_ok=True)
            with open(os.path.join(self.dir, "conf.d", "test.conf"), "w") as f:
                f.write(self.extra_conf + "\n")
        self._start_on_free_ports()
        with open(os.path.join(self.dir, "stack.env")) as f:
            for line in f:
                line = line.strip()
                if "=" in line and not line.startswith("#"):
                    k, v = line.split("=", 1)
                    self.env[k.replace("export ", "")] = v.strip("'\"")
        for pair in self.env.get("TERN_USERS", "").split():
            addr, pw = pair.split(":", 1)
            self.users[addr.split("@")[0]] = (addr, pw)
        self.ca = self.env.get("TERN_CA_CERT")
        return self

    def port(self, name):
        return int(self.env["TERN_%s_PORT" % name.upper()])

    def log(self, daemon):
        try:
            with open(os.path.join(self.env["TERN_LOG_DIR"], daemon + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def maildir(self, user):
        addr = self.users[user][0]
        local, domain = addr.split("@")
        return os.path.join(self.env["TERN_MAIL_ROOT"], domain, local)

    def stop(self):
        try:
            self._devstack("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
