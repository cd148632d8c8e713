"""tern-deliverd's outbound relay end to end, against servers written here: a scriptable
SMTP server (EHLO keywords, STARTTLS, AUTH, per-recipient replies) and a DNS responder
(MX/A, null MX) on 127.0.0.1. Messages enter through deliverd's LMTP socket (remote
recipients go to the queue) or are found in the queue at start; the test then looks at what
the SMTP server received, at the queue directory and at deliverd's log lines."""
import base64
import os
import pwd
import re
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
import smtplib

BUILD = Path(os.environ.get("TERN_BUILD_DIR", "build"))
DELIVERD = BUILD / "deliverd" / "tern-deliverd"
TERNCTL = BUILD / "ternctl" / "ternctl"
SENDMAIL = BUILD / "sendmail" / "sendmail"


def wait_for(pred, timeout=20.0, what="condition"):
    """Polls pred (bounded by time and count); returns its value or fails."""
    end = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            break
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


# --- a DNS responder ------------------------------------------------------------------------

class DNS:
    """UDP DNS on 127.0.0.1: answers MX and A from a dict, NXDOMAIN for other names."""

    def __init__(self, records):
        self.records = records  # name -> {"MX": [(pref, host)], "A": [ip]}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def name_bytes(name):
        out = b""
        for label in name.strip(".").split("."):
            if label:
                out += bytes([len(label)]) + label.encode()
        return out + b"\0"

    def answer(self, q):
        qid, flags = struct.unpack(">HH", q[:4])
        o, labels = 12, []
        while q[o] != 0:
            ln = q[o]
            labels.append(q[o + 1:o + 1 + ln].decode())
            o += 1 + ln
        qtype = struct.unpack(">H", q[o + 1:o + 3])[0]
        question = q[12:o + 5]
        name = ".".join(labels).lower()
        rec = self.records.get(name)
        rcode, answers = 0, []
        if rec is None:
            rcode = 3
        elif qtype == 15:
            for pref, host in rec.get("MX", []):
                rdata = struct.pack(">H", pref) + self.name_bytes(host)
                answers.append(struct.pack(">HHHIH", 0xC00C, 15, 1, 60, len(rdata)) + rdata)
        elif qtype == 1:
            for ip in rec.get("A", []):
                rdata = socket.inet_aton(ip)
                answers.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + rdata)
        hdr = struct.pack(">HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        return hdr + question + b"".join(answers)

    def run(self):
        while not self.stop:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(q), addr)
            except (IndexError, struct.error, OSError):
                pass

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


# --- a scriptable SMTP server ---------------------------------------------------------------

class SMTPServer:
    """Threaded SMTP server on 127.0.0.1. Records every transaction:
    {"mail": line, "rcpts": [lines], "data": bytes, "tls": bool, "auth": str|None, "conn": n}.
    rcpt_reply(addr) -> reply line or None for 250; keywords are the EHLO extensions."""

    def __init__(self, keywords=("PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "DSN",
                                 "ENHANCEDSTATUSCODES"),
                 tls_files=None, auth=None, rcpt_reply=None, data_reply=None, port=0,
                 close_after_data=False):
        self.keywords = list(keywords)
        self.tls_files = tls_files
        self.auth = auth  # (user, password) required when set
        self.rcpt_reply = rcpt_reply or (lambda a: None)
        self.data_reply = data_reply or (lambda: "250 2.0.0 Ok: queued as T{n}")
        self.close_after_data = close_after_data
        self.transactions = []
        self.commands = []
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                outer.session(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def session(self, h):
        with self.lock:
            self.connections += 1
            conn_no = self.connections
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.converse(h, conn_no)
        finally:
            with self.lock:
                self.active -= 1

    def converse(self, h, conn_no):
        sock = h.connection
        rfile, wfile = h.rfile, h.wfile
        state = {"tls": False, "auth": None}

        def send(line):
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        def readline():
            line = rfile.readline(4096)
            if not line:
                raise EOFError
            with self.lock:
                self.commands.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            return line.decode("utf-8", "replace").rstrip("\r\n")

        send("220 mx.test ESMTP test server")
        txn = None
        try:
            while True:
                line = readline()
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "LHLO"):
                    kws = list(self.keywords)
                    if self.tls_files and not state["tls"]:
                        kws.append("STARTTLS")
                    if self.auth:
                        kws.append("AUTH PLAIN LOGIN")
                    lines = ["mx.test"] + kws
                    for i, k in enumerate(lines):
                        send(("250 " if i == len(lines) - 1 else "250-") + k)
                elif verb == "HELO":
                    send("250 mx.test")
                elif verb == "STARTTLS":
                    send("220 2.0.0 Ready to start TLS")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*self.tls_files)
                    sock = ctx.wrap_socket(sock, server_side=True)
                    rfile = sock.makefile("rb")
                    wfile = sock.makefile("wb")
                    state["tls"] = True
                elif verb == "AUTH":
                    parts = line.split(" ")
                    raw = base64.b64decode(parts[2]) if len(parts) > 2 else b""
                    creds = raw.split(b"\0")
                    if self.auth and len(creds) == 3 and \
                            (creds[1].decode(), creds[2].decode()) == self.auth:
                        state["auth"] = creds[1].decode()
                        send("235 2.7.0 Authentication successful")
                    else:
                        send("535 5.7.8 Error: authentication failed")
                elif verb == "MAIL":
                    if self.auth and not state["auth"]:
                        send("530 5.7.0 Authentication required")
                        continue
                    txn = {"mail": line, "rcpts": [], "data": None, "tls": state["tls"],
                           "auth": state["auth"], "conn": conn_no}
                    send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    addr = re.search(r"<([^>]*)>", line).group(1)
                    r = self.rcpt_reply(addr)
                    if r is None:
                        txn["rcpts"].append(line)
                        send("250 2.1.5 Ok")
                    else:
                        send(r)
                elif verb == "DATA":
                    if txn is None or not txn["rcpts"]:
                        send("554 5.5.1 Error: no valid recipients")
                        continue
                    send("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        chunk = rfile.readline(1 << 20)
                        if not chunk:
                            raise EOFError
                        if chunk == b".\r\n":
                            break
                        data += chunk
                    txn["data"] = data
                    with self.lock:
                        self.transactions.append(txn)
                        n = len(self.transactions)
                    send(self.data_reply().format(n=n))
                    txn = None
                    if self.close_after_data:
                        return  # drops the connection without a word, as servers may
                elif verb == "RSET":
                    txn = None
                    send("250 2.0.0 Ok")
                elif verb == "NOOP":
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    return
                else:
                    send("502 5.5.2 Error: command not recognized")
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            return


# --- deliverd ---------------------------------------------------------------------------------

# The daemons refuse to run as root: as root they drop to this user.
RUN_AS = "nobody" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name


def give(path: Path):
    """Hands a test-made file or directory to the daemon's user."""
    if os.getuid() == 0:
        pw = pwd.getpwnam(RUN_AS)
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Deliverd:
    def __init__(self, root: Path, extra: str, dns_port: int, smtp_port: int):
        self.root = root
        for d in ("run", "state", "mail"):
            (root / d).mkdir(exist_ok=True)
            give(root / d)
        user = RUN_AS
        keys = {"queue_run_interval": "1s", "retry_min_backoff": "1s",
                "retry_max_backoff": "2s", "relay_reuse_time": "1s",
                "relay_command_timeout": "10s", "relay_connect_timeout": "5s",
                "relay_dns_timeout": "1s", "dns_servers": f"127.0.0.1:{dns_port}",
                "smtp_port": str(smtp_port)}
        for line in extra.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                keys[k.strip()] = v.strip()
        if "virtual_alias_file" not in keys:
            # One entry: an empty map trips UBSan in aliases.c (qsort of NULL, n = 0).
            va = root / "virtual"
            va.write_text("postmaster@alice.test: alice@alice.test\n")
            os.chmod(va, 0o644)
            keys["virtual_alias_file"] = str(va)
        deliverd_keys = "\n".join(f"{k} = {v}" for k, v in keys.items())
        self.conf = root / "tern.conf"
        self.conf.write_text(f"""
hostname = mx.alice.test
domains = alice.test
run_dir = {root}/run
state_dir = {root}/state
mail_root = {root}/mail
log_target = stderr
vmail_user = {user}
default_user = {user}
[deliverd]
{deliverd_keys}
""")
        self.log = root / "deliverd.log"
        self.proc = None
        self.lmtp = root / "run" / "lmtp"
        self.queue = root / "state" / "queue"

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([str(DELIVERD), "-c", str(self.conf)], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        def ready():
            if self.proc.poll() is not None:
                pytest.fail("deliverd died: " + self.log.read_text())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.lmtp))
                return True
            except OSError:
                return False
        wait_for(ready, what="lmtp socket")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        # Under the ASan/UBSan build, a memory error or undefined behaviour fails the test.
        bad = re.search(r"ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer",
                        self.log.read_text(errors="replace"))
        assert bad is None, self.log.read_text(errors="replace")[-4000:]
        try:
            self.lmtp.unlink()
        except FileNotFoundError:
            pass
        self.logf.close()

    def logtext(self):
        return self.log.read_text(errors="replace")

    def queued(self):
        d = self.queue / "msg"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []

    def lmtp_send(self, sender, rcpts, body: bytes, mail_opts=(), rcpt_opts=()):
        c = smtplib.LMTP(str(self.lmtp), timeout=30)
        try:
            c.ehlo("test")
            code, msg = c.mail(sender, list(mail_opts))
            assert code == 250, (code, msg)
            for r in rcpts:
                code, msg = c.rcpt(r, list(rcpt_opts))
                assert code == 250, (r, code, msg)
            code, msg = c.data(body)
            assert code == 250, (code, msg, self.logtext())
        finally:
            c.quit()

    def flush(self):
        (self.queue / "flush").touch()


DNS_RECORDS = {
    "bob.test": {"MX": [(10, "mx.bob.test")]},
    "mx.bob.test": {"A": ["127.0.0.1"]},
    "other.test": {"MX": [(20, "mx2.other.test"), (10, "mx1.other.test")]},
    "mx1.other.test": {"A": ["127.0.0.1"]},
    "mx2.other.test": {"A": ["127.0.0.1"]},
    "nullmx.test": {"MX": [(0, ".")]},
    "sender.test": {"MX": [(10, "mx.bob.test")]},
    # Nothing listens on 127.0.0.2: connection refused, for ever.
    "down.test": {"MX": [(10, "mx.down.test")]},
    "mx.down.test": {"A": ["127.0.0.2"]},
}


@pytest.fixture(autouse=True)
def need_binary():
    if not DELIVERD.exists():
        pytest.fail(f"{DELIVERD} is not built")


@pytest.fixture
def dns():
    d = DNS(DNS_RECORDS)
    yield d
    d.close()


@pytest.fixture
def droot(tmp_path):
    """A directory the dropped daemon can enter (pytest's tmp_path is private to root)."""
    if os.getuid() != 0:
        yield tmp_path
        return
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="tern-relay-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(droot, dns):
    """(make_deliverd, servers): builds a deliverd for a server port, stops all at the end."""
    tmp_path = droot
    made, servers = [], []

    def make(server, extra=""):
        d = Deliverd(tmp_path, extra, dns.port, server.port)
        made.append(d)
        return d

    def serve(**kw):
        s = SMTPServer(**kw)
        servers.append(s)
        return s

    yield make, serve
    for d in made:
        if d.proc is not None:
            d.stop()
    for s in servers:
        s.close()


BODY = (b"Received: from client by mx.alice.test\r\nFrom: alice@alice.test\r\n"
        b"To: bob@bob.test\r\nSubject: relay test\r\n\r\nHello Bob.\r\n.leading dot\r\n"
        b"last line\r\n")


def test_relay_to_mx_sent_once_with_pipelining_and_log(env):
    make, serve = env
    srv = serve()
    d = make(srv)
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test", "carol@bob.test"], BODY)
    wait_for(lambda: srv.transactions, what="relayed message")
    t = srv.transactions[0]
    # One transaction for both recipients: stored once, sent once.
    assert len(srv.transactions) == 1
    assert [re.search(r"<(.*?)>", r).group(1) for r in t["rcpts"]] == ["bob@bob.test",
                                                                        "carol@bob.test"]
    assert t["mail"].startswith("MAIL FROM:<alice@alice.test>")
    assert "SIZE=" in t["mail"]
    # The bytes arrive as they were sent (dot-stuffing undone by the reader above is not
    # done: the server saw the stuffed line).
    assert t["data"] == BODY.replace(b"\r\n.leading", b"\r\n..leading")
    # Pipelining: MAIL, RCPT, RCPT, DATA were sent before the first reply was read; the
    # server logs commands in arrival order either way, so check the order only.
    cmds = [c.split(" ")[0].split(":")[0] for c in srv.commands]
    assert cmds[:6] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"] or \
        cmds[:5] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]
    log = wait_for(lambda: "status=sent" in d.logtext() and "removed" in d.logtext() and
                   d.logtext(), what="log lines")
    assert re.search(r"to=<bob@bob\.test>, relay=mx\.bob\.test\[127\.0\.0\.1\]:%d, delay=[0-9.]+,"
                     r" dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as T1\)"
                     % srv.port, log), log
    assert "status=queued (queued as" in log
    wait_for(lambda: d.queued() == [], what="queue empty")


def test_rcpt_rejected_bounces_to_sender_with_dsn(env):
    make, serve = env
    srv = serve(rcpt_reply=lambda a: "550 5.1.1 <%s>: Recipient address rejected: User unknown"
                % a if a.startswith("nobody") else None)
    d = make(srv)
    d.start()
    # The sender is remote too, so the bounce goes out through the same server.
    d.lmtp_send("sam@sender.test", ["nobody@bob.test", "bob@bob.test"], BODY)
    wait_for(lambda: len(srv.transactions) >= 2, what="message and bounce")
    msg, dsn = srv.transactions[0], srv.transactions[1]
    assert len(msg["rcpts"]) == 1 and "bob@bob.test" in msg["rcpts"][0]
    assert dsn["mail"].startswith("MAIL FROM:<>")
    assert "sam@sender.test" in dsn["rcpts"][0]
    import email
    m = email.message_from_bytes(dsn["data"])
    assert m.get_content_type() == "multipart/report"
    status = m.get_payload()[1].get_payload()
    assert status[1]["Final-Recipient"] == "rfc822; nobody@bob.test"
    assert status[1]["Action"] == "failed" and status[1]["Status"] == "5.1.1"
    assert "User unknown" in status[1]["Diagnostic-Code"]
    assert "Subject: relay test" in m.get_payload()[2].get_payload()
    log = d.logtext()
    assert re.search(r"to=<nobody@bob\.test>, relay=mx\.bob\.test\[127\.0\.0\.1\]:\d+, "
                     r"delay=[0-9.]+, dsn=5\.1\.1, status=bounced \(host mx\.bob\.test"
                     r"\[127\.0\.0\.1\] said: 550 5\.1\.1 .*\(in reply to RCPT TO command\)\)",
                     log), log
    assert "sender non-delivery notification" in log


def test_null_sender_never_bounced(env):
    make, serve = env
    srv = serve(rcpt_reply=lambda a: "550 5.1.1 no such user")
    d = make(srv)
    d.start()
    d.lmtp_send("", ["nobody@bob.test"], BODY)
    wait_for(lambda: "status=bounced" in d.logtext(), what="bounce")
    wait_for(lambda: d.queued() == [], what="queue empty")
    time.sleep(0.5)
    assert srv.transactions == []
    assert "non-delivery notification:" not in d.logtext()


def test_null_mx_bounces_at_once(env):
    make, serve = env
    srv = serve()
    d = make(srv)
    d.start()
    d.lmtp_send("sam@sender.test", ["x@nullmx.test"], BODY)
    wait_for(lambda: srv.transactions, what="the DSN")
    dsn = srv.transactions[0]
    assert dsn["mail"].startswith("MAIL FROM:<>")
    assert b"Status: 5.1.10" in dsn["data"]
    assert b"nullMX" in dsn["data"]
    assert re.search(r"to=<x@nullmx\.test>, relay=none, .*dsn=5\.1\.10, status=bounced",
                     d.logtext())


def test_deferred_then_delivered_after_flush(env, tmp_path):
    make, serve = env
    # A port with nothing listening: connection refused.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    class Down:
        pass
    down = Down()
    down.port = port
    d = make(down, "retry_min_backoff = 1h\nretry_max_backoff = 1h")
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    log = wait_for(lambda: "status=deferred" in d.logtext() and d.logtext(), what="deferral")
    assert re.search(r"to=<bob@bob\.test>, relay=mx\.bob\.test\[127\.0\.0\.1\]:%d, .*dsn=4\.4\.1, "
                     r"status=deferred \(connect to mx\.bob\.test\[127\.0\.0\.1\]:%d: "
                     r"connection refused\)" % (port, port), log, re.I), log
    assert len(d.queued()) == 1
    # The state is written right after the log line.
    sf = d.queue / "state" / d.queued()[0]
    wait_for(sf.exists, what="state file")
    state = sf.read_text()
    assert " P 1 " in state  # pending, one try
    # The server comes up on that port; nothing happens for an hour unless flushed.
    # mailq (sendmail -bp) shows it with the reason.
    mq = subprocess.run([str(SENDMAIL), "-C", str(d.conf), "-bp"], capture_output=True,
                        text=True, timeout=30, check=False)
    assert mq.returncode == 0 and "bob@bob.test" in mq.stdout, mq
    assert "1 Request." in mq.stdout and "refused" in mq.stdout.lower(), mq.stdout
    srv = serve(port=port)
    time.sleep(1.5)
    assert srv.transactions == []
    # sendmail -q asks for a queue run (root may; the queue belongs to deliverd's user).
    q = subprocess.run([str(SENDMAIL), "-C", str(d.conf), "-q"], capture_output=True,
                       text=True, timeout=30, check=False)
    assert q.returncode == 0, q
    wait_for(lambda: srv.transactions, what="delivery after flush")
    wait_for(lambda: d.queued() == [], what="queue empty")
    assert len(srv.transactions) == 1


def test_8bit_to_server_without_8bitmime_bounces(env):
    make, serve = env
    srv = serve(keywords=("PIPELINING",))
    d = make(srv)
    d.start()
    d.lmtp_send("sam@sender.test", ["bob@bob.test"],
                BODY.replace(b"Hello Bob.", "Grüße".encode()))
    wait_for(lambda: "status=bounced" in d.logtext(), what="bounce")
    assert re.search(r"dsn=5\.6\.3, status=bounced \(8-bit message, but host mx\.bob\.test",
                     d.logtext())
    # The DSN itself carries the 8-bit headers? No: only the body had them, so it goes out.
    wait_for(lambda: srv.transactions, what="the DSN")
    assert srv.transactions[0]["mail"].startswith("MAIL FROM:<>")


def test_connection_reuse_and_mx_order(env):
    make, serve = env
    srv = serve()
    d = make(srv, "relay_destination_concurrency = 1\nrelay_reuse_time = 3s")
    d.start()
    for i in range(3):
        d.lmtp_send("alice@alice.test", [f"u{i}@other.test"], BODY)
    wait_for(lambda: len(srv.transactions) == 3, what="three messages")
    # One destination, concurrency 1: one connection carried all three (or, if the first
    # finished before the next arrived, the parked connection was reused).
    assert srv.connections == 1, srv.connections
    log = d.logtext()
    # other.test: MX 10 mx1 before MX 20 mx2.
    assert "relay=mx1.other.test[127.0.0.1]" in log
    assert "relay=mx2.other.test" not in log


def make_cert(tmp_path, name="server"):
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=mx.bob.test"],
                   check=True, capture_output=True, timeout=60)
    return str(crt), str(key)


def test_opportunistic_starttls(env, tmp_path):
    make, serve = env
    srv = serve(tls_files=make_cert(tmp_path))
    d = make(srv)
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    wait_for(lambda: srv.transactions, what="message over TLS")
    assert srv.transactions[0]["tls"] is True
    # EHLO twice: before and after STARTTLS (RFC 3207 4.2).
    assert [c.split(" ")[0] for c in srv.commands][:3] == ["EHLO", "STARTTLS", "EHLO"]


def test_relayhost_auth_and_required_tls(env, tmp_path, droot):
    make, serve = env
    crt, key = make_cert(droot)
    os.chmod(key, 0o600)
    srv = serve(tls_files=(crt, key), auth=("alice", "s3cret pass"))
    pw = droot / "relay.pw"
    pw.write_text("s3cret pass\n")
    give(pw)
    # The relayhost's certificate is verified against smtp_tls_ca_file (here: itself).
    d = make(srv, f"relayhost = [127.0.0.1]:{srv.port}\nrelayhost_user = alice\n"
                  f"relayhost_password_file = {pw}\nrelayhost_tls = encrypt\n"
                  f"smtp_tls_ca_file = {crt}")
    d.start()
    d.lmtp_send("alice@alice.test", ["x@nullmx.test"], BODY)  # no DNS is asked at all
    wait_for(lambda: srv.transactions, what="message via relayhost")
    t = srv.transactions[0]
    assert t["tls"] and t["auth"] == "alice"
    log = d.logtext()
    assert re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent" % srv.port, log)
    assert "s3cret" not in log


def test_relayhost_without_tls_defers(env, tmp_path):
    make, serve = env
    srv = serve()  # no STARTTLS
    d = make(srv, f"relayhost = [127.0.0.1]:{srv.port}\nrelayhost_tls = encrypt")
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    wait_for(lambda: "status=deferred" in d.logtext(), what="deferral")
    assert "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]" in d.logtext()
    assert srv.transactions == []
    assert len(d.queued()) == 1


def test_kill9_with_queued_and_in_flight_messages(env):
    """kill -9 while messages wait and while one is being sent: after a restart every
    message arrives, none is lost (one may arrive twice if the kill fell between the
    remote 250 and the state write, never zero times)."""
    make, serve = env
    hold = threading.Event()
    srv = serve(data_reply=lambda: (hold.wait(20), "250 2.0.0 Ok: queued as T{n}")[1])
    d = make(srv, "relay_destination_concurrency = 1")
    d.start()
    subjects = [f"msg-{i}" for i in range(4)]
    for s in subjects:
        d.lmtp_send("alice@alice.test", ["bob@bob.test"],
                    BODY.replace(b"relay test", s.encode()))
    # The first message's final dot was sent; its reply is held back. Kill now.
    wait_for(lambda: srv.transactions, what="first message in flight")
    d.stop(signal.SIGKILL)
    hold.set()
    assert len(d.queued()) >= 3
    d.start()
    d.flush()
    want = set(subjects)
    wait_for(lambda: want <= {re.search(rb"Subject: (\S+)", t["data"]).group(1).decode()
                              for t in srv.transactions}, timeout=30, what="all messages")
    wait_for(lambda: d.queued() == [], what="queue empty")
    got = [re.search(rb"Subject: (\S+)", t["data"]).group(1).decode() for t in srv.transactions]
    for s in subjects:
        assert 1 <= got.count(s) <= 2, got
    assert sum(got.count(s) - 1 for s in subjects) <= 1, got


def test_torn_queue_file_never_sent(env):
    make, serve = env
    srv = serve()
    d = make(srv)
    d.queue.mkdir(parents=True, exist_ok=True)
    (d.queue / "msg").mkdir(exist_ok=True)
    (d.queue / "tmp").mkdir(exist_ok=True)
    for p in (d.queue, d.queue / "msg", d.queue / "tmp"):
        give(p)
    good = ("TERNQ 1\nqid 0000000000000001\narrival 1\nsender alice@alice.test\nenvid -\n"
            "ret -\nflags ---\nrcpt 0 bob@bob.test -\nsize %020d\nend\n" % len(BODY)).encode()
    (d.queue / "msg" / "0000000000000001").write_bytes(good + BODY)
    (d.queue / "msg" / "0000000000000002").write_bytes(
        good.replace(b"0000000000000001", b"0000000000000002") + BODY[:-5])
    (d.queue / "tmp" / "0000000000000003").write_bytes(good[:40])
    for p in ("msg/0000000000000001", "msg/0000000000000002", "tmp/0000000000000003"):
        give(d.queue / p)
    d.start()
    wait_for(lambda: srv.transactions, what="the good message")
    wait_for(lambda: d.queued() == [], what="queue empty")
    time.sleep(0.5)
    assert len(srv.transactions) == 1
    assert (d.queue / "corrupt" / "0000000000000002").exists()
    assert not (d.queue / "tmp" / "0000000000000003").exists()
    assert "invalid queue file" in d.logtext()


def ternctl(d, *args):
    return subprocess.run([str(TERNCTL), "-c", str(d.conf), "queue", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_ternctl_queue_list_hold_release_flush_delete(env):
    import json
    make, serve = env
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    class Down:
        pass
    down = Down()
    down.port = port
    d = make(down, "retry_min_backoff = 1h\nretry_max_backoff = 1h")
    r = ternctl(d, "list")
    assert r.returncode == 0 and r.stdout == "Mail queue is empty\n", r
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    d.lmtp_send("alice@alice.test", ["carol@bob.test"], BODY)
    wait_for(lambda: d.logtext().count("status=deferred") == 2, what="two deferrals")
    wait_for(lambda: all((d.queue / "state" / q).exists() for q in d.queued()),
             what="state files")
    r = ternctl(d, "list")
    assert r.returncode == 0
    assert r.stdout.endswith("-- 1 Kbytes in 2 Requests.\n"), r.stdout
    assert "bob@bob.test" in r.stdout and "Connection refused" in r.stdout.replace(
        "connection refused", "Connection refused")
    r = ternctl(d, "list", "--json")
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 2 and {o["queue_name"] for o in objs} == {"deferred"}
    assert {o["recipients"][0]["address"] for o in objs} == {"bob@bob.test", "carol@bob.test"}
    assert all(o["sender"] == "alice@alice.test" and o["message_size"] == len(BODY) for o in objs)
    bob = next(o["queue_id"] for o in objs if o["recipients"][0]["address"] == "bob@bob.test")
    carol = next(o["queue_id"] for o in objs if o["queue_id"] != bob)
    # Hold bob's message; bring the server up and flush: only carol's goes.
    r = ternctl(d, "hold", bob)
    assert r.returncode == 0 and "placed on hold" in r.stdout
    assert json.loads([x for x in ternctl(d, "list", "--json").stdout.splitlines()
                       if bob in x][0])["queue_name"] == "hold"
    srv = serve(port=port)
    assert ternctl(d, "flush").returncode == 0
    wait_for(lambda: srv.transactions, what="carol's message")
    time.sleep(1.0)
    assert len(srv.transactions) == 1 and "carol@bob.test" in srv.transactions[0]["rcpts"][0]
    assert d.queued() == [bob]
    # Release and flush: bob's goes too.
    assert ternctl(d, "release", bob).returncode == 0
    assert ternctl(d, "flush").returncode == 0
    wait_for(lambda: len(srv.transactions) == 2, what="bob's message")
    wait_for(lambda: d.queued() == [], what="queue empty")
    # delete: a new deferred message (server down again) is removed and never sent.
    srv.close()
    time.sleep(1.5)  # the parked connection (relay_reuse_time = 1s) is gone by now
    d.lmtp_send("alice@alice.test", ["dave@bob.test"], BODY)
    wait_for(lambda: d.logtext().count("status=deferred") >= 3, what="deferral")
    qid = d.queued()[0]
    r = ternctl(d, "delete", qid)
    assert r.returncode == 0 and "removed" in r.stdout
    assert d.queued() == []
    # Bad ids and subcommands.
    assert ternctl(d, "delete", "../../etc/passwd").returncode == 65  # EX_DATAERR
    assert ternctl(d, "hold", "0123456789ABCDEF").returncode == 66  # EX_NOINPUT
    assert ternctl(d, "frobnicate").returncode == 64  # EX_USAGE


def test_maildrop_picked_up_after_restart(env):
    """Mail left in the maildrop while deliverd is down (what sendmail's maildrop writer
    makes: deliverd/queue_maildrop.h) goes out when deliverd runs again."""
    make, serve = env
    srv = serve()
    d = make(srv)
    d.start()
    d.stop()
    drop = d.root / "state" / "maildrop"
    assert oct(drop.stat().st_mode & 0o7777) == "0o1733"
    body = b"Subject: cron job\n\nthe disk is full\n"
    head = b"TERND 1\nsender cron@alice.test\nrcpt ops@bob.test\nend\n"
    (drop / "t.half").write_bytes(head[:20])  # a writer that died: never sent
    (drop / "m.0001").write_bytes(head + body)
    d.start()
    wait_for(lambda: srv.transactions, what="the maildrop message")
    t = srv.transactions[0]
    assert "ops@bob.test" in t["rcpts"][0]
    assert t["data"] == body.replace(b"\n", b"\r\n")
    # The file's owner decides the sender: here it is root or deliverd's own user, both
    # trusted, so the written one stays (the untrusted case: test_queue_maildrop.c).
    assert t["mail"].startswith("MAIL FROM:<cron@alice.test>")
    assert not (drop / "m.0001").exists()
    assert (drop / "t.half").exists()
    assert "maildrop m.0001" in d.logtext()


def test_dsn_parameters_passed_on(env):
    make, serve = env
    srv = serve()
    d = make(srv)
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY,
                mail_opts=["RET=HDRS", "ENVID=QQ+2B1"],
                rcpt_opts=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;Bob+2Bx@bob.test"])
    wait_for(lambda: srv.transactions, what="relayed message")
    t = srv.transactions[0]
    assert " RET=HDRS" in t["mail"] and " ENVID=QQ+2B1" in t["mail"], t["mail"]
    assert " NOTIFY=FAILURE,DELAY" in t["rcpts"][0], t["rcpts"]
    assert " ORCPT=rfc822;Bob+2Bx@bob.test" in t["rcpts"][0], t["rcpts"]
    # A server without DSN gets none of them.
    srv2 = serve(keywords=("PIPELINING", "8BITMIME"))
    d.stop()
    d2 = make(srv2)
    d2.start()
    d2.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY, mail_opts=["RET=FULL"],
                 rcpt_opts=["NOTIFY=NEVER"])
    wait_for(lambda: srv2.transactions, what="relayed message")
    assert "RET=" not in srv2.transactions[0]["mail"]
    assert "NOTIFY" not in srv2.transactions[0]["rcpts"][0]


def test_concurrency_limits(env):
    """relay_destination_concurrency bounds the connections to one destination, and
    relay_max_connections all of them together (the server holds each DATA reply a little,
    so that sessions overlap; only the upper bound is asserted)."""
    make, serve = env
    srv = serve(data_reply=lambda: (time.sleep(0.2), "250 2.0.0 Ok: queued as T{n}")[1])
    d = make(srv, "relay_destination_concurrency = 2\nrelay_max_connections = 3")
    d.start()
    for i in range(6):
        d.lmtp_send("alice@alice.test", [f"u{i}@bob.test"], BODY)
    wait_for(lambda: len(srv.transactions) == 6, what="six messages")
    assert 1 <= srv.max_active <= 2, srv.max_active
    # Two destinations at once: at most 3 in total.
    srv.max_active = 0
    for i in range(8):
        d.lmtp_send("alice@alice.test", [f"v{i}@{'bob' if i % 2 else 'other'}.test"], BODY)
    wait_for(lambda: len(srv.transactions) == 14, what="eight more")
    assert 1 <= srv.max_active <= 3, srv.max_active


def test_delay_warning_then_expiry_bounce(env):
    make, serve = env
    srv = serve()
    d = make(srv, "queue_lifetime = 4s\ndelay_warning_time = 1s\nretry_min_backoff = 500ms\n"
                  "retry_max_backoff = 1s\nqueue_run_interval = 500ms")
    d.start()
    t0 = time.monotonic()
    d.lmtp_send("sam@sender.test", ["x@down.test"], BODY)
    wait_for(lambda: len(srv.transactions) >= 2, timeout=30, what="warning and bounce")
    elapsed = time.monotonic() - t0
    import email
    warn = email.message_from_bytes(srv.transactions[0]["data"])
    fail = email.message_from_bytes(srv.transactions[1]["data"])
    ws = warn.get_payload()[1].get_payload()[1]
    fs = fail.get_payload()[1].get_payload()[1]
    assert warn["Subject"] == "Delayed Mail (still being retried)"
    assert ws["Action"] == "delayed" and ws["Status"] == "4.4.1", (ws["Action"], ws["Status"])
    assert fail["Subject"] == "Undelivered Mail Returned to Sender"
    assert fs["Action"] == "failed" and fs["Status"] == "4.4.7"
    assert "connect to mx.down.test[127.0.0.2]" in fs["Diagnostic-Code"]
    # The bounce came no earlier than the lifetime.
    assert elapsed >= 4.0
    assert re.search(r"to=<x@down\.test>, .*dsn=4\.4\.7, status=expired", d.logtext())
    wait_for(lambda: d.queued() == [], what="queue empty")
    assert len(srv.transactions) == 2


def test_relayhost_certificate_not_trusted_defers(env, tmp_path, droot):
    make, serve = env
    srv = serve(tls_files=make_cert(tmp_path))
    # A different self-signed certificate as the only CA.
    other_ca, _ = make_cert(droot, "other")
    d = make(srv, f"relayhost = [127.0.0.1]:{srv.port}\nrelayhost_tls = encrypt\n"
                  f"smtp_tls_ca_file = {other_ca}")
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    wait_for(lambda: "status=deferred" in d.logtext(), what="deferral")
    assert "TLS handshake with 127.0.0.1[127.0.0.1]:%d failed" % srv.port in d.logtext()
    assert srv.transactions == []


def test_reused_connection_dropped_by_server_is_not_a_failed_try(env):
    """The server drops each connection after one message. The session that tries to reuse
    it sees the connection go before any reply: the job goes back to the queue and is sent
    over a new connection at once, not deferred."""
    make, serve = env
    release = threading.Event()
    srv = serve(close_after_data=True,
                data_reply=lambda: (release.wait(20), "250 2.0.0 Ok: queued as T{n}")[1])
    d = make(srv, "relay_destination_concurrency = 1\nrelay_reuse_time = 5s\n"
                  "retry_min_backoff = 1h\nretry_max_backoff = 1h")
    d.start()
    d.lmtp_send("alice@alice.test", ["bob@bob.test"], BODY)
    wait_for(lambda: srv.commands.count("DATA") >= 1, what="first DATA")
    d.lmtp_send("alice@alice.test", ["carol@bob.test"], BODY)  # waits behind the first
    release.set()
    wait_for(lambda: len(srv.transactions) == 2, what="both messages")
    assert "status=deferred" not in d.logtext()
    assert srv.connections >= 2
    wait_for(lambda: d.queued() == [], what="queue empty")


def test_pflogsumm_reads_the_relay_log(env):
    """Debian's pflogsumm counts the relay's lines as Postfix's: sent, bounced, deferred."""
    r = subprocess.run([str(Path(os.environ.get("TERN_SOURCE_DIR", ".")) / "scripts" / "deps"),
                        "pflogsumm"], capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0 or shutil.which("pflogsumm") is None:
        pytest.skip(f"pflogsumm not installable: {r.stderr[-300:]}")
    make, serve = env
    srv = serve(rcpt_reply=lambda a: "550 5.1.1 no such user" if a.startswith("nobody")
                else "451 4.3.0 try later" if a.startswith("later") else None)
    d = make(srv, "retry_min_backoff = 1h\nretry_max_backoff = 1h")
    d.start()
    d.lmtp_send("", ["bob@bob.test", "carol@bob.test", "nobody@bob.test", "later@bob.test"],
                BODY)
    wait_for(lambda: all(s in d.logtext() for s in ("status=sent", "status=bounced",
                                                    "status=deferred")), what="outcomes")
    d.stop()
    r = subprocess.run(["pflogsumm", "--syslog_name=tern", str(d.log)], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    lines = [x.split() for x in r.stdout.splitlines()]
    assert ["2", "delivered"] in lines, r.stdout[:1200]
    assert ["1", "bounced"] in lines, r.stdout[:1200]
    assert any(x[:2] == ["1", "deferred"] for x in lines), r.stdout[:1200]
