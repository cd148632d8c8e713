"""Starts tern-authd and tern-deliverd from TERN_BUILD_DIR with a generated config in a
temp dir, for the deliverd and sendmail integration tests (test_deliverd*.py,
test_sendmail*.py). Every wait is bounded by a count and a time limit."""
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

BUILD = Path(os.environ.get("TERN_BUILD_DIR", "build"))
SOURCE = Path(os.environ.get("TERN_SOURCE_DIR", "."))
AUTHD = BUILD / "authd" / "tern-authd"
DELIVERD = BUILD / "deliverd" / "tern-deliverd"
SENDMAIL = BUILD / "sendmail" / "sendmail"

USERS = {
    "alice@example.test": "",
    "bob@example.test": "",
    "carol@example.test": "",
    "small@example.test": "userdb_quota_bytes=200",
}


def me():
    return pwd.getpwuid(os.getuid()).pw_name


# The daemons refuse to run as root: as root, they drop to this user; otherwise they run
# as whoever runs the tests.
RUN_AS = "nobody" if os.getuid() == 0 else me()
# A local user that is neither root, nor the daemons' user (tests of refused peers).
OTHER_USER = "daemon"


def wait_for_socket(path, proc, seconds=10.0):
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
            finally:
                s.close()
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    raise RuntimeError(f"{path} did not come up")


class Env:
    def __init__(self, tmp, mail_root=None, extra_deliverd="", max_size="10M", base="/tmp"):
        self.own_tmp = None
        if os.getuid() == 0:
            # pytest's tmp_path is private to root; the dropped daemons need a way in.
            import tempfile
            self.own_tmp = tempfile.mkdtemp(prefix="tern-it-", dir=base)
            os.chmod(self.own_tmp, 0o755)
            tmp = self.own_tmp
        self.tmp = Path(tmp)
        self.run = self.tmp / "run"
        self.mail = Path(mail_root) if mail_root else self.tmp / "mail"
        self.state = self.tmp / "state"
        for d in (self.run, self.mail, self.state):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
            if os.getuid() == 0:
                pw = pwd.getpwnam(RUN_AS)
                os.chown(d, pw.pw_uid, pw.pw_gid)
        (self.tmp / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}secret::::::{x}\n" for u, x in USERS.items()))
        (self.tmp / "virtual").write_text(
            "team@example.test: alice@example.test, bob@example.test\n"
            "@catchall.test: carol@example.test\n")
        (self.tmp / "aliases").write_text("postmaster: alice\nroot: bob\n")
        for f in ("passwd", "virtual", "aliases"):
            os.chmod(self.tmp / f, 0o644)
        self.conf = self.tmp / "tern.conf"
        self.conf.write_text(
            f"run_dir = {self.run}\nmail_root = {self.mail}\nstate_dir = {self.state}\n"
            f"passwd_file = {self.tmp / 'passwd'}\ndomains = example.test\n"
            f"hostname = mx.example.test\nlog_target = stderr\n"
            f"vmail_user = {RUN_AS}\ndefault_user = {RUN_AS}\nauth_user = {RUN_AS}\n"
            f"shutdown_timeout = 2s\n"
            f"[deliverd]\nvirtual_alias_file = {self.tmp / 'virtual'}\n"
            f"alias_file = {self.tmp / 'aliases'}\nmax_message_size = {max_size}\n"
            f"{extra_deliverd}")
        self.lmtp = self.run / "lmtp"
        self.submit = self.run / "submit"
        self.authd = None
        self.deliverd = None
        self.logs = []

    def start_authd(self):
        log = open(self.tmp / "authd.log", "ab")
        self.logs.append(log)
        self.authd = subprocess.Popen([str(AUTHD), "-c", str(self.conf)], stdout=log,
                                      stderr=log)
        wait_for_socket(self.run / "auth-userdb", self.authd)

    def start_deliverd(self):
        log = open(self.tmp / "deliverd.log", "ab")
        self.logs.append(log)
        self.deliverd = subprocess.Popen([str(DELIVERD), "-c", str(self.conf)], stdout=log,
                                         stderr=log)
        # Both listeners: the sendmail tests use the submit socket.
        wait_for_socket(self.lmtp, self.deliverd)
        wait_for_socket(self.submit, self.deliverd)

    def start(self):
        self.start_authd()
        self.start_deliverd()
        return self

    def kill_deliverd(self):
        if self.deliverd is not None and self.deliverd.poll() is None:
            self.deliverd.send_signal(signal.SIGKILL)
            self.deliverd.wait(timeout=10)
        for p in (self.lmtp, self.submit):
            if p.exists():
                p.unlink()

    def stop(self):
        for proc in (self.deliverd, self.authd):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for log in self.logs:
            log.close()
        self.logs = []

    def cleanup(self):
        """Removes the directory Env made for itself (as root); call after stop()."""
        if self.own_tmp is not None and os.environ.get("TERN_KEEP_TMP") is None:
            import shutil
            shutil.rmtree(self.own_tmp, ignore_errors=True)

    def make_folder(self, user, folder):
        """Creates a Maildir++ folder (and the user's root) owned by the daemons' user."""
        path = self.maildir(user, folder)
        path.mkdir(parents=True)
        if os.getuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            p = path
            while p != self.mail:
                os.chown(p, pw.pw_uid, pw.pw_gid)
                p = p.parent
        return path

    def log_text(self, name="deliverd"):
        p = self.tmp / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def maildir(self, user, folder=""):
        local, domain = user.split("@")
        base = self.mail / domain / local
        return base / f".{folder}" if folder else base

    def messages(self, user, folder=""):
        new = self.maildir(user, folder) / "new"
        if not new.exists():
            return []
        return sorted(p.read_bytes() for p in new.iterdir())

    def leftovers(self, user):
        tmp = self.maildir(user) / "tmp"
        return list(tmp.iterdir()) if tmp.exists() else []

    def sendmail(self, *args, input_bytes=b"", extra_env=None, user=None):
        env = dict(os.environ)
        env["TERN_CONF"] = str(self.conf)
        if extra_env:
            env.update(extra_env)
        return subprocess.run([str(SENDMAIL), *args], input=input_bytes, capture_output=True,
                              env=env, timeout=60, check=False, user=user)
