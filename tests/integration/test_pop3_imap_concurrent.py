"""One mailbox used at once by a POP3 session, an IMAP session and deliverd (mail arriving
over SMTP): each sees a consistent view and no change is lost."""

import imaplib
import poplib
import smtplib
import time

import pytest

from ternstack import Stack, built

pytestmark = pytest.mark.skipif(
    not all(built(d) for d in ("authd", "deliverd", "smtpd", "imapd", "pop3d")),
    reason="needs the whole suite built")


def send(stack, subject):
    addr = stack.users["alice"][0]
    with smtplib.SMTP("127.0.0.1", stack.port("smtp"), timeout=30) as s:
        s.sendmail("bob@example.test", [addr],
                   "From: bob@example.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
                   % (addr, subject, subject))


def wait_count(imap, n, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        typ, data = imap.status("INBOX", "(MESSAGES)")
        if b"MESSAGES %d" % n in data[0]:
            return
        time.sleep(0.2)
    raise AssertionError("INBOX never had %d messages: %r" % (n, data))


def test_pop3_imap_and_delivery_on_one_mailbox():
    with Stack() as stack:
        addr, pw = stack.users["alice"]
        imap = imaplib.IMAP4("127.0.0.1", stack.port("imap"), timeout=30)
        imap.login(addr, pw)
        for i in range(3):
            send(stack, "m%d" % i)
        wait_count(imap, 3)

        pop = poplib.POP3("127.0.0.1", stack.port("pop3"), timeout=30)
        pop.user(addr)
        pop.pass_(pw)
        assert pop.stat()[0] == 3

        # While POP3 holds the mailbox: IMAP flags one message and expunges another,
        # and a new message arrives.
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "\\Flagged")
        imap.store("3", "+FLAGS", "\\Deleted")
        imap.expunge()
        send(stack, "m3 while open")
        wait_count(imap, 3)

        # POP3's view is the one it had at login (RFC 1939): new mail waits for the
        # next login; a second POP3 login is refused while this one holds the mailbox.
        assert pop.stat()[0] == 3
        second = poplib.POP3("127.0.0.1", stack.port("pop3"), timeout=30)
        second.user(addr)
        with pytest.raises(poplib.error_proto) as err:
            second.pass_(pw)
        assert b"IN-USE" in err.value.args[0]
        second.close()  # the server ends the session after [IN-USE]
        lines = pop.retr(1)[1]
        assert b"Subject: m0" in lines
        pop.dele(2)
        pop.quit()  # UPDATE: m1 goes, m0 becomes \Seen

        typ, data = imap.noop()
        imap.untagged_responses.clear()
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
        subjects = {d[1].split(b":", 1)[1].strip(): d[0] for d in data if isinstance(d, tuple)}
        assert set(subjects) == {b"m0", b"m3 while open"}, subjects
        assert b"\\Seen" in subjects[b"m0"] and b"\\Flagged" in subjects[b"m0"]
        imap.logout()

        pop = poplib.POP3("127.0.0.1", stack.port("pop3"), timeout=30)
        pop.user(addr)
        pop.pass_(pw)
        assert pop.stat()[0] == 2
        pop.quit()
