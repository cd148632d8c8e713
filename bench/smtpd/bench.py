#!/usr/bin/env python3
"""End-to-end SMTP intake benchmark: messages per second from an SMTP client until every
copy is durable in Maildir, tern (smtpd -> LMTP -> deliverd) side by side with Postfix
delivering through Dovecot LMTP (both from Debian), on this machine, same disk.

For each system, message size (4 KiB, 1 MiB) and concurrency (1, 10, 50):
  - throughput with Postfix's smtp-source: time from the start until the last copy is in
    <Maildir>/new (for tern the client's 250 already means that; Postfix's 250 means "in
    its queue", so we also wait for Dovecot's delivery);
  - client-side latency p50/p99 (MAIL to the final 250 of DATA) from our own client, one
    persistent connection per worker, same message, same server.

Durability: tern's deliverd fsyncs the file and new/ before its 250; Dovecot runs with
mail_fsync = always; Postfix fsyncs its queue file (default). Postfix and Dovecot run as
root-started daemons, so the comparison needs root; without it only tern is measured.

Usage: bench/smtpd/bench.py [--quick] [--out FILE]   (run from the source tree; builds
are taken from build-release/ when present, else build/)"""

import argparse
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def count_new(d):
    try:
        return len(os.listdir(d))
    except OSError:
        return 0


def wait_count(d, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_new(d) >= n:
            return True
        time.sleep(0.005)
    return False


def make_body(size):
    head = b"From: bench@example.com\r\nTo: tester@example.org\r\nSubject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = head
    while len(body) + len(line) <= size:
        body += line
    return body + b"y" * (size - len(body) - 2) + b"\r\n" if len(body) < size else body


class Client(threading.Thread):
    """One connection, `n` messages, latencies of MAIL..250-after-DATA."""

    def __init__(self, port, n, body, lat, errors):
        super().__init__(daemon=True)
        self.port, self.n, self.body, self.lat, self.errors = port, n, body, lat, errors

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=120)
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError
                    if line[3:4] != b"-":
                        return line

            reply()
            s.sendall(b"EHLO bench\r\n")
            reply()
            for _ in range(self.n):
                t0 = time.monotonic()
                s.sendall(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<tester@example.org>\r\n"
                          b"DATA\r\n")
                for _ in range(3):
                    r = reply()
                if not r.startswith(b"354"):
                    raise RuntimeError(r)
                s.sendall(self.body + b".\r\n")
                r = reply()
                if not r.startswith(b"250"):
                    raise RuntimeError(r)
                self.lat.append(time.monotonic() - t0)
            s.sendall(b"QUIT\r\n")
            s.close()
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.errors.append(repr(e))


def latency_run(port, conc, n, body, maildir, base):
    lat, errors = [], []
    per = max(1, n // conc)
    threads = [Client(port, per, body, lat, errors) for _ in range(conc)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    ok = wait_count(maildir, base + per * conc, 600)
    elapsed = time.monotonic() - t0
    if errors or not ok:
        raise RuntimeError("latency run failed: %s ok=%s" % (errors[:3], ok))
    lat.sort()
    return {"p50": statistics.median(lat) * 1000,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "rate": per * conc / elapsed, "n": per * conc}


def smtp_source_run(port, conc, n, size, maildir, base):
    t0 = time.monotonic()
    r = subprocess.run(["smtp-source", "-s", str(conc), "-m", str(n), "-l", str(size),
                        "-f", "bench@example.com", "-t", "tester@example.org",
                        "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError("smtp-source: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    if not wait_count(maildir, base + n, 600):
        raise RuntimeError("smtp-source: only %d of %d delivered" % (count_new(maildir) - base, n))
    return n / (time.monotonic() - t0)


# --- tern -----------------------------------------------------------------------------

def tern_system():
    from smtpd_stack import Stack
    farm = tempfile.mkdtemp(prefix="tern-bench-bin-")
    for name in ("smtpd", "deliverd", "authd"):
        for build in ("build-release", "build"):
            b = os.path.join(SRC, build, name, "tern-" + name)
            if os.path.exists(b):
                os.makedirs(os.path.join(farm, name))
                os.symlink(b, os.path.join(farm, name, "tern-" + name))
                break
    os.environ["TERN_BUILD_DIR"] = farm
    import smtpd_stack
    smtpd_stack.BUILD = farm
    st = Stack(command_timeout="10m", per_ip=1000, max_conns=2000)
    st.start_all()

    def stop():
        st.stop_all()
        st.remove()
        shutil.rmtree(farm, ignore_errors=True)
    return st.ports["smtp"], os.path.join(st.mail_root, "example.org", "tester", "new"), stop


# --- Postfix + Dovecot LMTP -----------------------------------------------------------

MASTER_CF = """{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


def postfix_system():
    if os.geteuid() != 0:
        return None
    subprocess.run([os.path.join(SRC, "scripts", "deps"), "postfix", "dovecot-lmtpd"],
                   check=True, capture_output=True, timeout=900)
    d = tempfile.mkdtemp(prefix="pf-bench-", dir="/var/tmp")
    os.chmod(d, 0o755)
    etc, spool, data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
    drun, dstate, mail = (os.path.join(d, x) for x in ("dovecot-run", "dovecot-state", "mail"))
    for x in (etc, spool, data, drun, dstate, mail):
        os.mkdir(x, 0o755)
    shutil.chown(data, "postfix")
    shutil.chown(mail, "nobody", "nogroup")
    port = free_port()
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        f.write(f"""base_dir = {drun}
state_dir = {dstate}
protocols = lmtp
log_path = {d}/dovecot.log
ssl = no
mail_location = maildir:{mail}/%d/%n
mail_fsync = always
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%d/%n allow_all_users=yes
}}
passdb {{
  driver = static
  args = nopassword=y
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
""")
    with open(os.path.join(etc, "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = example.org
virtual_mailbox_maps =
virtual_transport = lmtp:unix:{drun}/lmtp
smtpd_tls_security_level = none
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
message_size_limit = 4194304
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
""")
    with open(os.path.join(etc, "master.cf"), "w") as f:
        f.write(MASTER_CF.format(listen="127.0.0.1:%d" % port))
    # Both daemonise: their output goes to files, never to pipes we would wait on.
    with open(os.path.join(d, "start.log"), "w") as out:
        r = subprocess.run(["dovecot", "-c", os.path.join(d, "dovecot.conf")], stdout=out,
                           stderr=out, stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("dovecot failed to start, see " + out.name)
        r = subprocess.run(["postfix", "-c", etc, "start"], stdout=out, stderr=out,
                           stdin=subprocess.DEVNULL, timeout=120)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise RuntimeError("postfix did not start (%d), see %s/start.log" % (r.returncode, d))

    def stop():
        subprocess.run(["postfix", "-c", etc, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        subprocess.run(["doveadm", "-c", os.path.join(d, "dovecot.conf"), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        pidfile = os.path.join(spool, "pid", "master.pid")
        deadline = time.monotonic() + 20
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        shutil.rmtree(d, ignore_errors=True)
    return port, os.path.join(mail, "example.org", "tester", "new"), stop


def measure(name, system, plan):
    port, maildir, stop = system
    rows = []
    try:
        # Warm up (first delivery creates the Maildir).
        latency_run(port, 1, 3, make_body(4096), maildir, count_new(maildir))
        for size, conc, n in plan:
            body = make_body(size)
            rate = smtp_source_run(port, conc, n, size, maildir, count_new(maildir))
            lat = latency_run(port, conc, n, body, maildir, count_new(maildir))
            rows.append((name, size, conc, n, rate, lat))
            print("%-16s %8d B  c=%-3d n=%-5d  smtp-source %8.1f msg/s   client %8.1f msg/s"
                  "  p50 %7.1f ms  p99 %7.1f ms" % (name, size, conc, n, rate, lat["rate"],
                                                   lat["p50"], lat["p99"]), flush=True)
    finally:
        stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer messages (smoke run)")
    ap.add_argument("--out", default=None, help="write a Markdown table here")
    args = ap.parse_args()
    k = 1 if not args.quick else 0.2
    plan = [(4096, 1, int(300 * k)), (4096, 10, int(1000 * k)), (4096, 50, int(2000 * k)),
            (1048576, 1, int(30 * k)), (1048576, 10, int(60 * k)), (1048576, 50, int(100 * k))]
    subprocess.run([os.path.join(SRC, "scripts", "deps"), "postfix"], check=True,
                   capture_output=True, timeout=900)
    results = [] if os.environ.get("BENCH_SKIP_TERN") else measure("tern", tern_system(), plan)
    pf = postfix_system()
    if pf is not None:
        results += measure("postfix+dovecot", pf, plan)
    else:
        print("not root: Postfix+Dovecot not measured")
    lines = ["| system | size | conc | msgs | smtp-source msg/s | client msg/s | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for name, size, conc, n, rate, lat in results:
        lines.append("| %s | %s | %d | %d | %.1f | %.1f | %.1f | %.1f |" % (
            name, "4 KiB" if size == 4096 else "1 MiB", conc, n, rate, lat["rate"], lat["p50"],
            lat["p99"]))
    tern = {(s, c): r for name, s, c, n, r, l in results if name == "tern"}
    pfx = {(s, c): r for name, s, c, n, r, l in results if name != "tern"}
    if pfx:
        lines.append("")
        lines.append("| size | conc | tern / postfix+dovecot (smtp-source) |")
        lines.append("|---|---|---|")
        for key in tern:
            if key in pfx:
                lines.append("| %s | %d | %.2fx |" % ("4 KiB" if key[0] == 4096 else "1 MiB",
                                                      key[1], tern[key] / pfx[key]))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
