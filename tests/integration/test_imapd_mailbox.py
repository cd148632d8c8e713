"""tern-imapd on a real Maildir: SELECT, FETCH (with bodies streamed), STORE, SEARCH,
COPY/MOVE with COPYUID, EXPUNGE, and changes made by another session or dropped into
the Maildir by another program, all through Python's imaplib."""

import imaplib
import os
import re
import socket
import time

import pytest

from ternstack import Stack, built, recv_until

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")

_counter = [0]


def drop_message(maildir, subject, body="hello\n", extra_headers="", size_pad=0):
    """Writes a message into new/ the way any Maildir MDA does (tmp, then rename)."""
    _counter[0] += 1
    name = "%d.M%dP%dQ%d.testhost" % (time.time(), _counter[0], os.getpid(), _counter[0])
    text = ("From: Alice <alice@example.test>\nTo: bob@example.test\n"
            "Subject: %s\nDate: Tue, 1 Jul 2003 10:52:37 +0200\nMessage-ID: <%s@test>\n%s\n%s"
            % (subject, name, extra_headers, body))
    if size_pad:
        text += ("x" * 76 + "\n") * (size_pad // 77)
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(maildir, "new", name))
    return text.replace("\n", "\r\n").encode()


@pytest.fixture(scope="module")
def stack():
    with Stack() as st:
        yield st


def login(stack, user):
    addr, pw = stack.users[user]
    imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
    imap.login(addr, pw)
    return imap


def test_select_fetch_store_search(stack):
    imap = login(stack, "alice")
    box = stack.maildir("alice")
    sent = [drop_message(box, "first"), drop_message(box, "second report"),
            drop_message(box, "third", body="needle in the body\n")]
    typ, data = imap.select("INBOX")
    assert typ == "OK" and int(data[0]) == 3
    assert "UIDVALIDITY" in imap.untagged_responses

    typ, data = imap.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
    assert typ == "OK"
    lines = [d for d in data if isinstance(d, bytes)]
    assert len(lines) == 3
    assert b'"second report"' in lines[1]
    for i, line in enumerate(lines):
        assert b"RFC822.SIZE %d" % len(sent[i]) in line

    typ, data = imap.fetch("2", "(BODY.PEEK[])")
    assert data[0][1] == sent[1]
    typ, data = imap.fetch("2", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = imap.fetch("2", "(BODY[HEADER.FIELDS (Subject)])")
    assert data[0][1] == b"Subject: second report\r\n\r\n"
    typ, data = imap.fetch("2", "(FLAGS)")
    assert b"\\Seen" in data[0]  # a non-PEEK body fetch sets \Seen

    typ, data = imap.store("1", "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Important" in data[0]
    typ, data = imap.search(None, "FLAGGED")
    assert data[0] == b"1"
    typ, data = imap.search(None, "SUBJECT", "REPORT")
    assert data[0] == b"2"
    typ, data = imap.search(None, "BODY", "needle")
    assert data[0] == b"3"
    typ, data = imap.search(None, "NOT", "FLAGGED", "UNSEEN")
    assert data[0] == b"3"
    typ, data = imap.uid("SEARCH", "SENTON", "1-Jul-2003")
    assert len(data[0].split()) == 3
    typ, data = imap.search(None, "OR", "SUBJECT", "first", "SUBJECT", "third")
    assert data[0] == b"1 3"
    typ, data = imap.search(None, "KEYWORD", "$Important")
    assert data[0] == b"1"
    imap.logout()


def test_esearch_and_searchres(stack):
    imap = login(stack, "alice")
    imap.select("INBOX")
    typ, data = imap._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    typ, data = imap._untagged_response(typ, data, "ESEARCH")
    assert re.search(rb"MIN 1 MAX \d+ COUNT \d+", data[0]), data
    typ, data = imap._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "SUBJECT", "second")
    assert typ == "OK"
    typ, data = imap.uid("FETCH", "$", "(FLAGS)")
    assert typ == "OK" and len([d for d in data if d]) == 1
    imap.logout()


def test_copy_move_expunge(stack):
    imap = login(stack, "bob")
    box = stack.maildir("bob")
    for i in range(4):
        drop_message(box, "msg %d" % i)
    typ, data = imap.select("INBOX")
    assert int(data[0]) == 4
    typ, data = imap.copy("1:2", "Archive")
    assert typ == "OK"
    code = imap.untagged_responses.get("COPYUID") or [data[0]]
    assert b"COPYUID" in data[0] or code, data
    typ, data = imap.status("Archive", "(MESSAGES UIDNEXT UNSEEN SIZE)")
    assert b"MESSAGES 2" in data[0]
    typ, data = imap._simple_command("MOVE", "3", "Trash")
    assert typ == "OK"
    typ, data = imap.status("Trash", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    typ, data = imap.select("INBOX")
    assert int(data[0]) == 3
    imap.store("1", "+FLAGS", "\\Deleted")
    typ, data = imap.expunge()
    assert typ == "OK" and data[0] == b"1"
    typ, data = imap.select("INBOX")
    assert int(data[0]) == 2
    assert imap.copy("1", "NoSuchFolder")[0] == "NO"
    imap.logout()


def test_changes_from_other_sessions_and_new_mail(stack):
    a = login(stack, "bob")
    b = login(stack, "bob")
    a.select("INBOX")
    typ, data = b.select("INBOX")
    count = int(data[0])
    b.store("1", "+FLAGS", "\\Deleted")
    b.expunge()
    a.untagged_responses.clear()  # imaplib keeps SELECT's responses around
    typ, data = a.noop()
    assert a.untagged_responses.get("EXPUNGE") == [b"1"], a.untagged_responses
    drop_message(stack.maildir("bob"), "arrives while selected")
    a.untagged_responses.clear()
    typ, data = a.noop()
    assert a.untagged_responses.get("EXISTS") == [str(count).encode()], a.untagged_responses
    a.logout()
    b.logout()


def test_large_message_is_streamed(stack):
    imap = login(stack, "alice")
    sent = drop_message(stack.maildir("alice"), "big", size_pad=8 * 1024 * 1024)
    typ, data = imap.select("INBOX")
    n = int(data[0])
    typ, data = imap.fetch(str(n), "(RFC822.SIZE BODY.PEEK[])")
    assert b"RFC822.SIZE %d" % len(sent) in data[0][0]
    assert data[0][1] == sent
    typ, data = imap.fetch(str(n), "(BODY.PEEK[TEXT]<100.50>)")
    assert len(data[0][1]) == 50
    imap.logout()


def test_invalid_sets_and_readonly(stack):
    imap = login(stack, "alice")
    typ, data = imap.select("INBOX", readonly=True)
    n = int(data[0])
    with pytest.raises(imaplib.IMAP4.error):
        imap.fetch(str(n + 10), "(FLAGS)")
    with pytest.raises(imaplib.IMAP4.error):
        imap.fetch("0", "(FLAGS)")
    typ, data = imap.uid("FETCH", "999999:*", "(UID)")
    assert typ == "OK"  # '*' is the largest UID even below 999999
    typ, data = imap.store("1", "+FLAGS", "\\Deleted")
    assert typ == "NO"
    imap.logout()


def test_append_small_and_streamed(stack):
    imap = login(stack, "alice")
    msg = (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: drafted\r\n\r\n"
           b"draft body\r\n")
    typ, data = imap.append("Drafts", "(\\Draft \\Seen $Label1)", '"01-Jan-2024 10:00:00 +0100"', msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    uid = int(data[0].split()[2].rstrip(b"]"))
    imap.select("Drafts")
    typ, data = imap.uid("FETCH", str(uid), "(FLAGS INTERNALDATE BODY.PEEK[])")
    head = data[0][0]
    assert b"\\Draft" in head and b"\\Seen" in head and b"$Label1" in head
    assert b'"01-Jan-2024' in head
    assert data[0][1] == msg
    # A message larger than the in-memory literal limit is streamed to disk.
    big = b"Subject: big append\r\n\r\n" + (b"y" * 998 + b"\r\n") * 3000
    typ, data = imap.append("Sent", None, None, big)
    assert typ == "OK"
    imap.select("Sent")
    typ, data = imap.fetch("*", "(BODY.PEEK[])")
    assert data[0][1] == big
    # Appending into the selected mailbox reports the new message.
    imap.untagged_responses.clear()
    typ, data = imap.append("Sent", None, None, msg)
    assert typ == "OK"
    assert imap.untagged_responses.get("EXISTS"), imap.untagged_responses
    assert imap.append("Nowhere", None, None, msg)[0] == "NO"
    imap.logout()


def test_append_refused_without_login_and_for_huge_literals(stack):
    raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=10)
    raw.recv(4096)
    raw.sendall(b"a1 APPEND INBOX {300000}\r\n")
    data = raw.recv(4096)
    assert b"a1 NO" in data or b"a1 BAD" in data
    raw.close()


def test_idle_learns_of_new_mail_and_expunges(stack):
    addr, pw = stack.users["alice"]
    sessions = []
    for i in range(3):  # several sessions idle on one folder (one shared watch)
        raw = socket.create_connection(("127.0.0.1", stack.port("imap")), timeout=10)
        recv_until(raw, b"\r\n")
        raw.sendall(b'a LOGIN "%s" "%s"\r\nb SELECT INBOX\r\n' % (addr.encode(), pw.encode()))
        reply = recv_until(raw, b"b OK")
        count = int(re.search(rb"\* (\d+) EXISTS", reply).group(1))
        raw.sendall(b"c IDLE\r\n")
        assert b"+ idling" in recv_until(raw, b"+ idling")
        sessions.append(raw)
    drop_message(stack.maildir("alice"), "pushed")
    for raw in sessions:
        assert b"* %d EXISTS" % (count + 1) in recv_until(raw, b"EXISTS"), "no EXISTS pushed"
    other = login(stack, "alice")
    other.select("INBOX")
    other.store(str(count + 1), "+FLAGS", "\\Deleted")
    other.expunge()
    other.logout()
    for raw in sessions:
        assert b"* %d EXPUNGE" % (count + 1) in recv_until(raw, b"EXPUNGE")
        raw.sendall(b"DONE\r\n")
        assert b"c OK" in recv_until(raw, b"c OK")
        raw.sendall(b"d LOGOUT\r\n")
        recv_until(raw, b"d OK")
        raw.close()


def test_search_decodes_mime_words_and_charsets(stack):
    imap = login(stack, "bob")
    drop_message(stack.maildir("bob"), "=?ISO-8859-1?Q?caf=E9_cr=E8me?=",
                 extra_headers="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: base64\n",
                 body="w6l0w6kgY2hhdWQ=\n")  # "été chaud"
    imap.select("INBOX")
    typ, data = imap.search("UTF-8", "SUBJECT", b'"CAF\xc3\x89"')
    assert typ == "OK" and data[0].strip() != b"", data
    typ, data = imap.search("ISO-8859-1", "SUBJECT", b'"cr\xc8me"')
    assert typ == "OK" and data[0].strip() != b"", data
    typ, data = imap.search("UTF-8", "BODY", b'"\xc3\x89T\xc3\x89 CHAUD"')
    assert typ == "OK" and data[0].strip() != b"", data
    typ, data = imap.search("UTF-8", "BODY", b'"w6l0w6k"')  # the encoded form is not text
    assert data[0].strip() == b"", data
    imap.logout()


def test_sort_and_thread(stack):
    imap = login(stack, "alice")
    assert imap.create("Threads")[0] == "OK"
    box = os.path.join(stack.maildir("alice"), ".Threads")

    def put(subject, date, msgid, refs="", sender="x@example.test", size=0):
        hdr = "Message-ID: <%s>\n" % msgid + ("References: %s\n" % refs if refs else "")
        _counter[0] += 1
        name = "%d.M%dP%d.sorttest" % (time.time(), _counter[0], os.getpid())
        text = ("From: %s\nSubject: %s\nDate: %s\n%s\nbody%s\n"
                % (sender, subject, date, hdr, "x" * size))
        with open(os.path.join(box, "tmp", name), "w") as f:
            f.write(text)
        os.rename(os.path.join(box, "tmp", name), os.path.join(box, "new", name))
        time.sleep(0.01)

    put("apples", "Mon, 1 Jan 2024 10:00:00 +0000", "1@t", sender="carol@example.test", size=300)
    put("Re: apples", "Mon, 1 Jan 2024 12:00:00 +0000", "2@t", "<1@t>", sender="bob@example.test")
    put("bananas", "Sun, 31 Dec 2023 09:00:00 +0000", "3@t", sender="alice@example.test", size=100)
    put("Re: Re: apples", "Mon, 1 Jan 2024 13:00:00 +0000", "4@t", "<1@t> <2@t>")
    put("Re: apples", "Mon, 1 Jan 2024 11:00:00 +0000", "5@t", "<1@t>", sender="dave@example.test")
    imap.select("Threads")
    typ, data = imap.sort("(DATE)", "UTF-8", "ALL")
    assert data[0] == b"3 1 5 2 4"
    typ, data = imap.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert data[0] == b"4 2 5 1 3"
    typ, data = imap.sort("(SUBJECT DATE)", "UTF-8", "ALL")
    assert data[0] == b"1 5 2 4 3"
    typ, data = imap.sort("(FROM)", "UTF-8", "NOT", "FROM", "x@example.test")
    assert data[0] == b"3 2 1 5"
    typ, data = imap.sort("(REVERSE SIZE)", "UTF-8", "ALL")
    assert data[0].split()[0] == b"1"
    typ, data = imap.uid("SORT", "(ARRIVAL)", "UTF-8", "ALL")
    assert typ == "OK" and len(data[0].split()) == 5
    typ, data = imap.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data[0] == b"(3)(1 (5)(2)(4))", data
    typ, data = imap.thread("REFERENCES", "UTF-8", "ALL")
    assert data[0] == b"(3)(1 (5)(2 4))", data
    imap.logout()


def test_list_status_quota_acl(stack):
    imap = login(stack, "alice")
    typ, data = imap._simple_command("LIST", '""', "%", "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))")
    typ, lists = imap._untagged_response(typ, data, "LIST")
    statuses = imap.untagged_responses.pop("STATUS", [])
    assert typ == "OK"
    assert any(s.startswith(b"INBOX (MESSAGES ") for s in statuses), statuses
    assert any(s.startswith(b"Sent (MESSAGES ") for s in statuses), statuses
    typ, data = imap.getquotaroot("INBOX")
    assert typ == "OK"
    typ, data = imap.myrights("INBOX")
    assert typ == "OK" and data[0].endswith(b"lrswipkxtecda")
    typ, data = imap.getacl("Sent")
    assert typ == "OK" and b"lrswipkxtecda" in data[0]
    imaplib.Commands.setdefault("LISTRIGHTS", ("AUTH", "SELECTED"))
    typ, data = imap._simple_command("LISTRIGHTS", "INBOX", "anyone")
    assert typ == "OK"
    assert imap._simple_command("SETACL", "INBOX", "bob", "lr")[0] == "NO"
    assert imap._simple_command("MYRIGHTS", "NoSuchBox")[0] == "NO"
    imap.logout()


def test_condstore(stack):
    imap = login(stack, "bob")
    for i in range(3):
        drop_message(stack.maildir("bob"), "modseq %d" % i)
    typ, data = imap.enable("CONDSTORE")
    assert typ == "OK"
    typ, data = imap._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    assert typ == "OK"
    imap.state = "SELECTED"  # imaplib does not know SELECT with parameters
    highest = int(imap.untagged_responses["HIGHESTMODSEQ"][-1])
    n = int(imap.untagged_responses["EXISTS"][-1])
    typ, data = imap.store(str(n), "+FLAGS", "\\Answered")
    assert b"MODSEQ" in data[0], data
    typ, data = imap.fetch("1:*", "(UID FLAGS) (CHANGEDSINCE %d)" % highest)
    assert len([d for d in data if d]) == 1 and b"\\Answered" in data[0], data
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
    # UNCHANGEDSINCE below the message's modseq: nothing changes, MODIFIED names it.
    typ, data = imap._simple_command("STORE", str(n), "(UNCHANGEDSINCE %d)" % (modseq - 1),
                                     "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"[MODIFIED %d]" % n in data[0], data
    typ, data = imap.fetch(str(n), "(FLAGS)")
    assert b"\\Flagged" not in data[0]
    typ, data = imap._simple_command("STORE", str(n), "(UNCHANGEDSINCE %d)" % modseq,
                                     "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"MODIFIED" not in data[0]
    typ, data = imap.search(None, "MODSEQ", str(modseq))
    assert typ == "OK" and b"(MODSEQ" in data[0], data
    imap.logout()


def test_rename_inbox_moves_its_messages(stack):
    imap = login(stack, "bob")
    drop_message(stack.maildir("bob"), "to be moved by rename")
    typ, data = imap.status("INBOX", "(MESSAGES)")
    count = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    assert count >= 1
    assert imap.rename("INBOX", "Old-Inbox")[0] == "OK"
    typ, data = imap.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0]
    typ, data = imap.status("Old-Inbox", "(MESSAGES)")
    assert b"MESSAGES %d" % count in data[0]
    imap.select("Old-Inbox")
    typ, data = imap.search(None, "SUBJECT", "rename")
    assert data[0] != b""
    imap.logout()


def test_create_special_use(stack):
    imap = login(stack, "alice")
    imap.delete("Archive")
    typ, data = imap._simple_command("CREATE", "Archive", "(USE (\\Archive))")
    assert typ == "OK", data
    typ, data = imap._simple_command("CREATE", "Stuff", "(USE (\\Sent))")
    assert typ == "NO" and b"USEATTR" in data[0]
    typ, data = imap.list('""', "Archive")
    assert b"\\Archive" in data[0]
    imap.logout()
