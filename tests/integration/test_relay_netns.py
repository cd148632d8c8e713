"""Two domains talking: two tern installations, alice.test and bob.test, each in its own
network namespace (made by the test: ip netns, one veth pair 10.231.7.1 <-> 10.231.7.2,
removed after), and dnsmasq (Debian) answering MX and A records for both, plus a null MX.

Alice submits on 587 with STARTTLS + AUTH; Bob reads the message over IMAP; Bob replies;
Alice reads the reply. Then: Bob's smtpd stopped -> Alice's message is deferred, and
delivered once smtpd is back and `ternctl queue flush` forced a retry; a message to a user
that does not exist at Bob -> Alice receives a DSN; a domain with a null MX -> immediate
DSN. Needs root (namespaces, ports 25/587/143); skipped with the reason otherwise."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("TERN_SOURCE_DIR", "."))
BUILD = Path(os.environ.get("TERN_BUILD_DIR", "build"))
DAEMONS = ["authd", "deliverd", "smtpd", "imapd"]
NET = "10.231.7"


def sh(*args, check=True, **kw):
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=120,
                          check=check, **kw)


def wait_for(pred, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def in_ns(ns, code, timeout=60):
    """Runs Python code inside namespace ns; returns its stdout (fails on error)."""
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                        textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class Site:
    """One tern installation (authd, deliverd, smtpd, imapd) in its own namespace."""

    def __init__(self, top: Path, ns: str, domain: str, user: str, ip: str, dns_ip: str):
        self.ns, self.domain, self.user, self.ip = ns, domain, user, ip
        self.dir = top / domain
        self.dir.mkdir()
        os.chmod(self.dir, 0o755)
        # devstack makes the CA, certificate, system users and passwords; its config is
        # then rewritten for this site (domain, listeners on the namespace's addresses).
        # The generating start runs briefly in the root namespace: a free port base there.
        from ternstack import _free_port_base
        sh(SOURCE / "scripts" / "devstack", "start", "--dir", self.dir, "--port-base",
           _free_port_base(), "--build", BUILD)
        sh(SOURCE / "scripts" / "devstack", "stop", "--dir", self.dir)
        state = json.loads((self.dir / "devstack.json").read_text())
        self.password = state["users"][user]
        lines = (self.dir / "passwd").read_text().splitlines()
        line = next(x for x in lines if x.startswith(user + "@"))
        line = line.replace("@example.test", "@" + domain).replace(
            "/example.test/", "/%s/" % domain)
        (self.dir / "passwd").write_text(line + "\n")
        self.maildir = self.dir / "mail" / domain / user
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        owner = (self.dir / "mail" / "example.test").stat()
        for base, dirs, files in os.walk(self.dir / "mail"):
            for n in [base] + [os.path.join(base, x) for x in dirs]:
                os.chown(n, owner.st_uid, owner.st_gid)
        d = self.dir
        self.conf = d / "tern.conf"
        self.conf.write_text(f"""hostname = mx.{domain}
domains = {domain}
mynetworks = 127.0.0.0/8
run_dir = {d}/run
mail_root = {d}/mail
state_dir = {d}/state
passwd_file = {d}/passwd
tls_cert = {d}/tls/server.pem
tls_key = {d}/tls/server.key
log_target = stderr

[deliverd]
dns_servers = {dns_ip}:53
queue_run_interval = 2s
retry_min_backoff = 1h
retry_max_backoff = 1h
relay_connect_timeout = 5s
relay_reuse_time = 1s

[smtpd]
smtp_listen = {ip}:25
submission_listen = 127.0.0.1:587
submissions_listen = 127.0.0.1:465

[imapd]
imap_listen = 127.0.0.1:143
imaps_listen = 127.0.0.1:993
""")
        self.procs = {}
        (d / "log").mkdir(exist_ok=True)

    def start(self, daemon):
        log = open(self.dir / "log" / f"{daemon}.log", "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns,
                              str(BUILD / daemon / f"tern-{daemon}"), "-c", str(self.conf)],
                             stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[daemon] = p
        probe = {"smtpd": (self.ip, 25), "imapd": ("127.0.0.1", 143)}.get(daemon)

        def up():
            if p.poll() is not None:
                pytest.fail(f"{daemon} died: " + self.log(daemon))
            if probe is None:
                sock = {"authd": "auth-userdb", "deliverd": "lmtp"}[daemon]
                return (self.dir / "run" / sock).exists()
            r = subprocess.run(["ip", "netns", "exec", self.ns, "/usr/bin/python3", "-c",
                                "import socket; socket.create_connection(%r, 2).close()"
                                % (probe,)], capture_output=True, timeout=30)
            return r.returncode == 0
        wait_for(up, what=f"{daemon} in {self.ns}")

    def stop(self, daemon):
        p = self.procs.pop(daemon, None)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def stop_all(self):
        for d in reversed(DAEMONS):
            self.stop(d)

    def log(self, daemon):
        p = self.dir / "log" / f"{daemon}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def addr(self):
        return f"{self.user}@{self.domain}"

    def submit(self, to, subject, body="hello\n"):
        in_ns(self.ns, f"""
            import smtplib, ssl
            from email.message import EmailMessage
            m = EmailMessage()
            m["From"], m["To"], m["Subject"] = {self.addr()!r}, {to!r}, {subject!r}
            m.set_content({body!r})
            ctx = ssl.create_default_context(cafile={str(self.dir / 'tls' / 'ca.pem')!r})
            ctx.check_hostname = False
            with smtplib.SMTP("127.0.0.1", 587, timeout=30) as s:
                s.starttls(context=ctx)
                s.login({self.addr()!r}, {self.password!r})
                s.send_message(m)
            """)

    def imap_subjects(self):
        out = in_ns(self.ns, f"""
            import imaplib, email
            c = imaplib.IMAP4("127.0.0.1", 143, timeout=30)
            c.starttls()
            c.login({self.addr()!r}, {self.password!r})
            c.select("INBOX")
            typ, data = c.search(None, "ALL")
            for n in data[0].split():
                typ, msg = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
                m = email.message_from_bytes(msg[0][1])
                print((m["Subject"] or "").replace("\\n", " "), "|", m["From"])
            c.logout()
            """)
        return out.splitlines()


class World:
    """Two namespaces joined by a veth pair, dnsmasq in A, and a tern Site in each."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_b = f"tern-a-{self.tag}", f"tern-b-{self.tag}"
        self.top = Path(tempfile.mkdtemp(prefix="tern-netns-", dir="/tmp"))
        os.chmod(self.top, 0o755)
        self.dnsmasq = None
        self.sites = []
        self.a = self.b = None

    def start(self):
        tag, ns_a, ns_b, top = self.tag, self.ns_a, self.ns_b, self.top
        for ns in (ns_a, ns_b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"va{tag}", "netns", ns_a, "type", "veth", "peer", "name",
           f"vb{tag}", "netns", ns_b)
        sh("ip", "-n", ns_a, "addr", "add", f"{NET}.1/24", "dev", f"va{tag}")
        sh("ip", "-n", ns_b, "addr", "add", f"{NET}.2/24", "dev", f"vb{tag}")
        sh("ip", "-n", ns_a, "link", "set", f"va{tag}", "up")
        sh("ip", "-n", ns_b, "link", "set", f"vb{tag}", "up")
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", ns_a, "dnsmasq", "--keep-in-foreground", "--no-resolv",
             "--no-hosts", "--pid-file=", f"--listen-address={NET}.1", "--bind-interfaces",
             "--port=53", "--mx-host=alice.test,mx.alice.test,10",
             "--mx-host=bob.test,mx.bob.test,10", f"--host-record=mx.alice.test,{NET}.1",
             f"--host-record=mx.bob.test,{NET}.2", "--dns-rr=null.test,15,000000",
             f"--log-facility={top}/dnsmasq.log", "--log-queries"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        if self.dnsmasq.poll() is not None:
            raise RuntimeError("dnsmasq: " + self.dnsmasq.stderr.read().decode())
        self.a = Site(top, ns_a, "alice.test", "alice", f"{NET}.1", f"{NET}.1")
        self.b = Site(top, ns_b, "bob.test", "bob", f"{NET}.2", f"{NET}.1")
        self.sites = [self.a, self.b]
        for s in self.sites:
            for d in DAEMONS:
                s.start(d)
        return self

    def stop(self):
        for s in self.sites:
            s.stop_all()
        if self.dnsmasq is not None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(self.top, ignore_errors=True)


def preconditions():
    """None when the world can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root: network namespaces, veth and ports 25/587/143"
    for d in DAEMONS:
        if not (BUILD / d / f"tern-{d}").exists():
            return f"tern-{d} is not built in this tree"
    r = subprocess.run([str(SOURCE / "scripts" / "deps"), "dnsmasq", "iproute2"],
                       capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0 or shutil.which("dnsmasq") is None:
        return "dnsmasq not installable: " + r.stderr[-300:]
    return None


@pytest.fixture
def two_domains():
    why = preconditions()
    if why is not None:
        pytest.skip(why)
    w = World()
    try:
        w.start()
        yield w.a, w.b
    finally:
        w.stop()


def test_two_domains(two_domains):
    a, b = two_domains
    # Alice -> Bob, read over IMAP.
    a.submit("bob@bob.test", "hello bob")
    wait_for(lambda: any("hello bob" in x for x in b.imap_subjects()), 60, "Bob's message")
    assert "relay=mx.bob.test[%s.2]:25" % NET in a.log("deliverd")
    assert "status=sent" in a.log("deliverd")
    # Bob replies; Alice reads it.
    b.submit("alice@alice.test", "re: hello bob")
    wait_for(lambda: any("re: hello bob" in x for x in a.imap_subjects()), 60, "the reply")

    # Bob's smtpd is down: deferred; back up + ternctl queue flush: delivered.
    b.stop("smtpd")
    a.submit("bob@bob.test", "while you were down")
    wait_for(lambda: "status=deferred" in a.log("deliverd"), 60, "deferral")
    assert "while you were down" not in " ".join(b.imap_subjects())
    b.start("smtpd")
    r = sh(BUILD / "ternctl" / "ternctl", "-c", a.conf, "queue", "flush")
    assert "flush" in r.stdout
    wait_for(lambda: any("while you were down" in x for x in b.imap_subjects()), 60,
             "delivery after flush")

    # No such user at Bob: refused at RCPT by Bob's smtpd -> a DSN to Alice.
    a.submit("nobody@bob.test", "to nobody")
    wait_for(lambda: any("Undelivered Mail" in x for x in a.imap_subjects()), 60, "the DSN")
    assert "dsn=5.1.1, status=bounced" in a.log("deliverd")

    # A null MX: an immediate DSN.
    n_before = sum("Undelivered Mail" in x for x in a.imap_subjects())
    a.submit("someone@null.test", "to the void")
    wait_for(lambda: sum("Undelivered Mail" in x for x in a.imap_subjects()) > n_before, 60,
             "the null-MX DSN")
    assert "dsn=5.1.10, status=bounced" in a.log("deliverd")
    assert "MAILER-DAEMON@mx.alice.test" in " ".join(a.imap_subjects())
    # Under the ASan/UBSan build: the relay side ran clean.
    for site in (a, b):
        log = site.log("deliverd")
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log[-3000:]
