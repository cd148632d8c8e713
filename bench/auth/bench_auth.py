#!/usr/bin/env python3
"""Benchmark (not a test): AUTH PLAIN successes per second and p99 latency against
tern-authd and Dovecot's auth service (Debian dovecot-core), same passwd-file, same
scheme, same client, in one run, at concurrency 1 and 16.

  sudo bench/auth/bench_auth.py [--build build-release] [--scheme SHA512-CRYPT]
                                [--seconds 5] [--users 100]

Each concurrency slot is one connection doing one request at a time (as Postfix does).
The client is Python asyncio in one process, so with a cheap scheme (PLAIN) the client can
be the bottleneck; the ratio is still measured with the same client on both servers.
Needs root (Dovecot's master) and `scripts/deps dovecot-core`.
"""
import argparse
import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def hash_password(ternctl, scheme, password):
    out = subprocess.run([ternctl, "pw", "-s", scheme, "-p", password], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


async def one_client(path, users, deadline, latencies, errors):
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"VERSION\t1\t0\nCPID\t%d\n" % os.getpid())
    while (await reader.readline()).rstrip(b"\n") != b"DONE":
        pass
    rid = 0
    while time.monotonic() < deadline:
        rid += 1
        user = users[rid % len(users)]
        resp = base64.b64encode(b"\0" + user.encode() + b"\0pw-" + user.encode())
        t0 = time.perf_counter()
        writer.write(b"AUTH\t%d\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1"
                     b"\tsecured\tresp=%s\n" % (rid, resp))
        line = await reader.readline()
        latencies.append(time.perf_counter() - t0)
        if not line.startswith(b"OK\t%d\t" % rid):
            errors.append(line)
    writer.close()


async def run_load(path, users, concurrency, seconds):
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*(one_client(path, users, deadline, latencies, errors)
                           for _ in range(concurrency)))
    elapsed = time.monotonic() - t0
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    return len(latencies) / elapsed, p99 * 1000, len(errors)


def wait_socket(path, proc, log):
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("server did not start; see " + log)
        time.sleep(0.05)
    time.sleep(0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--scheme", default="SHA512-CRYPT")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--users", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (Dovecot's master must start as root)")
    subprocess.run([os.path.join(ROOT, "scripts", "deps"), "dovecot-core"], check=True)

    tmp = tempfile.mkdtemp(prefix="tbench")
    os.chmod(tmp, 0o755)
    ternctl = os.path.join(args.build, "ternctl", "ternctl")
    users = ["u%d@example.test" % i for i in range(args.users)]
    passwd = os.path.join(tmp, "passwd")
    with open(passwd, "w") as f:
        for u in users:
            f.write("%s:%s::::::\n" % (u, hash_password(ternctl, args.scheme, "pw-" + u)))
    os.chmod(passwd, 0o644)
    procs = []
    try:
        conf = os.path.join(tmp, "tern.conf")
        with open(conf, "w") as f:
            f.write(f"run_dir = {tmp}\npasswd_file = {passwd}\ndomains = example.test\n"
                    f"log_target = stderr\nauth_user = nobody\nmail_root = {tmp}/mail\n")
        tlog = os.path.join(tmp, "authd.log")
        tern = subprocess.Popen([os.path.join(args.build, "authd", "tern-authd"), "-c", conf],
                                stdout=open(tlog, "w"), stderr=subprocess.STDOUT)
        procs.append(tern)
        wait_socket(os.path.join(tmp, "auth"), tern, tlog)

        dbase = os.path.join(tmp, "dovecot")
        os.mkdir(dbase)
        dconf = os.path.join(tmp, "dovecot.conf")
        dlog = os.path.join(tmp, "dovecot.log")
        with open(dconf, "w") as f:
            f.write(f"""base_dir = {dbase}
state_dir = {tmp}/dovecot-state
protocols =
log_path = {dlog}
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=CRYPT {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
""")
        dov = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", dconf],
                               stdout=open(dlog + ".out", "w"), stderr=subprocess.STDOUT)
        procs.append(dov)
        wait_socket(os.path.join(dbase, "auth-client"), dov, dlog)

        servers = [("tern-authd", os.path.join(tmp, "auth")),
                   ("dovecot auth", os.path.join(dbase, "auth-client"))]
        print(f"scheme {args.scheme}, {args.users} users, {args.seconds:g} s per run, "
              f"{os.cpu_count()} CPUs")
        print(f"{'server':<14}{'conc':>5}{'auths/s':>10}{'p99 ms':>9}{'errors':>8}")
        results = {}
        for conc in (1, 16):
            for name, path in servers:
                rate, p99, errs = asyncio.run(run_load(path, users, conc, args.seconds))
                results[(name, conc)] = rate
                print(f"{name:<14}{conc:>5}{rate:>10.0f}{p99:>9.2f}{errs:>8}")
        for conc in (1, 16):
            ratio = results[("tern-authd", conc)] / results[("dovecot auth", conc)]
            print(f"ratio tern/dovecot at concurrency {conc}: {ratio:.2f}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
