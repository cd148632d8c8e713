#!/usr/bin/python3
"""Deliveries per second into Maildir through LMTP: tern-deliverd (with tern-authd for the
recipient lookups) side by side with Dovecot's LMTP (Debian's dovecot-lmtpd), same file
system, same durability (Dovecot: mail_fsync = always; deliverd always fsyncs the file and
new/), same messages and clients, in one run.

  bench/deliverd/bench_lmtp.py [--build DIR] [--dir /var/tmp] [--quick]

Workloads: 4 KiB and 1 MiB messages, 1 and 32 concurrent clients, one recipient per
message spread over 8 mailboxes. Each client delivers a fixed number of messages (the
run is bounded by count, not time); rate = messages / wall time. Needs root (Dovecot's
mail user) and the packages dovecot-core dovecot-lmtpd (scripts/deps installs them)."""
import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

USERS = [f"user{i}@example.test" for i in range(8)]


def wait_socket(path, proc, seconds=15):
    import socket
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not come up")


def start_tern(top, build, base):
    os.environ["TERN_BUILD_DIR"] = str(build)
    import deliverd_harness as h
    h.USERS.clear()
    h.USERS.update({u: "" for u in USERS})
    h.AUTHD = build / "authd" / "tern-authd"
    h.DELIVERD = build / "deliverd" / "tern-deliverd"
    # Same file system as Dovecot's mail: as root, Env makes its directory under base.
    env = h.Env(top / "tern", max_size="20M", base=base)
    env.start()
    return env, env.lmtp


def start_dovecot(top):
    d = top / "dovecot"
    (d / "run").mkdir(parents=True)
    (d / "state").mkdir()
    mail = d / "mail"
    mail.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    (d / "passwd").write_text("".join(
        f"{u}:{{PLAIN}}x:{nobody.pw_uid}:{nobody.pw_gid}::{mail}/{u.split('@')[0]}::\n"
        for u in USERS))
    conf = d / "dovecot.conf"
    conf.write_text(f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = tern-bench-{os.getpid()}
protocols = lmtp
log_path = {d}/dovecot.log
ssl = no
mail_location = maildir:{mail}/%d/%n
mail_fsync = always
first_valid_uid = {nobody.pw_uid}
last_valid_uid = {nobody.pw_uid}
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
""")
    subprocess.run(["dovecot", "-c", str(conf)], check=True, timeout=60)
    sock = d / "run" / "lmtp"
    wait_socket(sock, None)
    return conf, sock, mail


class RawLMTP:
    """A lean LMTP client: the message is CRLF-terminated and dot-stuffed once, up front,
    so the client spends little CPU per message (smtplib re-scans every body), which
    matters on a small machine where clients and servers share the CPUs. MAIL, RCPT and
    DATA are pipelined, as Postfix's LMTP client does."""

    def __init__(self, path):
        import socket
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(120)
        self.s.connect(str(path))
        self.f = self.s.makefile("rb")
        self.reply()
        self.s.sendall(b"LHLO bench\r\n")
        self.reply()

    def reply(self):
        for _ in range(100):
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3]), line
        raise RuntimeError("reply too long")

    def deliver(self, rcpt, data):
        self.s.sendall(b"MAIL FROM:<bench@remote.test>\r\nRCPT TO:<" + rcpt.encode() +
                       b">\r\nDATA\r\n")
        for want in (250, 250, 354):
            code, line = self.reply()
            if code != want:
                raise RuntimeError(line)
        self.s.sendall(data)
        code, line = self.reply()
        if code != 250:
            raise RuntimeError(line)

    def close(self):
        self.s.sendall(b"QUIT\r\n")
        self.s.close()


def run_load(sock, size, clients, per_client):
    # No line starts with ".", so the wire form is the body plus ".\r\n".
    body = b"Subject: bench\r\n\r\n" + (b"x" * 78 + b"\r\n") * (size // 80)
    data = body + b".\r\n"
    errors = []
    done = [0]
    lock = threading.Lock()

    def worker(n):
        try:
            c = RawLMTP(sock)
            for i in range(per_client):
                c.deliver(USERS[(n + i) % len(USERS)], data)
                with lock:
                    done[0] += 1
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError(errors[0])
    return done[0] / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build-release"))
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--quick", action="store_true", help="fewer messages per run")
    a = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("bench_lmtp: needs root (Dovecot's mail user)")
    subprocess.run([str(ROOT / "scripts" / "deps"), "dovecot-core", "dovecot-lmtpd"],
                   check=True, timeout=900)
    top = Path(tempfile.mkdtemp(prefix="tern-bench-lmtp-", dir=a.dir))
    os.chmod(top, 0o755)
    env, tern_sock = start_tern(top, Path(a.build), a.dir)
    conf, dov_sock, _ = start_dovecot(top)
    rounds = 1 if a.quick else 3
    plans = [(4096, 1, 100), (4096, 32, 10), (1 << 20, 1, 5), (1 << 20, 32, 1)]
    fs = subprocess.run(["stat", "-f", "-c", "%T", a.dir], capture_output=True,
                        text=True).stdout.strip()
    print(f"file system: {a.dir} ({fs}), {os.cpu_count()} CPUs, median of {rounds} "
          f"alternating rounds")
    print(f"{'size':>8} {'clients':>7} {'msgs':>6} {'tern/s':>9} {'dovecot/s':>10} {'ratio':>6}")
    try:
        # Warm-up: every mailbox exists and every process is started before measuring.
        run_load(tern_sock, 4096, 8, 4)
        run_load(dov_sock, 4096, 8, 4)
        for size, clients, per in plans:
            # Alternate the two servers so that load from elsewhere on a shared machine
            # hits both alike; report the medians.
            ts, ds = [], []
            for _ in range(rounds):
                ts.append(run_load(tern_sock, size, clients, per))
                ds.append(run_load(dov_sock, size, clients, per))
            t = sorted(ts)[len(ts) // 2]
            d = sorted(ds)[len(ds) // 2]
            label = "4 KiB" if size == 4096 else "1 MiB"
            print(f"{label:>8} {clients:>7} {clients * per:>6} {t:>9.1f} {d:>10.1f} "
                  f"{t / d:>6.2f}", flush=True)
    finally:
        subprocess.run(["doveadm", "-c", str(conf), "stop"], capture_output=True, timeout=60,
                       check=False)
        env.stop()
        env.cleanup()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
