"""COMPRESS=DEFLATE (RFC 4978) and LITERAL-/LITERAL+ (RFC 7888) in tern-imapd.

A client written here speaks raw DEFLATE with Python's zlib (wbits=-15) over plaintext
loopback and over implicit TLS (port 993): LOGIN, COMPRESS DEFLATE, SELECT, a large FETCH
byte-exact, APPEND with a literal, IDLE that sees mail delivered over SMTP, LOGOUT; a
decompression bomb; COMPRESS twice, before login and with an unknown algorithm. Then
mutt (Debian 12's mutt has imap_deflate; Debian 12's neomutt is built without zlib)
reads a folder with COMPRESS, proven by the server log. Then LITERAL- on a second stack.
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import zlib

import pytest

from mutt_driver import mutt_screen_shows
from ternstack import SOURCE, Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

_counter = [0]


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        yield st


def drop_message(maildir, subject, pad=0):
    """Writes a message into new/ the way any Maildir MDA does (tmp, then rename)."""
    _counter[0] += 1
    name = "%d.M%dP%d.compresstest" % (time.time(), _counter[0], os.getpid())
    lines = ["From: alice@example.test", "To: bob@example.test", "Subject: %s" % subject,
             "Message-ID: <%s@test>" % name, ""]
    # Varied text, so it is not all one repeated byte.
    for i in range(pad // 80):
        lines.append(("line %d of %s " % (i, subject)).ljust(79, "abcdefghij"[i % 10]))
    lines.append("end")
    text = "\n".join(lines) + "\n"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(maildir, "new", name))
    return text.replace("\n", "\r\n").encode()


class Client:
    """A blocking IMAP client that can switch the stream to raw DEFLATE."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(30)
        self.buf = b""
        self.deflate = None
        self.inflate = None
        self.wire_in = 0
        self.wire_out = 0

    def send(self, data):
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if time.time() > deadline:
            raise AssertionError("timed out; have %r" % self.buf[-300:])
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; have %r" % self.buf[-300:])
        self.wire_in += len(chunk)
        if self.inflate is not None:
            chunk = self.inflate.decompress(chunk)
        self.buf += chunk

    def readline(self, timeout=30):
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n, timeout=60):
        deadline = time.time() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until_tagged(self, tag, timeout=30):
        """Lines up to the tagged reply; literals are read whole and kept inline."""
        out = []
        for _ in range(100000):
            line = self.readline(timeout)
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                line += b"\r\n" + self.read_exact(int(m.group(1)))
                line += self.readline(timeout)
            out.append(line)
            if line.startswith(tag + b" "):
                return out
        raise AssertionError("no tagged reply")

    def command(self, tag, text):
        self.send(b"%s %s\r\n" % (tag, text))
        lines = self.until_tagged(tag)
        return lines[-1], lines[:-1]

    def start_compress(self, tag=b"z"):
        self.send(b"%s COMPRESS DEFLATE\r\n" % tag)
        # The OK is the last uncompressed line: read it without taking compressed bytes.
        line = b""
        while not line.endswith(b"\r\n"):
            if self.buf:
                line += self.buf[:1]
                self.buf = self.buf[1:]
                continue
            ch = self.sock.recv(1)
            assert ch, "closed before the COMPRESS reply"
            line += ch
        assert line.startswith(tag + b" OK"), line
        assert not self.buf
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)

    def close(self):
        self.sock.close()


def connect(stack, tls):
    if tls:
        ctx = ssl.create_default_context(cafile=stack.ca)
        ctx.check_hostname = False
        raw = socket.create_connection(("127.0.0.1", stack.port("imaps")), timeout=30)
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    else:
        sock = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=30)
    c = Client(sock)
    assert c.readline().startswith(b"* OK")
    return c


def login(stack, c, user):
    addr, pw = stack.users[user]
    tagged, untagged = c.command(b"a", b'LOGIN "%s" "%s"' % (addr.encode(), pw.encode()))
    assert tagged.startswith(b"a OK"), tagged
    return tagged


def deliver(stack, user, subject):
    """Mail through smtpd and deliverd, as any sender would send it."""
    addr = stack.users[user][0]
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=30) as s:
        s.sendmail("carol@example.test", [addr],
                   "From: carol@example.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n"
                   % (addr, subject))


def imapd_rss_kib(stack):
    with open(os.path.join(stack.dir, "pid", "imapd.pid")) as f:
        pid = int(f.read().strip())
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_compressed_session(stack, tls):
    user = "alice" if not tls else "bob"
    box = stack.maildir(user)
    big = drop_message(box, "big one %s" % tls, pad=3 * 1024 * 1024)
    c = connect(stack, tls)
    tagged = login(stack, c, user)
    assert b"COMPRESS=DEFLATE" in tagged, tagged  # post-login capabilities
    c.start_compress()
    # Pipelined in one compressed flush, answered without us sending anything more.
    c.send(b"b CAPABILITY\r\nc SELECT INBOX\r\n")
    caps = c.until_tagged(b"b")
    assert b"COMPRESS=DEFLATE" in caps[0] and caps[-1].startswith(b"b OK")
    lines = c.until_tagged(b"c")
    assert lines[-1].startswith(b"c OK"), lines
    exists = int(re.search(rb"\* (\d+) EXISTS", b"\n".join(lines)).group(1))

    # The big message byte-exact: its literal must equal the file, CRLF form.
    c.send(b"d FETCH %d (BODY.PEEK[])\r\n" % exists)
    before = c.wire_in
    c.sock.settimeout(60)
    first = c.readline(60)
    m = re.match(rb"\* %d FETCH \(BODY\[\] \{(\d+)\}$" % exists, first)
    assert m, first
    body = c.read_exact(int(m.group(1)))
    assert body == big
    assert c.readline() == b")"
    assert c.readline().startswith(b"d OK")
    on_wire = c.wire_in - before
    assert on_wire < len(big) / 3, "FETCH was not compressed: %d for %d" % (on_wire, len(big))

    # APPEND with a synchronising literal: the "+" comes back compressed and flushed.
    msg = b"From: x@example.test\r\nSubject: appended %d\r\n\r\nhello\r\n" % tls
    c.send(b"e APPEND INBOX {%d}\r\n" % len(msg))
    assert c.readline().startswith(b"+")
    c.send(msg + b"\r\n")
    lines = c.until_tagged(b"e")
    assert lines[-1].startswith(b"e OK"), lines
    # And a non-synchronising one (LITERAL+ is on by default).
    c.send(b"f APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
    lines = c.until_tagged(b"f")
    assert lines[-1].startswith(b"f OK"), lines
    tagged, lines = c.command(b"g", b"UID SEARCH SUBJECT appended")
    assert tagged.startswith(b"g OK")
    assert len(lines[0].split()) == 4, lines  # "* SEARCH" and two UIDs

    # COMPRESS again: refused, and the stream goes on.
    tagged, _ = c.command(b"h", b"COMPRESS DEFLATE")
    assert tagged.startswith(b"h NO [COMPRESSIONACTIVE]"), tagged
    tagged, _ = c.command(b"i", b"NOOP")
    assert tagged.startswith(b"i OK")

    # IDLE: a message delivered over SMTP is announced, flushed through the compressor.
    if built("smtpd") and built("deliverd"):
        tagged, lines = c.command(b"j", b"SELECT INBOX")
        count = int(re.search(rb"\* (\d+) EXISTS", b"\n".join(lines)).group(1))
        c.send(b"k IDLE\r\n")
        assert c.readline().startswith(b"+")
        deliver(stack, user, "pushed while compressed")
        deadline = time.time() + 30
        seen = b""
        while b"EXISTS" not in seen and time.time() < deadline:
            seen = c.readline(30)
        assert seen == b"* %d EXISTS" % (count + 1), seen
        c.send(b"DONE\r\n")
        lines = c.until_tagged(b"k")
        assert lines[-1].startswith(b"k OK")

    c.send(b"l LOGOUT\r\n")
    lines = c.until_tagged(b"l")
    assert lines[0].startswith(b"* BYE") and lines[-1].startswith(b"l OK")
    c.close()
    addr = stack.users[user][0]
    log = stack.log("imapd")
    assert "COMPRESS=DEFLATE started" in log
    # At disconnect the totals are logged: the big FETCH went out at well under 1:1.
    deadline = time.time() + 10
    totals = None
    while totals is None and time.time() < deadline:
        found = re.findall(r"imap\(%s\): COMPRESS=DEFLATE totals: in=(\d+)/(\d+) "
                           r"out=(\d+)/(\d+)" % re.escape(addr), stack.log("imapd"))
        totals = found[-1] if found else None
        time.sleep(0.1)
    assert totals, log[-2000:]
    raw_out, wire_out = int(totals[2]), int(totals[3])
    assert raw_out > len(big) and wire_out < raw_out / 3, totals


def test_compress_refused_before_login_and_unknown_algorithm(stack):
    c = connect(stack, False)
    tagged, _ = c.command(b"a", b"CAPABILITY")
    tagged, lines = c.command(b"a", b"CAPABILITY")
    assert b"COMPRESS" not in lines[0]  # post-login only
    tagged, _ = c.command(b"b", b"COMPRESS DEFLATE")
    assert tagged.startswith(b"b BAD"), tagged
    login(stack, c, "alice")
    tagged, _ = c.command(b"c", b"COMPRESS LZW")
    assert tagged.startswith(b"c BAD"), tagged
    tagged, _ = c.command(b"d", b"COMPRESS")
    assert tagged.startswith(b"d BAD"), tagged
    tagged, _ = c.command(b"e", b"NOOP")  # still plaintext
    assert tagged.startswith(b"e OK")
    c.close()


def test_decompression_bomb(stack):
    """256 MiB of one line in about 250 KB of DEFLATE: the same "line too long" as in
    plaintext, bounded memory, and the session still works afterwards."""
    c = connect(stack, False)
    login(stack, c, "alice")
    rss_before = imapd_rss_kib(stack)
    c.start_compress()
    block = b"A" * (1 << 20)
    wire = 0
    c.sock.sendall(c.deflate.compress(b"x NOOP "))
    for _ in range(256):
        data = c.deflate.compress(block)
        wire += len(data)
        c.sock.sendall(data)
    tail = c.deflate.compress(b"\r\ny NOOP\r\n") + c.deflate.flush(zlib.Z_SYNC_FLUSH)
    c.sock.sendall(tail)
    wire += len(tail)
    assert wire < 512 * 1024, wire
    c.sock.settimeout(120)
    first = c.readline(120)
    assert first == b"x BAD Command line too long", first
    lines = c.until_tagged(b"y", timeout=120)
    assert lines[-1].startswith(b"y OK"), lines
    grown = imapd_rss_kib(stack) - rss_before
    assert grown < 16 * 1024, "imapd grew by %d KiB" % grown
    c.close()


def test_corrupt_stream_closes(stack):
    c = connect(stack, False)
    login(stack, c, "alice")
    c.start_compress()
    c.send_raw(b"\xff\xff\xff\xff")  # a reserved block type
    with pytest.raises(EOFError):
        c.readline(30)
    c.close()


def test_mutt_with_imap_deflate(stack, tmp_path):
    """mutt (Debian 12, with imap_deflate; Debian 12's neomutt lacks zlib) reads a folder
    over STARTTLS with COMPRESS; the server log shows it was used."""
    subprocess.run([os.path.join(SOURCE, "scripts", "deps"), "mutt", "tmux"], timeout=600)
    if shutil.which("mutt") is None or shutil.which("tmux") is None:
        pytest.skip("mutt or tmux could not be installed")
    probe = subprocess.run(["mutt", "-n", "-F", "/dev/null", "-Q", "imap_deflate"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, HOME=str(tmp_path)))
    assert "imap_deflate" in probe.stdout, probe.stdout + probe.stderr
    addr, pw = stack.users["bob"]
    drop_message(stack.maildir("bob"), "read through deflate")
    log_before = stack.log("imapd").count("COMPRESS=DEFLATE started")
    screen = mutt_screen_shows(stack, "bob", tmp_path, "read through deflate",
                               extra="set imap_deflate=yes\n", tag="mutt-z")
    assert "read through deflate" in screen, screen
    log = stack.log("imapd")
    assert log.count("COMPRESS=DEFLATE started") > log_before, log[-2000:]
    assert re.search(r"imap\(%s\): COMPRESS=DEFLATE started" % re.escape(addr), log), log[-2000:]


# --- LITERAL- (RFC 7888) ---------------------------------------------------------------


def test_literal_plus_takes_big_nonsync_literal(stack):
    c = connect(stack, False)
    tagged, lines = c.command(b"a", b"CAPABILITY")
    assert b" LITERAL+" in lines[0] and b"LITERAL-" not in lines[0], lines
    login(stack, c, "alice")
    msg = b"Subject: big nonsync\r\n\r\n" + b"y" * 5000 + b"\r\n"
    c.send(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
    lines = c.until_tagged(b"b")
    assert lines[-1].startswith(b"b OK"), lines
    c.close()


@pytest.fixture(scope="module")
def minus_stack():
    with Stack(extra_conf="[imapd]\nimap_literal_plus = no") as st:
        yield st


def test_literal_minus(minus_stack):
    c = connect(minus_stack, False)
    tagged, lines = c.command(b"a", b"CAPABILITY")
    # RFC 7888: one or the other, never both.
    assert b" LITERAL-" in lines[0] and b"LITERAL+" not in lines[0], lines
    login(minus_stack, c, "alice")
    # 4096 bytes and less: still non-synchronising.
    small = b"Subject: small nonsync\r\n\r\n" + b"s" * 3000 + b"\r\n"
    assert len(small) <= 4096
    c.send(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(small), small))
    lines = c.until_tagged(b"b")
    assert lines[-1].startswith(b"b OK"), lines
    # Over 4096: tagged BAD [TOOBIG]; its bytes are already on the wire, so the server
    # closes rather than read them as commands.
    big = b"Subject: big nonsync\r\n\r\nc NOOP\r\n" + b"y" * 5000 + b"\r\n"
    c.send(b"c APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
    line = c.readline()
    assert line.startswith(b"c BAD [TOOBIG]"), line
    rest = []
    try:
        for _ in range(10):
            rest.append(c.readline())
    except EOFError:
        pass
    assert rest and rest[0].startswith(b"* BYE"), rest
    assert not any(r.startswith(b"c OK") for r in rest), rest  # the NOOP inside never ran
    c.close()
    # A synchronising literal of any size still works under LITERAL-.
    c = connect(minus_stack, False)
    login(minus_stack, c, "alice")
    c.send(b"d APPEND INBOX {%d}\r\n" % len(big))
    assert c.readline().startswith(b"+")
    c.send(big + b"\r\n")
    lines = c.until_tagged(b"d")
    assert lines[-1].startswith(b"d OK"), lines
    c.close()
