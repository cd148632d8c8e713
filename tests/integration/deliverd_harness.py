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
    def __init__(self, tmp, mail_root=None, extra_deliverd="", max_size="10M"):
        self.tmp = Path(tmp)
        self.run = self.tmp / "run"
        self.mail = Path(mail_root) if mail_root else self.tmp / "mail"
        self.state = self.tmp / "state"
        for d in (self.run, self.mail, self.state):
            d.mkdir(parents=True, exist_ok=True)
        (self.tmp / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}secret::::::{x}\n" for u, x in USERS.items()))
        (self.tmp / "virtual").write_text(
            "team@example.test: alice@example.test, bob@example.test\n"
            "@catchall.test: carol@example.test\n")
        (self.tmp / "aliases").write_text("postmaster: alice\nroot: bob\n")
        self.conf = self.tmp / "tern.conf"
        self.conf.write_text(
            f"run_dir = {self.run}\nmail_root = {self.mail}\nstate_dir = {self.state}\n"
            f"passwd_file = {self.tmp / 'passwd'}\ndomains = example.test\n"
            f"hostname = mx.example.test\nlog_target = stderr\n"
            f"vmail_user = {me()}\ndefault_user = {me()}\nshutdown_timeout = 2s\n"
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
        wait_for_socket(self.lmtp, self.deliverd)

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
