#!/usr/bin/python3
"""Relay throughput: messages per second from submission until every message is in the
receiving server's Maildir, for tern-deliverd's relay and for a Postfix relay, side by
side in one run, against the same receiving Postfix (Debian) on loopback.

  bench/relay/bench_relay.py [--build DIR] [--messages N] [--clients K] [--size BYTES]

  sender A: tern-deliverd; messages enter over LMTP (K clients), go to the queue (fsync),
            and out over SMTP to bob.test's MX, found through a DNS responder on 127.0.0.1.
  sender B: a private Postfix; messages enter over SMTP (K clients), go to its queue, and
            out over SMTP to the same receiver (relayhost = [127.0.0.1]:port).
  receiver: a private Postfix delivering bob.test into one Maildir (virtual agent).

The run is bounded by count: each sender relays N messages; rate = N / wall time from the
first submission to the last file in the Maildir. Needs root (Postfix) and the postfix
package (scripts/deps installs it). Not a test: it prints numbers."""
import argparse
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("TERN_SOURCE_DIR", str(ROOT))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def start_postfix(top: Path, name: str, port: int, main_extra: str):
    conf = top / name
    conf.mkdir()
    (top / f"{name}-queue").mkdir()
    (top / f"{name}-data").mkdir()
    shutil.chown(top / f"{name}-data", user="postfix")
    (conf / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {top}/{name}-queue
data_directory = {top}/{name}-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {top}/{name}.log
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
biff = no
smtpd_relay_restrictions = permit_mynetworks, reject
{main_extra}
""")
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith("smtp ") and " inet " in line:
            line = f"127.0.0.1:{port} inet n - n - - smtpd"
        elif line[:1].isalnum() and len(fields) >= 8:
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    env = dict(os.environ, MAIL_CONFIG=str(conf))
    subprocess.run(["postfix", "-c", str(conf), "post-install", "create-missing"], env=env,
                   capture_output=True, timeout=120, check=False)
    r = subprocess.run(["postfix", "-c", str(conf), "start"], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"postfix {name}: {r.stderr}")
    wait_port(port)
    return conf


def stop_postfix(conf: Path):
    subprocess.run(["postfix", "-c", str(conf), "stop"],
                   env=dict(os.environ, MAIL_CONFIG=str(conf)), capture_output=True,
                   timeout=120, check=False)


def maildir_count(vmail: Path):
    new = vmail / "bob" / "new"
    return len(os.listdir(new)) if new.exists() else 0


def message(i, size):
    head = (f"From: alice@alice.test\r\nTo: bob@bob.test\r\nSubject: bench {i}\r\n"
            f"Message-ID: <bench{i}@alice.test>\r\n\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def submit_all(send_one, n, clients):
    """Runs send_one(i) for i in range(n) over `clients` threads; returns errors."""
    errors = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                send_one(i)
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                with lock:
                    errors.append(repr(e))
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return errors


def wait_count(vmail, want, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if maildir_count(vmail) >= want:
            return True
        time.sleep(0.02)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build-release"))
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()
    if os.getuid() != 0:
        sys.exit("bench_relay: needs root (private Postfix instances)")
    os.environ["TERN_BUILD_DIR"] = args.build
    subprocess.run([str(ROOT / "scripts" / "deps"), "postfix"], check=True,
                   capture_output=True, timeout=600)
    import test_relay as tr  # the DNS responder and the deliverd driver

    top = Path(tempfile.mkdtemp(prefix="tern-bench-relay-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    nobody = pwd.getpwnam("nobody")
    vmail = top / "vmail"
    vmail.mkdir()
    os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
    port_rx, port_pf = free_port(), free_port()
    confs = []
    dns = None
    d = None
    try:
        confs.append(start_postfix(top, "rx", port_rx, f"""myhostname = mx.bob.test
virtual_mailbox_domains = bob.test
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = inline:{{ bob@bob.test=bob/ }}
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_destination_concurrency_limit = 20"""))
        confs.append(start_postfix(top, "pf", port_pf, f"""myhostname = mx.alice.test
relayhost = [127.0.0.1]:{port_rx}
smtp_tls_security_level = none"""))
        dns = tr.DNS({"bob.test": {"MX": [(10, "mx.bob.test")]},
                      "mx.bob.test": {"A": ["127.0.0.1"]}})
        troot = top / "tern"
        troot.mkdir()
        os.chmod(troot, 0o755)
        d = tr.Deliverd(troot, "smtp_tls = none\nrelay_destination_concurrency = 20\n"
                        "queue_run_interval = 60s", dns.port, port_rx)
        d.start()
        msgs = [message(i, args.size) for i in range(args.messages)]
        results = {}

        # Warm-up: one message each way.
        d.lmtp_send("alice@alice.test", ["bob@bob.test"], msgs[0])
        with smtplib.SMTP("127.0.0.1", port_pf, timeout=60) as c:
            c.sendmail("alice@alice.test", ["bob@bob.test"], msgs[0])
        if not wait_count(vmail, 2, 60):
            sys.exit("bench_relay: warm-up messages did not arrive")

        for name in ("tern-deliverd", "postfix"):
            base = maildir_count(vmail)
            t0 = time.monotonic()
            if name == "tern-deliverd":
                def send(i):
                    d.lmtp_send("alice@alice.test", ["bob@bob.test"], msgs[i])
            else:
                def send(i):
                    with smtplib.SMTP("127.0.0.1", port_pf, timeout=60) as c:
                        c.sendmail("alice@alice.test", ["bob@bob.test"], msgs[i])
            errors = submit_all(send, args.messages, args.clients)
            ok = wait_count(vmail, base + args.messages)
            dt = time.monotonic() - t0
            if errors or not ok:
                sys.exit(f"bench_relay: {name}: {len(errors)} errors {errors[:3]}, "
                         f"arrived {maildir_count(vmail) - base}/{args.messages}")
            results[name] = args.messages / dt
            print(f"{name:14s} {args.messages} x {args.size} B, {args.clients} clients: "
                  f"{dt:7.2f} s  {results[name]:8.1f} msg/s", flush=True)
        print(f"ratio tern/postfix: {results['tern-deliverd'] / results['postfix']:.2f}")
    finally:
        if d is not None and d.proc is not None:
            d.stop()
        if dns is not None:
            dns.close()
        for c in confs:
            stop_postfix(c)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
