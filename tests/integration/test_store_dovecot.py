"""Migration from Dovecot: a Maildir written by real Dovecot (Debian's dovecot-imapd, run
preauthenticated with a private config in a temporary directory) is opened by tern's
store with the same UIDVALIDITY, the same UIDs and the same flags; messages Dovecot never
saw get UIDs from Dovecot's next UID on. Switching back works too: Dovecot then finds the
UIDVALIDITY and UIDs tern gave (dovecot-uidlist kept current). Also checks that tern's
BODYSTRUCTURE and ENVELOPE for every message equal Dovecot's.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(SRC, "build"))
IMAP = "/usr/lib/dovecot/imap"

# A small program on tern's store: prints UIDVALIDITY, UIDNEXT, then per message
# "<uid> <flags> <subject>" and its BODYSTRUCTURE and ENVELOPE.
DUMP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/mailbox.h"
int main(int argc, char **argv)
{
	struct store_mailbox *box;
	const char *error;
	if ((argc != 2 && argc != 4) || store_mailbox_open(argv[1], &box, &error) != STORE_OK)
		return 1;
	if (argc == 4) { /* an operation first: flag UID, expunge UID */
		uint32_t uid = (uint32_t)strtoul(argv[3], NULL, 10);
		enum store_error e = strcmp(argv[2], "flag") == 0
		    ? store_mailbox_set_flags(box, uid, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, 0, 0)
		    : store_mailbox_expunge(box, &uid, 1);
		struct store_sync_result res;
		if (e != STORE_OK || store_mailbox_sync(box, &res) != STORE_OK)
			return 3;
	}
	printf("V %u\nN %u\n", store_mailbox_uidvalidity(box), store_mailbox_uidnext(box));
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		const struct store_msg *m = store_mailbox_msg(box, seq);
		struct store_cache c;
		if (store_mailbox_cache(box, seq, &c) != STORE_OK)
			return 2;
		printf("M %u %u %s\n", m->uid, m->flags,
		       c.fields[MIME_FIELD_SUBJECT] ? c.fields[MIME_FIELD_SUBJECT] : "");
		printf("B %u %s\nE %u %s\n", m->uid, c.bodystructure, m->uid, c.envelope);
		store_cache_free(&c);
	}
	store_mailbox_close(&box);
	return 0;
}
"""

FLAG_BITS = {"\\Answered": 1, "\\Flagged": 2, "\\Deleted": 4, "\\Seen": 8, "\\Draft": 16}


def ensure_dovecot():
    if not os.path.exists(IMAP):
        subprocess.run([os.path.join(SRC, "scripts", "deps"), "dovecot-imapd"], check=True,
                       timeout=600)
    if not os.path.exists(IMAP):
        pytest.fail("dovecot-imapd could not be installed")


def build_dump(tmp):
    src = os.path.join(tmp, "dump.c")
    with open(src, "w") as f:
        f.write(DUMP_C)
    exe = os.path.join(tmp, "dump")
    # A sanitizer build's library needs the sanitizer runtime at link time too.
    extra = []
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            if "CMAKE_BUILD_TYPE:STRING=Asan" in f.read():
                extra = ["-fsanitize=address,undefined"]
    except OSError:
        pass
    subprocess.run(["cc", "-I", os.path.join(SRC, "libcommon"), src,
                    os.path.join(BUILD, "libcommon", "libcommon.a"), "-pthread", "-o", exe]
                   + extra, check=True, timeout=120)
    return exe


def message(i, extra=""):
    return ("From: Sender %d <s%d@example.org>\r\nTo: rcpt@example.net\r\n"
            "Subject: message %d\r\nMessage-ID: <%d@example.org>\r\n%s"
            "Date: Mon, 1 Jan 2024 10:00:%02d +0000\r\n\r\nbody %d\r\n" %
            (i, i, i, i, extra, i, i)).encode()


class Dovecot:
    def __init__(self, tmp):
        self.tmp = tmp
        self.maildir = os.path.join(tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(tmp, sub))
        self.uid, self.gid = os.getuid(), os.getgid()
        if self.uid == 0:  # Dovecot refuses mail access as root
            self.uid = self.gid = 65534
        self.conf = os.path.join(tmp, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(f"""base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
mail_location = maildir:{self.maildir}
mail_uid = {self.uid}
mail_gid = {self.gid}
first_valid_uid = 0
first_valid_gid = 0
ssl = no
""")

    def chown(self):
        if os.getuid() != 0:
            return
        os.chown(self.tmp, self.uid, self.gid)
        for root, dirs, files in os.walk(self.tmp):
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.uid, self.gid)

    def session(self, commands):
        self.chown()
        env = {"USER": "tester", "HOME": self.tmp + "/home", "PATH": "/usr/bin:/bin"}
        out = subprocess.run([IMAP, "-c", self.conf], input=commands, env=env,
                             capture_output=True, timeout=120, check=True).stdout
        assert b"z OK" in out, out
        return out


def parse_fetch(out):
    """{subject: (uid, flags)} from FETCH responses with UID, FLAGS and the Subject."""
    got = {}
    for m in re.finditer(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) "
                         rb"BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}\r\nSubject: ([^\r]*)",
                         out):
        flags = sum(FLAG_BITS.get(f, 0) for f in m.group(2).decode().split())
        got[m.group(3).decode()] = (int(m.group(1)), flags)
    return got


def dump(exe, path, *op):
    out = subprocess.run([exe, path, *op], capture_output=True, timeout=120,
                         check=True).stdout
    lines = out.decode("utf-8", "replace").split("\n")
    v = int(lines[0].split()[1])
    n = int(lines[1].split()[1])
    msgs, bodies, envs = {}, {}, {}
    for line in lines[2:]:
        if line.startswith("M "):
            _, uid, flags, subject = line.split(" ", 3)
            msgs[subject] = (int(uid), int(flags))
        elif line.startswith("B "):
            _, uid, rest = line.split(" ", 2)
            bodies[int(uid)] = rest
        elif line.startswith("E "):
            _, uid, rest = line.split(" ", 2)
            envs[int(uid)] = rest
    return v, n, msgs, bodies, envs


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="tern-migrate-")
    os.chmod(d, 0o755)  # Dovecot's mail user must reach the Maildir inside
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_dovecot_maildir_keeps_uidvalidity_and_uids(tmp):
    ensure_dovecot()
    exe = build_dump(tmp)
    dv = Dovecot(os.path.join(tmp, "dv"))
    # Three in cur/ (one already read and replied), three in new/.
    for i in range(1, 7):
        sub, suffix = ("cur", ":2,RS" if i == 2 else ":2,") if i <= 3 else ("new", "")
        with open(os.path.join(dv.maildir, sub, "%d.M%dP100.host%s" % (1700000000 + i, i,
                                                                       suffix)), "wb") as f:
            f.write(message(i, "Content-Type: text/plain; charset=utf-8\r\n" if i % 2 else ""))
    appended = message(7)
    out = dv.session(
        b"a SELECT INBOX\r\n"
        b"b UID STORE 3 +FLAGS.SILENT (\\Deleted)\r\n"
        b"c EXPUNGE\r\n"
        b"d UID STORE 5 +FLAGS.SILENT (\\Flagged)\r\n"
        b"e APPEND INBOX (\\Seen \\Draft) {%d+}\r\n%s\r\n"
        b"f CREATE Work\r\n"
        b"g APPEND Work (\\Answered) {%d+}\r\n%s\r\n"
        b"h UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
        b"i SELECT Work\r\n"
        b"j UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
        b"z LOGOUT\r\n" % (len(appended), appended, len(message(8)), message(8)))
    validity = [int(v) for v in re.findall(rb"\[UIDVALIDITY (\d+)\]", out)]
    uidnext = int(re.findall(rb"\[UIDNEXT (\d+)\]", out)[0])
    split = out.index(b"i OK")
    inbox, work = parse_fetch(out[:split]), parse_fetch(out[split:])
    assert len(inbox) == 6 and "message 3" not in inbox, out
    assert inbox["message 2"][1] == FLAG_BITS["\\Answered"] | FLAG_BITS["\\Seen"]
    assert os.path.exists(os.path.join(dv.maildir, "dovecot-uidlist"))

    # Mail Dovecot never saw, delivered after the switch.
    with open(os.path.join(dv.maildir, "new", "1800000000.M1P1.tern"), "wb") as f:
        f.write(message(9))

    v, n, msgs, _, _ = dump(exe, dv.maildir)
    assert v == validity[0]
    for subject, (uid, flags) in inbox.items():
        assert msgs[subject] == (uid, flags), subject
    assert msgs["message 9"][0] >= max(u for u, _ in inbox.values()) + 1
    assert msgs["message 9"][0] >= uidnext
    assert "message 3" not in msgs
    v2, _, work_msgs, _, _ = dump(exe, os.path.join(dv.maildir, ".Work"))
    assert v2 == validity[1]
    assert work_msgs == work

    # Reopening keeps everything (now from tern's own index).
    assert dump(exe, dv.maildir)[:3] == (v, n, msgs)


def deliver(dv, sub, i):
    with open(os.path.join(dv.maildir, sub, "%d.M%dP1.tern" % (1800000000 + i, i)), "wb") as f:
        f.write(message(i))


def dovecot_view(dv):
    """(UIDVALIDITY, UIDNEXT, {subject: (uid, flags)}) as Dovecot sees the INBOX."""
    out = dv.session(b"a SELECT INBOX\r\n"
                     b"h UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
                     b"z LOGOUT\r\n")
    return (int(re.findall(rb"\[UIDVALIDITY (\d+)\]", out)[0]),
            int(re.findall(rb"\[UIDNEXT (\d+)\]", out)[0]), parse_fetch(out))


def test_switching_back_to_dovecot_keeps_uids(tmp):
    ensure_dovecot()
    exe = build_dump(tmp)
    dv = Dovecot(os.path.join(tmp, "dv"))
    for i in range(1, 4):
        with open(os.path.join(dv.maildir, "cur", "%d.M%dP100.host:2," % (1700000000 + i, i)),
                  "wb") as f:
            f.write(message(i))
    validity, _, before = dovecot_view(dv)
    uidlist = os.path.join(dv.maildir, "dovecot-uidlist")
    guid = open(uidlist).readline().split()[3]
    assert guid.startswith("G")

    # tern takes over: it imports; new mail comes in twice, a flag, two expunges. The
    # first new message is gone again, so Dovecot left to itself would give the later
    # ones UIDs one lower than tern did: its list must carry tern's.
    v, _, msgs, _, _ = dump(exe, dv.maildir)
    assert v == validity and msgs == before
    for i in (4, 5):
        deliver(dv, "new", i)
    _, _, msgs, _, _ = dump(exe, dv.maildir)
    dump(exe, dv.maildir, "flag", str(msgs["message 5"][0]))
    dump(exe, dv.maildir, "expunge", str(msgs["message 4"][0]))
    dump(exe, dv.maildir, "expunge", str(msgs["message 1"][0]))
    deliver(dv, "new", 6)
    v, n, msgs, _, _ = dump(exe, dv.maildir)
    assert "message 1" not in msgs and "message 4" not in msgs
    assert msgs["message 5"][1] == FLAG_BITS["\\Flagged"] and len(msgs) == 4

    # Back to Dovecot: the same UIDVALIDITY, UIDs and flags, its mailbox GUID kept.
    dv_validity, dv_next, dv_msgs = dovecot_view(dv)
    assert (dv_validity, dv_msgs) == (v, msgs)
    assert dv_next == n
    assert open(uidlist).readline().split()[3] == guid

    # A rebuilt tern index (damage: a new UIDVALIDITY) rewrites the list: Dovecot follows.
    with open(os.path.join(dv.maildir, "tern-index"), "r+b") as f:
        f.write(b"garbage!")
    deliver(dv, "new", 7)
    v2, n2, msgs2, _, _ = dump(exe, dv.maildir)
    assert v2 != v and len(msgs2) == 5
    dv_validity, dv_next, dv_msgs = dovecot_view(dv)
    assert (dv_validity, dv_msgs) == (v2, msgs2)
    assert dv_next == n2


def test_bodystructure_and_envelope_match_dovecot(tmp):
    ensure_dovecot()
    exe = build_dump(tmp)
    dv = Dovecot(os.path.join(tmp, "dv"))
    corpus = os.path.join(SRC, "tests", "libcommon", "mime", "corpus")
    names = sorted(n for n in os.listdir(corpus) if n.endswith(".eml"))
    for i, name in enumerate(names):
        shutil.copy(os.path.join(corpus, name),
                    os.path.join(dv.maildir, "cur", "%d.M%dP1.host:2," % (1000 + i, i)))
    out = dv.session(b"a SELECT INBOX\r\nb UID FETCH 1:* (UID BODYSTRUCTURE)\r\nz LOGOUT\r\n")
    dovecot = {int(m.group(1)): m.group(2).decode()
               for m in re.finditer(rb"\* \d+ FETCH \(UID (\d+) BODYSTRUCTURE (.*)\)\r\n", out)}
    _, _, _, bodies, _ = dump(exe, dv.maildir)
    # Literals (8-bit) span lines in the IMAP answer; compare the single-line ones.
    compared = 0
    for uid, bs in dovecot.items():
        if "{" not in bs:
            assert bodies[uid] == bs, (uid, names[uid - 1])
            compared += 1
    assert compared >= len(names) - 2
