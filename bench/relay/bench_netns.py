#!/usr/bin/python3
"""Relay throughput between two network namespaces: messages per second from Alice's
submission until all are in Bob's Maildir, tern vs Postfix, side by side in one run.

  bench/relay/bench_netns.py [--build DIR] [--messages N] [--clients K] [--size BYTES]

The world is the one of tests/integration/test_relay_netns.py: namespaces A (alice.test)
and B (bob.test) joined by a veth pair, dnsmasq answering MX/A, a full tern installation
in each (authd, deliverd, smtpd, imapd). tern path: submission on A's 587 (STARTTLS +
AUTH) -> A's deliverd queue -> SMTP (opportunistic STARTTLS) to B's smtpd on port 25 ->
B's deliverd -> Maildir. Postfix path, in the same namespaces: a Postfix in A (SMTP on
127.0.0.1:2525 with STARTTLS, relaying bob.test to [B]:2526) and a Postfix in B (smtpd on
2526 with STARTTLS, virtual delivery into its own Maildir). K client threads in A send N
messages over one connection each; the rate is N / time from the first connection to
the last file in the destination Maildir. Needs root and the postfix package."""
import argparse
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("TERN_SOURCE_DIR", str(ROOT))

CLIENT = r"""
import smtplib, ssl, sys, threading
host, port, n, k, size, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
body = b"x" * 76 + b"\r\n"
errors = []
def worker(ids):
    try:
        with smtplib.SMTP(host, port, timeout=120) as s:
            s.starttls(context=ctx)
            if user != "-":
                s.login(user, pw)
            for i in ids:
                msg = (b"From: alice@alice.test\r\nTo: bob@bob.test\r\nSubject: bench %d\r\n"
                       b"Message-ID: <b%d@alice.test>\r\n\r\n" % (i, i))
                msg += body * max(1, (size - len(msg)) // len(body))
                s.sendmail("alice@alice.test", ["bob@bob.test"], msg)
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=worker, args=(list(range(j, n, k)),)) for j in range(k)]
[t.start() for t in ts]
[t.join() for t in ts]
if errors:
    sys.exit("client errors: %s" % errors[:3])
"""


def postfix(ns, top, name, main_extra, master_line):
    conf = top / name
    conf.mkdir()
    (top / f"{name}-q").mkdir()
    (top / f"{name}-d").mkdir()
    shutil.chown(top / f"{name}-d", user="postfix")
    (conf / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {top}/{name}-q
data_directory = {top}/{name}-d
mail_owner = postfix
setgid_group = postdrop
maillog_file = {top}/{name}.log
inet_protocols = ipv4
mydestination =
alias_maps =
alias_database =
biff = no
{main_extra}
""")
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith("smtp ") and " inet " in line:
            line = master_line
        elif line[:1].isalnum() and len(fields) >= 8:
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    (conf / "master.cf").write_text("\n".join(out) + "\n")
    env = dict(os.environ, MAIL_CONFIG=str(conf))
    subprocess.run(["ip", "netns", "exec", ns, "postfix", "-c", str(conf), "post-install",
                    "create-missing"], env=env, capture_output=True, timeout=120, check=False)
    r = subprocess.run(["ip", "netns", "exec", ns, "postfix", "-c", str(conf), "start"],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"postfix {name}: {r.stderr}")
    time.sleep(1.0)
    return conf


def count(d: Path):
    return len(os.listdir(d)) if d.exists() else 0


def wait_count(d, want, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if count(d) >= want:
            return True
        time.sleep(0.02)
    return False


def run_clients(ns, port, n, k, size, user, pw):
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CLIENT,
                        "127.0.0.1", str(port), str(n), str(k), str(size), user, pw],
                       capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-1000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build-release"))
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()
    os.environ["TERN_BUILD_DIR"] = args.build
    import test_relay_netns as tn
    why = tn.preconditions()
    if why is not None:
        sys.exit("bench_netns: " + why)
    subprocess.run([str(ROOT / "scripts" / "deps"), "postfix"], check=True,
                   capture_output=True, timeout=600)
    w = tn.World()
    confs = []
    # Postfix refuses a config directory under /tmp here; /var/tmp works.
    import tempfile
    pft = Path(tempfile.mkdtemp(prefix="tern-bench-pf-", dir="/var/tmp"))
    os.chmod(pft, 0o755)
    try:
        w.start()
        a, b = w.a, w.b
        nobody = pwd.getpwnam("nobody")
        vmail = pft / "pfvmail"
        vmail.mkdir()
        os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
        cert, key = b.dir / "tls" / "server.pem", b.dir / "tls" / "server.key"
        confs.append((b.ns, postfix(b.ns, pft, "pfb", f"""myhostname = pf.bob.test
inet_interfaces = {tn.NET}.2
mynetworks = 127.0.0.0/8
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
virtual_mailbox_domains = bob.test
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = inline:{{ bob@bob.test=bob/ }}
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination""",
            f"{tn.NET}.2:2526 inet n - n - - smtpd")))
        confs.append((a.ns, postfix(a.ns, pft, "pfa", f"""myhostname = pf.alice.test
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.0/8
smtpd_tls_cert_file = {a.dir / "tls" / "server.pem"}
smtpd_tls_key_file = {a.dir / "tls" / "server.key"}
smtpd_tls_security_level = may
smtp_tls_security_level = may
transport_maps = inline:{{ bob.test=smtp:[{tn.NET}.2]:2526 }}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination""",
            "127.0.0.1:2525 inet n - n - - smtpd")))
        tern_new = b.maildir / "new"
        pf_new = vmail / "bob" / "new"
        # Warm-up: one message each way.
        run_clients(a.ns, 587, 1, 1, args.size, a.addr(), a.password)
        run_clients(a.ns, 2525, 1, 1, args.size, "-", "-")
        if not (wait_count(tern_new, 1, 60) and wait_count(pf_new, 1, 60)):
            for f in (pft / "pfa.log", pft / "pfb.log"):
                print(f, f.read_text()[-1500:] if f.exists() else "-", file=sys.stderr)
            print(a.log("deliverd")[-1500:], b.log("deliverd")[-1500:], file=sys.stderr)
            sys.exit("bench_netns: warm-up messages did not arrive (tern %d, postfix %d)"
                     % (count(tern_new), count(pf_new)))
        results = {}
        for name, port, user, pw, d in (("tern", 587, a.addr(), a.password, tern_new),
                                        ("postfix", 2525, "-", "-", pf_new)):
            base = count(d)
            t0 = time.monotonic()
            run_clients(a.ns, port, args.messages, args.clients, args.size, user, pw)
            if not wait_count(d, base + args.messages):
                sys.exit(f"bench_netns: {name}: only {count(d) - base}/{args.messages} arrived")
            dt = time.monotonic() - t0
            results[name] = args.messages / dt
            print(f"{name:8s} {args.messages} x {args.size} B, {args.clients} clients: "
                  f"{dt:7.2f} s  {results[name]:8.1f} msg/s", flush=True)
        print(f"ratio tern/postfix: {results['tern'] / results['postfix']:.2f}")
    finally:
        for ns, c in confs:
            subprocess.run(["ip", "netns", "exec", ns, "postfix", "-c", str(c), "stop"],
                           env=dict(os.environ, MAIL_CONFIG=str(c)), capture_output=True,
                           timeout=120, check=False)
        w.stop()
        shutil.rmtree(pft, ignore_errors=True)


if __name__ == "__main__":
    main()
