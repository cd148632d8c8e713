"""tern-imapd with real clients nobody here wrote: mbsync (isync) syncing both ways,
curl fetching over IMAP with STARTTLS, and mutt reading the folder in a terminal (tmux)."""

import os
import subprocess
import time

import pytest

from mutt_driver import mutt_screen_shows
from ternstack import SOURCE, Stack, built

pytestmark = pytest.mark.skipif(not (built("imapd") and built("authd")),
                                reason="tern-imapd or tern-authd not built")


@pytest.fixture(scope="module")
def stack():
    subprocess.run([os.path.join(SOURCE, "scripts", "deps"), "isync", "curl", "mutt", "tmux"],
                   check=True, timeout=600)
    with Stack() as st:
        yield st


def drop(maildir, subject, n):
    name = "%d.M%dP%d.clienttest" % (time.time(), n, os.getpid())
    with open(os.path.join(maildir, "tmp", name), "w") as f:
        f.write("From: bob@example.test\nTo: alice@example.test\nSubject: %s\n\nbody %d\n"
                % (subject, n))
    os.chmod(os.path.join(maildir, "tmp", name), 0o644)
    os.rename(os.path.join(maildir, "tmp", name), os.path.join(maildir, "new", name))


def count_files(path):
    return sum(len(os.listdir(os.path.join(path, d))) for d in ("cur", "new")
               if os.path.isdir(os.path.join(path, d)))


def mbsync(conf):
    p = subprocess.run(["mbsync", "-c", conf, "-a"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_mbsync_both_ways(stack, tmp_path):
    addr, pw = stack.users["alice"]
    # Log in once so the server creates the user's special-use folders.
    import imaplib
    i = imaplib.IMAP4("127.0.0.1", stack.port("imap"))
    i.login(addr, pw)
    i.logout()
    for n in range(3):
        drop(stack.maildir("alice"), "server side %d" % n, n)
    local = tmp_path / "local"
    local.mkdir()
    conf = tmp_path / "mbsyncrc"
    conf.write_text(f"""IMAPAccount tern
Host localhost
Port {stack.port('imap')}
User {addr}
Pass {pw}
SSLType STARTTLS
CertificateFile {stack.ca}

IMAPStore remote
Account tern

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel tern
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    mbsync(str(conf))
    assert count_files(local / "INBOX") == 3
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()
    # A message written locally goes up (APPEND), a flag set locally goes up (STORE).
    inbox = local / "INBOX"
    name = "%d.local.msg" % time.time()
    (inbox / "new" / name).write_text("Subject: from the laptop\n\nhi\n")
    sub = "cur" if os.listdir(inbox / "cur") else "new"
    first = sorted(os.listdir(inbox / sub))[0]
    os.rename(inbox / sub / first, inbox / "cur" / (first.split(":")[0] + ":2,F"))
    mbsync(str(conf))
    import imaplib
    i = imaplib.IMAP4("127.0.0.1", stack.port("imap"))
    i.login(addr, pw)
    typ, data = i.select("INBOX")
    assert int(data[0]) == 4
    typ, data = i.search(None, "SUBJECT", "laptop")
    assert data[0] != b""
    typ, data = i.search(None, "FLAGGED")
    assert len(data[0].split()) == 1
    i.logout()
    # A second sync with nothing new changes nothing on either side.
    before_local = count_files(inbox)
    before_server = count_files(stack.maildir("alice"))
    mbsync(str(conf))
    assert count_files(inbox) == before_local
    assert count_files(stack.maildir("alice")) == before_server


def test_curl_fetch_over_starttls(stack, tmp_path):
    addr, pw = stack.users["bob"]
    import imaplib
    i = imaplib.IMAP4("127.0.0.1", stack.port("imap"))
    i.login(addr, pw)
    i.logout()
    drop(stack.maildir("bob"), "fetched by curl", 1)
    url = "imap://127.0.0.1:%d/INBOX;UID=1" % stack.port("imap")
    p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", stack.ca, "--user",
                        "%s:%s" % (addr, pw), url], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Subject: fetched by curl" in p.stdout
    p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", stack.ca, "--user",
                        "%s:%s" % (addr, pw), "imap://127.0.0.1:%d/" % stack.port("imap")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "INBOX" in p.stdout and "Sent" in p.stdout, p.stdout


def test_mutt_reads_the_folder(stack, tmp_path):
    drop(stack.maildir("bob"), "shown in mutt", 2)
    screen = mutt_screen_shows(stack, "bob", tmp_path, "shown in mutt")
    assert "shown in mutt" in screen, screen
