#!/usr/bin/env python3
"""POP3 download benchmark: LOGIN + STAT + UIDL + RETR of every message of a
1,000-message mailbox, at concurrency 1 and 10, tern-pop3d and Dovecot's pop3 side by side
in the same run on the same messages (loopback, plaintext on 127.0.0.1).

Each concurrent client has its own mailbox (a POP3 mailbox admits one session at a time).
The client is a raw socket that pipelines the RETRs and only counts response terminators,
so it costs little next to the servers. A warm-up round lets both servers build their
caches (Dovecot's index, tern's move of new/ to cur/) before the measured rounds.

Usage: bench/pop3d/bench_pop3.py [--build DIR] [--messages N] [--rounds R]
Needs root (Dovecot runs the mail processes as `nobody`) and dovecot-pop3d
(installed with scripts/deps dovecot-pop3d).
"""
import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))


def make_messages(n, seed=1):
    rnd = random.Random(seed)
    msgs = []
    for i in range(n):
        lines = [f"From: sender{i}@example.net", f"To: user@example.test",
                 f"Subject: message {i}", f"Message-ID: <{i}@bench>", ""]
        for _ in range(rnd.randint(20, 120)):
            word = "".join(rnd.choice("abcdefghij ") for _ in range(rnd.randint(10, 70)))
            lines.append(("." if rnd.random() < 0.05 else "") + word)
        msgs.append(("\n".join(lines) + "\n").encode())
    return msgs


def fill_maildir(path, msgs):
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(msgs):
        (path / "new" / f"{1700000000 + i}.M{i}P1.bench,S={len(m)}").write_bytes(m)


def read_until(sock, buf, token, count=1):
    """Reads until `token` has been seen `count` times; returns (bytes read, rest)."""
    seen, total = 0, 0
    while True:
        start = 0
        while True:
            j = buf.find(token, start)
            if j < 0:
                break
            seen += 1
            start = j + len(token)
            if seen == count:
                return total + start, buf[start:]
        keep = len(token) - 1
        total += len(buf) - keep if len(buf) > keep else 0
        buf = buf[-keep:] if len(buf) > keep else buf
        chunk = sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk


def session(args):
    port, user, password, n, start_at = args
    # Every client starts at the same moment, after the worker processes exist.
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    buf = b""
    _, buf = read_until(s, buf, b"\r\n")
    s.sendall(f"USER {user}\r\nPASS {password}\r\n".encode())
    _, buf = read_until(s, buf, b"\r\n", 2)
    s.sendall(b"STAT\r\n")
    _, buf = read_until(s, buf, b"\r\n")
    s.sendall(b"UIDL\r\n")
    _, buf = read_until(s, buf, b"\r\n.\r\n")
    s.sendall(b"".join(b"RETR %d\r\n" % i for i in range(1, n + 1)))
    got, buf = read_until(s, buf, b"\r\n.\r\n", n)
    s.sendall(b"QUIT\r\n")
    read_until(s, buf, b"\r\n")
    s.close()
    return t0, time.time(), got


def run_round(pool, port, users, password, n, concurrency):
    start_at = time.time() + 0.3
    jobs = [(port, users[i], password, n, start_at) for i in range(concurrency)]
    res = pool.map(session, jobs)
    return max(r[1] for r in res) - min(r[0] for r in res), sum(r[2] for r in res)


def start_dovecot(tmp, port, users, password, msgs):
    conf = tmp / "dovecot.conf"
    mail = tmp / "dmail"
    for u in users:
        fill_maildir(mail / "example.test" / u.split("@")[0], msgs)
    subprocess.run(["chown", "-R", "nobody:nogroup", str(mail)], check=True)
    (tmp / "dpasswd").write_text("".join(f"{u}:{{PLAIN}}{password}\n" for u in users))
    conf.write_text(f"""
base_dir = {tmp}/dovecot-run
state_dir = {tmp}/dovecot-state
log_path = {tmp}/dovecot.log
instance_name = bench-{port}
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{mail}/%d/%n
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/dpasswd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""")
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build-release"))
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.environ["TERN_BUILD_DIR"] = a.build
    import pop3d_stack

    if shutil.which("dovecot") is None:
        subprocess.run([str(ROOT / "scripts" / "deps"), "dovecot-pop3d"], check=True)
    msgs = make_messages(a.messages)
    conc = [1, 10]
    password = "benchpass"
    names = [f"u{i}" for i in range(max(conc))]
    users = [f"{n}@example.test" for n in names]
    tmp = Path(tempfile.mkdtemp(prefix="tern-bench-pop3."))
    os.chmod(tmp, 0o755)
    (tmp / "tern").mkdir()
    stack = pop3d_stack.Stack(tmp / "tern", users={n: password for n in names})
    for n in names:
        fill_maildir(stack.maildir(n), msgs)
    stack.chown()
    dport = pop3d_stack.free_port()
    dovecot = start_dovecot(tmp, dport, users, password, msgs)
    results = {}
    first = {}
    try:
        stack.start()
        wait_port(dport)
        with Pool(max(conc)) as pool:
            # The first download: every message new (index built, moved to cur/, \Seen
            # written at QUIT). It doubles as the warm-up for the measured rounds.
            first = {}
            for name, port in (("tern", stack.pop3_port), ("dovecot", dport)):
                first[name], _ = run_round(pool, port, users, password, a.messages, max(conc))
            # Alternate the servers round by round so drift on a shared machine hits both.
            times = {}
            for _ in range(a.rounds):
                for c in conc:
                    for name, port in (("tern", stack.pop3_port), ("dovecot", dport)):
                        t, size = run_round(pool, port, users, password, a.messages, c)
                        times.setdefault((name, c), []).append(t)
            for key, ts in times.items():
                results[key] = (statistics.median(ts), 0)
    finally:
        stack.stop()
        dovecot.terminate()
        dovecot.wait(timeout=20)
    print(f"messages per mailbox: {a.messages}, total size {sum(len(m) for m in msgs)} bytes,"
          f" rounds: {a.rounds} (median)")
    print(f"{'concurrency':>11} {'tern s':>8} {'dovecot s':>9} {'tern msg/s':>10} "
          f"{'dovecot msg/s':>13} {'ratio':>6}")
    print(f"{'first, ' + str(max(conc)):>11} {first['tern']:>8.3f} {first['dovecot']:>9.3f} "
          f"{a.messages * max(conc) / first['tern']:>10.0f} "
          f"{a.messages * max(conc) / first['dovecot']:>13.0f} "
          f"{first['dovecot'] / first['tern']:>6.2f}")
    for c in conc:
        tt, _ = results[("tern", c)]
        dt, _ = results[("dovecot", c)]
        n = a.messages * c
        print(f"{c:>11} {tt:>8.3f} {dt:>9.3f} {n / tt:>10.0f} {n / dt:>13.0f} {dt / tt:>6.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
