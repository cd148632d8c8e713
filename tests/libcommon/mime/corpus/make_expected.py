#!/usr/bin/python3
"""Writes <name>.expected for every <name>.eml here from what real Dovecot answers.

The expected ENVELOPE, BODY and BODYSTRUCTURE of the MIME corpus are Dovecot's (Debian's
dovecot-imapd, run preauthenticated with a private config in a temporary directory), so
tern's answers are checked against the server users migrate from. Output: RFC822.SIZE,
ENVELOPE, BODY, BODYSTRUCTURE separated by lines of "=====". Usage: make_expected.py
[files...] (default: all *.eml except those named in NOT_DOVECOT, whose caps differ).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

IMAP = "/usr/lib/dovecot/imap"
SEP = b"\n=====\n"


def skip_value(data, i):
    """Index just past one IMAP value (atom, number, NIL, string, literal, list) at i."""
    c = data[i:i + 1]
    if c == b"(":
        i += 1
        while data[i:i + 1] != b")":
            if data[i:i + 1] == b" ":
                i += 1
                continue
            i = skip_value(data, i)
        return i + 1
    if c == b'"':
        i += 1
        while data[i:i + 1] != b'"':
            i += 2 if data[i:i + 1] == b"\\" else 1
        return i + 1
    if c == b"{":
        close = data.index(b"}", i)
        n = int(data[i + 1:close])
        return close + 3 + n
    while data[i:i + 1] not in (b" ", b")"):
        i += 1
    return i


def parse_fetch_items(data, i):
    """Parses "NAME value NAME value)" from i; returns ({name: raw value}, end)."""
    got = {}
    while data[i:i + 1] != b")":
        if data[i:i + 1] == b" ":
            i += 1
            continue
        sp = data.index(b" ", i)
        name = data[i:sp].decode()
        end = skip_value(data, sp + 1)
        got[name] = data[sp + 1:end]
        i = end
    return got, i + 1


def dovecot_fetch(messages, items=("RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE")):
    """messages: list of bytes. Returns a list of {item: bytes} in the same order."""
    tmp = tempfile.mkdtemp(prefix="tern-dovecot-")
    try:
        md = os.path.join(tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        for i, data in enumerate(messages):
            with open(os.path.join(md, "cur", "%d.M%dP1.host:2," % (1000 + i, i)), "wb") as f:
                f.write(data)
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(tmp, sub))
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:  # Dovecot refuses mail access as root
            uid = gid = 65534
            for root, dirs, files in os.walk(tmp):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), uid, gid)
            os.chown(tmp, uid, gid)
        conf = os.path.join(tmp, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/log
mail_location = maildir:{md}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
ssl = no
""")
        cmds = [b"s SELECT INBOX\r\n"]
        for n in range(1, len(messages) + 1):
            cmds.append(b"f%d FETCH %d (%s)\r\n" % (n, n, " ".join(items).encode()))
        cmds.append(b"z LOGOUT\r\n")
        env = {"USER": "tester", "HOME": tmp + "/home", "PATH": "/usr/bin:/bin"}
        out = subprocess.run([IMAP, "-c", conf], input=b"".join(cmds), env=env,
                             capture_output=True, timeout=60, check=True).stdout
        results = [None] * len(messages)
        pos = 0
        while True:
            m = re.compile(rb"\* (\d+) FETCH \(").search(out, pos)
            if m is None:
                break
            got, pos = parse_fetch_items(out, m.end())
            results[int(m.group(1)) - 1] = got
        return results
    finally:
        subprocess.run(["rm", "-rf", tmp], check=False)


NOT_DOVECOT = ("15-", "16-")  # huge header, deep nesting: checked by assertions instead

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    files = sys.argv[1:] or sorted(f for f in glob.glob(os.path.join(here, "*.eml"))
                                   if not os.path.basename(f).startswith(NOT_DOVECOT))
    msgs = [open(f, "rb").read() for f in files]
    for f, got in zip(files, dovecot_fetch(msgs)):
        with open(f[:-4] + ".expected", "wb") as out:
            out.write(SEP.join(got[i] for i in ("RFC822.SIZE", "ENVELOPE", "BODY",
                                                "BODYSTRUCTURE")) + b"\n")
        print(os.path.basename(f))
