"""tern-imapd UTF8=ACCEPT (RFC 6855): after ENABLE UTF8=ACCEPT mailbox names are UTF-8
both ways (stored as Dovecot's mUTF-7 Maildir++ names, shown as mUTF-7 to sessions that did
not enable it), invalid UTF-8 is refused, APPEND UTF8 (~{n}) stores a message with UTF-8
headers byte-exact, SEARCH finds it by a UTF-8 string and refuses a CHARSET — through
Python's imaplib (enable("UTF8=ACCEPT")) and raw sockets where imaplib cannot."""

import imaplib
import os
import re
import socket
import time

import pytest

from ternstack import Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

NAME = "Entwürfe/日本語"
NAME_MUTF7 = b"Entw&APw-rfe/&ZeVnLIqe-"
DIR_MUTF7 = ".Entw&APw-rfe.&ZeVnLIqe-"  # Dovecot's Maildir++ layout with '/' separator
SUBJECT = "Grüße aus 日本 — ✓".encode()
MESSAGE = (b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test>\r\n"
           b"To: Bj\xc3\xb6rn <bjoern@example.test>\r\n"
           b"Subject: " + SUBJECT + b"\r\n"
           b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
           b"Message-ID: <utf8-1@example.test>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           b"Hall\xc3\xb6chen, \xe4\xb8\x96\xe7\x95\x8c\r\n")

GLOBAL = (b"From: a@example.test\r\nSubject: forward\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
          b"--b1\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
          b"--b1\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
          b"From: J\xc3\xbcrgen <j@example.test>\r\n"
          b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
          b"Subject: Ein Gru\xc3\x9f\r\n\r\ninner\r\n--b1--\r\n")


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        yield st


def login(stack, user="alice"):
    addr, pw = stack.users[user]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
    imap.login(addr, pw)
    return imap


class Raw:
    """A plain socket session: cmd() sends one command and returns all output up to and
    including its tagged reply."""

    def __init__(self, stack, user="alice"):
        self.sock = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=30)
        self.buf = b""
        self.n = 0
        self.read_until(re.compile(rb"^\* OK .*\r\n", re.M))
        addr, pw = stack.users[user]
        assert b" OK" in self.cmd(b'LOGIN "%s" "%s"' % (addr.encode(), pw.encode()))

    def read_until(self, pattern):
        deadline = time.monotonic() + 30
        for _ in range(10000):
            m = pattern.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            assert time.monotonic() < deadline, self.buf
            chunk = self.sock.recv(65536)
            assert chunk, self.buf
            self.buf += chunk
        raise AssertionError("no reply: %r" % self.buf)

    def tag(self):
        self.n += 1
        return b"t%d" % self.n

    def cmd(self, line):
        tag = self.tag()
        self.sock.sendall(tag + b" " + line + b"\r\n")
        return self.tagged(tag)

    def tagged(self, tag):
        return self.read_until(re.compile(rb"^" + tag + rb" (OK|NO|BAD)[^\r\n]*\r\n", re.M))

    def close(self):
        try:
            self.sock.sendall(b"z LOGOUT\r\n")
            self.read_until(re.compile(rb"^z OK.*\r\n", re.M))
        finally:
            self.sock.close()


def status_of(reply):
    m = re.search(rb"^t\d+ (OK|NO|BAD)", reply, re.M)
    return m.group(1).decode() if m else None


def test_enable_and_utf8_names(stack):
    imap = login(stack)
    typ, data = imap.capability()
    assert b" UTF8=ACCEPT" in data[0] and b" ENABLE" in data[0]
    typ, data = imap.enable("UTF8=ACCEPT")
    assert typ == "OK" and imap.untagged_responses.get("ENABLED") == [b"UTF8=ACCEPT"]
    assert imap.utf8_enabled
    typ, data = imap.create('"%s"' % NAME)
    assert typ == "OK", data
    # On disk: the Dovecot mUTF-7 Maildir++ name.
    box = stack.maildir("alice")
    assert os.path.isdir(os.path.join(box, DIR_MUTF7, "cur"))
    assert not any(any(b >= 0x80 for b in n.encode()) for n in os.listdir(box))

    typ, data = imap.list('""', '"*"')
    assert typ == "OK"
    names = [d for d in data if isinstance(d, bytes)]
    assert b'(\\HasNoChildren) "/" "%s"' % NAME.encode() in names, names
    assert b'(\\Noselect \\HasChildren) "/" "Entw\xc3\xbcrfe"' in names, names
    assert not any(b"&" in n for n in names), names
    # A UTF-8 pattern prefix matches (it would not in mUTF-7: "&ZeU-" vs "&ZeVnLIqe-").
    typ, data = imap.list('""', '"Entwürfe/日*"')
    assert data == [b'(\\HasNoChildren) "/" "%s"' % NAME.encode()], data
    typ, data = imap.list('"Entwürfe/"', '"%"')
    assert data == [b'(\\HasNoChildren) "/" "%s"' % NAME.encode()], data
    typ, data = imap.subscribe('"%s"' % NAME)
    assert typ == "OK"
    typ, data = imap.lsub('""', '"*日本*"')
    assert len(data) == 1 and data[0].endswith(b' "/" "%s"' % NAME.encode()), data
    typ, data = imap.status('"%s"' % NAME, "(MESSAGES)")
    assert typ == "OK" and data == [b'"%s" (MESSAGES 0)' % NAME.encode()], data
    # LIST-STATUS (RFC 5819): the STATUS line carries the UTF-8 name too.
    typ, data = imap._simple_command("LIST", '""', '"Entwürfe/%"', "RETURN",
                                     "(STATUS (MESSAGES))")
    assert typ == "OK"
    assert imap.untagged_responses.pop("STATUS", None) == [
        b'"%s" (MESSAGES 0)' % NAME.encode()]
    imap.untagged_responses.pop("LIST", None)
    typ, data = imap.myrights('"%s"' % NAME)
    assert typ == "OK" and data[0].startswith(b'"%s" ' % NAME.encode()), data
    typ, data = imap.getacl('"%s"' % NAME)
    assert typ == "OK" and data[0].startswith(b'"%s" ' % NAME.encode()), data
    typ, data = imap.select('"%s"' % NAME)
    assert typ == "OK" and data == [b"0"]
    imap.logout()

    # A session that did not enable UTF8=ACCEPT sees modified UTF-7.
    legacy = login(stack)
    typ, data = legacy.list('""', '"*"')
    names = [d for d in data if isinstance(d, bytes)]
    assert b'(\\HasNoChildren) "/" %s' % NAME_MUTF7 in names, names
    assert not any(re.search(rb"[\x80-\xff]", n) for n in names), names
    typ, data = legacy.lsub('""', '"*"')
    assert [d for d in data if d.endswith(b' "/" ' + NAME_MUTF7)], data
    typ, data = legacy.select(NAME_MUTF7.decode())
    assert typ == "OK"
    legacy.logout()


def test_rename_delete_utf8(stack):
    imap = login(stack)
    imap.enable("UTF8=ACCEPT")
    assert imap.create('"Ärger"')[0] == "OK"
    assert imap.rename('"Ärger"', '"Ωmega &Co/Ärger"')[0] == "OK"
    box = stack.maildir("alice")
    assert os.path.isdir(os.path.join(box, ".&A6k-mega &-Co.&AMQ-rger"))
    assert not os.path.exists(os.path.join(box, ".&AMQ-rger"))
    typ, data = imap.list('""', '"Ωmega*"')
    assert b'(\\HasNoChildren) "/" "\xce\xa9mega &Co/\xc3\x84rger"' in data, data
    assert imap.delete('"Ωmega &Co/Ärger"')[0] == "OK"
    assert not os.path.exists(os.path.join(box, ".&A6k-mega &-Co.&AMQ-rger"))
    imap.logout()


def test_invalid_names_refused(stack):
    raw = Raw(stack)
    # Without ENABLE: 8-bit is not modified UTF-7.
    assert status_of(raw.cmd('CREATE "Entwürfe2"'.encode())) == "NO"
    assert b"* ENABLED UTF8=ACCEPT" in raw.cmd(b"ENABLE UTF8=ACCEPT")
    # A second ENABLE enables nothing new.
    reply = raw.cmd(b"ENABLE UTF8=ACCEPT")
    assert b"* ENABLED\r\n" in reply and status_of(reply) == "OK"
    bad = [b"\xc0\xaf",                      # overlong '/'
           b"x\xe0\x80\xae\xe0\x80\xae",     # overlong ".."
           b"\xed\xa0\x80",                  # a surrogate
           b"\xed\xa0\xbd\xed\xb8\x80",      # CESU-8 surrogate pair
           b"\xf4\x90\x80\x80",              # above U+10FFFF
           b"caf\xe9",                       # Latin-1
           b"\xe6\x97"]                      # truncated
    for name in bad:
        reply = raw.cmd(b'CREATE "%s"' % name)
        assert status_of(reply) == "BAD", (name, reply)
        reply = raw.cmd(b"CREATE {%d+}\r\n%s" % (len(name), name))
        assert status_of(reply) == "BAD", (name, reply)
        assert status_of(raw.cmd(b'SELECT "%s"' % name)) == "BAD"
    # NUL: refused in a quoted string and in a literal name.
    assert status_of(raw.cmd(b'CREATE "a\x00b"')) == "BAD"
    assert status_of(raw.cmd(b"CREATE {3+}\r\na\x00b")) == "BAD"
    # Control characters and U+2028 are valid UTF-8 but not allowed in names.
    for name in [b"a\x01b", b"a\xc2\x85b", "a\u2028b".encode(), b"a\x7fb"]:
        assert status_of(raw.cmd(b"CREATE {%d+}\r\n%s" % (len(name), name))) == "NO", name
    # Traversal stays refused in UTF-8 form too.
    for name in [b"../../etc", "Ü/../x".encode(), b"a.b"]:
        assert status_of(raw.cmd(b'CREATE "%s"' % name)) == "NO", name
    box = stack.maildir("alice")
    assert not any(re.search(r"[\x00-\x1f\x80-\uffff]", n) for n in os.listdir(box))
    # LIST patterns must be UTF-8 too.
    assert status_of(raw.cmd(b'LIST "" "\xff*"')) == "BAD"
    raw.close()


def test_enable_after_select_refused(stack):
    raw = Raw(stack)
    assert status_of(raw.cmd(b"SELECT INBOX")) == "OK"
    reply = raw.cmd(b"ENABLE UTF8=ACCEPT")
    assert status_of(reply) == "BAD" and b"ENABLED" not in reply, reply
    # Still a legacy session: names are mUTF-7 and SEARCH CHARSET works.
    imap = login(stack)
    imap.create(NAME_MUTF7.decode())
    imap.logout()
    reply = raw.cmd(b'LIST "" "Entw*"')
    assert NAME_MUTF7 in reply and b"\xc3\xbc" not in reply, reply
    assert status_of(raw.cmd(b"SEARCH CHARSET UTF-8 ALL")) == "OK"
    # CONDSTORE may still be enabled in the selected state.
    assert b"* ENABLED CONDSTORE" in raw.cmd(b"ENABLE CONDSTORE")
    raw.close()


def test_append_utf8_fetch_search(stack):
    imap = login(stack)
    imap.enable("UTF8=ACCEPT")
    imap.create('"%s"' % NAME)  # may exist already
    imap.logout()

    raw = Raw(stack)
    # APPEND UTF8 without ENABLE: refused.
    reply = raw.cmd(b'APPEND INBOX UTF8 (~{%d+}\r\n%s)' % (len(MESSAGE), MESSAGE))
    assert status_of(reply) == "BAD", reply
    assert b"* ENABLED UTF8=ACCEPT" in raw.cmd(b"ENABLE UTF8=ACCEPT")
    # Synchronising literal8 inside UTF8 ( ... ): wait for the continuation.
    tag = raw.tag()
    raw.sock.sendall(tag + b' APPEND "%s" (\\Seen) UTF8 (~{%d}\r\n' % (NAME.encode(),
                                                                       len(MESSAGE)))
    raw.read_until(re.compile(rb"^\+ [^\r\n]*\r\n", re.M))
    raw.sock.sendall(MESSAGE + b")\r\n")
    reply = raw.tagged(tag)
    assert status_of(reply) == "OK" and b"[APPENDUID " in reply, reply
    # Non-synchronising form too.
    reply = raw.cmd(b'APPEND "%s" UTF8 (~{%d+}\r\n%s)' % (NAME.encode(), len(MESSAGE), MESSAGE))
    assert status_of(reply) == "OK", reply

    reply = raw.cmd(b'SELECT "%s"' % NAME.encode())
    assert b"* 2 EXISTS" in reply and status_of(reply) == "OK", reply
    reply = raw.cmd(b"FETCH 1 (FLAGS BODY.PEEK[])")
    assert b"BODY[] {%d}\r\n%s)" % (len(MESSAGE), MESSAGE) in reply, reply
    assert b"\\Seen" in reply
    reply = raw.cmd(b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: " + SUBJECT + b"\r\n" in reply, reply

    # SEARCH strings are UTF-8 (quoted and literal); no CHARSET once enabled.
    reply = raw.cmd('SEARCH SUBJECT "aus 日本"'.encode())
    assert b"* SEARCH 1 2\r\n" in reply and status_of(reply) == "OK", reply
    reply = raw.cmd('UID SEARCH SUBJECT {7+}\r\ngrüße'.encode())
    assert re.search(rb"\* SEARCH \d+ \d+\r\n", reply) and status_of(reply) == "OK", reply
    reply = raw.cmd('SEARCH FROM "Jürgen"'.encode())  # an encoded word, decoded
    assert b"* SEARCH 1 2\r\n" in reply, reply
    reply = raw.cmd('SEARCH TO "Björn"'.encode())  # raw UTF-8 in the header
    assert b"* SEARCH 1 2\r\n" in reply, reply
    reply = raw.cmd('SEARCH BODY "世界"'.encode())
    assert b"* SEARCH 1 2\r\n" in reply, reply
    reply = raw.cmd('SEARCH SUBJECT "nirgends ü"'.encode())
    assert b"* SEARCH\r\n" in reply, reply
    reply = raw.cmd('SEARCH CHARSET UTF-8 SUBJECT "日本"'.encode())
    assert status_of(reply) == "BAD", reply
    assert status_of(raw.cmd(b"SEARCH CHARSET US-ASCII ALL")) == "BAD"
    assert status_of(raw.cmd(b"SORT (DATE) US-ASCII ALL")) == "BAD"
    reply = raw.cmd('SORT (SUBJECT) UTF-8 SUBJECT "日本"'.encode())
    assert b"* SORT 1 2\r\n" in reply, reply
    assert status_of(raw.cmd(b'SEARCH SUBJECT "\xe6\x97"')) == "BAD"  # not UTF-8
    # RFC 9755 6: message/global is read like message/rfc822 in BODYSTRUCTURE.
    reply = raw.cmd(b'APPEND "%s" UTF8 (~{%d+}\r\n%s)' % (NAME.encode(), len(GLOBAL), GLOBAL))
    assert status_of(reply) == "OK", reply
    reply = raw.cmd(b"FETCH 3 (BODYSTRUCTURE)")
    assert re.search(rb'\("message" "global" NIL NIL NIL "8bit" \d+ \("[^"]*" '
                     rb'(\{9\}\r\n|")Ein Gru\xc3\x9f', reply, re.I), reply
    reply = raw.cmd(b"ENABLE UTF8=ACCEPT")  # already on: allowed, nothing new
    assert b"* ENABLED\r\n" in reply and status_of(reply) == "OK", reply
    raw.close()

    # A legacy session reads the same message without breaking: ENVELOPE strings with
    # 8-bit are sent as literals (never 8-bit in a quoted string), BODY[] byte-exact, and
    # its SEARCH with CHARSET UTF-8 still works.
    legacy = Raw(stack)
    reply = legacy.cmd(b"EXAMINE " + NAME_MUTF7)
    assert status_of(reply) == "OK", reply
    reply = legacy.cmd(b"FETCH 1 (ENVELOPE BODY.PEEK[])")
    assert status_of(reply) == "OK"
    assert b"{%d}\r\n%s" % (len(SUBJECT), SUBJECT) in reply, reply
    assert not re.search(rb'"[^"\r\n{}]*[\x80-\xff][^"\r\n]*"', reply.split(b"BODY[]")[0]), reply
    assert b"BODY[] {%d}\r\n%s)" % (len(MESSAGE), MESSAGE) in reply
    tag = legacy.tag()
    legacy.sock.sendall(tag + b" SEARCH CHARSET UTF-8 SUBJECT {6}\r\n")
    legacy.read_until(re.compile(rb"^\+ [^\r\n]*\r\n", re.M))
    legacy.sock.sendall("日本".encode() + b"\r\n")
    reply = legacy.tagged(tag)
    assert b"* SEARCH 1 2\r\n" in reply and status_of(reply) == "OK", reply
    legacy.close()
