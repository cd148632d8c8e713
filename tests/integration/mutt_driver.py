"""Drives a real mutt in tmux against a tern stack's IMAP (STARTTLS) and waits, bounded,
until a text shows on its screen. Shared by the imapd client tests."""

import os
import re
import shutil
import subprocess
import time


def mutt_screen_shows(stack, user, tmp_path, text, extra="", tag="mutt", seconds=30):
    """Starts mutt as user with the stack's CA trusted (plus extra muttrc lines), accepts
    a certificate prompt, and returns the last screen once text is on it (or at the
    deadline). Always quits mutt and ends the tmux session."""
    addr, pw = stack.users[user]
    rc = tmp_path / "muttrc"
    rc.write_text(f"""set folder="imap://127.0.0.1:{stack.port('imap')}/"
set imap_user="{addr}"
set imap_pass="{pw}"
{extra}set ssl_starttls=yes
set ssl_force_tls=yes
set certificate_file="{tmp_path}/certs"
set spoolfile="+INBOX"
set header_cache=""
set message_cachedir=""
set mail_check=5
set timeout=5
""")
    # Trust the stack's CA the way mutt does: a certificate_file with it in it.
    shutil.copy(stack.ca, tmp_path / "certs")
    session = "tern-%s-%d" % (tag, os.getpid())
    env = dict(os.environ, TERM="xterm", HOME=str(tmp_path))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40",
                    "mutt -n -F %s" % rc], check=True, env=env, timeout=30)
    try:
        screen = ""
        deadline = time.time() + seconds
        while time.time() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            if text in screen:
                break
            if re.search(r"\(r\)eject, accept \(o\)nce", screen):
                subprocess.run(["tmux", "send-keys", "-t", session, "o"])
            time.sleep(0.5)
        return screen
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], timeout=10)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
