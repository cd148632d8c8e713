"""tern-deliverd end to end: Python's smtplib.LMTP against the Unix socket, real authd
behind it, bytes checked in the Maildir; a client that disconnects mid-DATA; authd down;
a full disk (root only); SIGKILL during a stream of deliveries."""
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deliverd_harness import AUTHD, DELIVERD, OTHER_USER, RUN_AS, Env

PREFIX = b"Return-Path: <sender@remote.test>\r\nDelivered-To: %s\r\n"


@pytest.fixture(autouse=True)
def need_binaries():
    for b in (AUTHD, DELIVERD):
        if not b.exists():
            pytest.fail(f"{b} is not built")


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path).start()
    yield e
    e.stop()
    e.cleanup()


def lmtp(env):
    c = smtplib.LMTP(str(env.lmtp), timeout=30)
    code, _ = c.ehlo_or_helo_if_needed() or (250, b"")
    return c


def transaction(c, sender, rcpts, body):
    """MAIL, RCPTs, DATA; returns (rcpt replies, data replies per accepted rcpt)."""
    code, msg = c.docmd(f"MAIL FROM:<{sender}>")
    assert code == 250, msg
    rcpt_replies = [c.docmd(f"RCPT TO:<{r}>") for r in rcpts]
    accepted = [r for r, (code, _) in zip(rcpts, rcpt_replies) if code == 250]
    if not accepted:
        return rcpt_replies, []
    # smtplib's data() reads the first reply; LMTP sends one per accepted recipient.
    first = c.data(body)
    data_replies = [first] + [c.getreply() for _ in accepted[1:]]
    return rcpt_replies, list(zip(accepted, data_replies))


def test_multi_recipient_mixed_results_and_exact_bytes(env):
    body = (b"From: sender@remote.test\r\nSubject: test\r\n\r\nline one\r\n"
            b".leading dot\r\n\xc3\xa4 8bit\r\nlast line\r\n")
    c = lmtp(env)
    assert "pipelining" in c.esmtp_features and "chunking" in c.esmtp_features
    rcpt, data = transaction(c, "sender@remote.test",
                             ["alice@example.test", "nobody@example.test", "Bob@EXAMPLE.test",
                              "team@example.test", "alice+Work@example.test",
                              "postmaster@example.test"], body)
    assert rcpt[1][0] == 550 and b"5.1.1" in rcpt[1][1]
    assert [code for code, _ in rcpt] == [250, 550, 250, 250, 250, 250]
    assert [r for r, _ in data] == ["alice@example.test", "Bob@EXAMPLE.test",
                                    "team@example.test", "alice+Work@example.test",
                                    "postmaster@example.test"]
    for r, (code, msg) in data:
        assert code == 250 and msg.startswith(b"2.0.0 <"), (r, code, msg)
    c.quit()
    # alice: once directly, once for +Work (no .Work folder -> INBOX, its own copy), and
    # once as team and postmaster target: the duplicates after expansion are merged.
    alice = env.messages("alice@example.test")
    assert sorted(alice) == sorted([PREFIX % b"alice@example.test" + body,
                                    PREFIX % b"alice+Work@example.test" + body])
    bob = env.messages("bob@example.test")
    assert bob == [PREFIX % b"Bob@example.test" + body]
    assert env.leftovers("alice@example.test") == []
    log = env.log_text()
    assert "to=<alice@example.test>, relay=local, delay=" in log
    assert "dsn=2.0.0, status=sent (delivered to maildir" in log


def test_detail_folder_pipelining_and_bdat(env):
    env.make_folder("carol@example.test", "Lists")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(env.lmtp))
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    # Everything pipelined in one write, BDAT in three chunks.
    s.sendall(b"LHLO x\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<carol+Lists@example.test>\r\n"
              b"RCPT TO:<who@catchall.test>\r\nBDAT 5\r\nHello"
              b"BDAT 8\r\n\r\n.\r\nx\r\nBDAT 0 LAST\r\nQUIT\r\n")
    lines = []
    for _ in range(40):
        line = f.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(b"221"):
            break
    replies = [l for l in lines if not l.startswith(b"250-")]
    assert [r[:3] for r in replies] == [b"250"] * 8 + [b"221"], lines
    assert b"8 octets received" in replies[5]
    s.close()
    want = b"Hello\r\n.\r\nx\r\n"
    assert env.messages("carol@example.test", "Lists") == [
        PREFIX.replace(b"sender@remote.test", b"s@remote.test") % b"carol+Lists@example.test"
        + want]
    # The catch-all target has no detail: INBOX.
    assert env.messages("carol@example.test") == [
        PREFIX.replace(b"sender@remote.test", b"s@remote.test") % b"carol@example.test" + want]


def test_size_cap_and_bare_lf(tmp_path):
    e = Env(tmp_path, max_size="2K").start()
    try:
        c = lmtp(e)
        at_cap = b"x" * 2046 + b"\r\n"
        _, data = transaction(c, "s@remote.test", ["alice@example.test"], at_cap)
        assert data[0][1][0] == 250
        _, data = transaction(c, "s@remote.test", ["alice@example.test"], at_cap + b"y")
        assert data[0][1][0] == 552
        c.quit()
        # Bare LF: refused, and "\n.\r\n" does not end the data.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(str(e.lmtp))
        f = s.makefile("rb")
        s.sendall(b"LHLO x\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
                  b"DATA\r\nsmuggled\n.\r\nMAIL FROM:<evil@x.test>\r\n.\r\nNOOP\r\n")
        got = b""
        for _ in range(40):
            line = f.readline()
            got += line
            if not line or line.startswith(b"250 2.0.0 Ok"):
                break
        assert b"550 5.6.0" in got and b"evil" not in got
        s.close()
        assert len(e.messages("alice@example.test")) == 1
        assert e.messages("bob@example.test") == []
    finally:
        e.stop()
        e.cleanup()


def test_disconnect_mid_data_leaves_nothing(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(env.lmtp))
    f = s.makefile("rb")
    s.sendall(b"LHLO x\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    for _ in range(20):
        if f.readline().startswith(b"354"):
            break
    s.sendall(b"Subject: half\r\n\r\n" + b"partial line\r\n" * 1000)
    s.close()
    # A later delivery on a new connection completes; the half message never appears.
    c = lmtp(env)
    _, data = transaction(c, "s@remote.test", ["alice@example.test"], b"whole\r\n")
    assert data[0][1][0] == 250
    c.quit()
    msgs = env.messages("alice@example.test")
    assert len(msgs) == 1 and msgs[0].endswith(b"whole\r\n")
    assert env.leftovers("alice@example.test") == []
    assert list((env.state / "spool").iterdir()) == []


def test_authd_down_gives_451_at_rcpt(env):
    env.authd.terminate()
    env.authd.wait(timeout=10)
    c = lmtp(env)
    c.docmd("MAIL FROM:<s@remote.test>")
    code, msg = c.docmd("RCPT TO:<alice@example.test>")
    assert code == 451 and msg.startswith(b"4.3.0"), msg
    c.quit()


def test_quota(env):
    c = lmtp(env)
    c.docmd("MAIL FROM:<s@remote.test> SIZE=500")
    code, msg = c.docmd("RCPT TO:<small@example.test>")
    assert code == 552 and b"5.2.2" in msg
    c.docmd("RSET")
    _, data = transaction(c, "s@remote.test", ["small@example.test"], b"y" * 300 + b"\r\n")
    assert data[0][1][0] == 552 and b"5.2.2" in data[0][1][1]
    # 200-byte quota: the first small message fits, the second would pass the quota.
    _, data = transaction(c, "s@remote.test", ["small@example.test"], b"z" * 48 + b"\r\n")
    assert data[0][1][0] == 250
    _, data = transaction(c, "s@remote.test", ["small@example.test"], b"z" * 48 + b"\r\n")
    assert data[0][1][0] == 552 and b"5.2.2" in data[0][1][1]
    # At RCPT the usage counts too: less is left than the declared SIZE.
    c.docmd("MAIL FROM:<s@remote.test> SIZE=150")
    code, msg = c.docmd("RCPT TO:<small@example.test>")
    assert code == 552 and b"5.2.2" in msg
    c.docmd("RSET")
    c.docmd("MAIL FROM:<s@remote.test> SIZE=10")
    assert c.docmd("RCPT TO:<small@example.test>")[0] == 250
    c.quit()
    assert len(env.messages("small@example.test")) == 1
    assert "status=bounced (Mailbox full)" in env.log_text()


def test_peer_uid_refused(env):
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another uid")
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
             "print(s.recv(100).decode())")
    r = subprocess.run(["/usr/bin/python3", "-c", probe, str(env.lmtp)], user=OTHER_USER,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.stdout.startswith("421 4.7.0"), (r.stdout, r.stderr)
    r = subprocess.run(["/usr/bin/python3", "-c", probe, str(env.submit)], user=OTHER_USER,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.stdout.startswith("220 "), (r.stdout, r.stderr)
    assert "connection from uid" in env.log_text()


def test_disk_full_gives_452_and_nothing_partial(tmp_path):
    if os.getuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    import tempfile
    mnt = Path(tempfile.mkdtemp(prefix="tern-full-", dir="/tmp"))
    os.chmod(mnt, 0o755)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    e = None
    try:
        import pwd
        pw = pwd.getpwnam(RUN_AS)
        os.chown(mnt, pw.pw_uid, pw.pw_gid)
        e = Env(tmp_path, mail_root=mnt).start()
        c = lmtp(e)
        _, data = transaction(c, "s@remote.test", ["alice@example.test"],
                              (b"z" * 998 + b"\r\n") * 1024)
        assert data[0][1][0] == 452 and data[0][1][1].startswith(b"4.3.1"), data
        # A small message still fits.
        _, data = transaction(c, "s@remote.test", ["alice@example.test"], b"small\r\n")
        assert data[0][1][0] == 250
        c.quit()
        msgs = e.messages("alice@example.test")
        assert len(msgs) == 1 and msgs[0].endswith(b"small\r\n")
        assert e.leftovers("alice@example.test") == []
    finally:
        if e is not None:
            e.stop()
            e.cleanup()
        subprocess.run(["umount", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)


def test_sigkill_during_deliveries_loses_nothing_acknowledged(tmp_path):
    e = Env(tmp_path).start()
    acked = []  # (msgid, rcpt)
    stop = threading.Event()
    rcpts = ["alice@example.test", "bob@example.test"]
    counter = [0]

    def client():
        for _ in range(100000):
            if stop.is_set():
                return
            try:
                c = smtplib.LMTP(str(e.lmtp), timeout=10)
                c.ehlo_or_helo_if_needed()
                for _ in range(50):
                    if stop.is_set():
                        break
                    counter[0] += 1
                    mid = f"msg-{counter[0]:06d}"
                    body = (f"Message-ID: <{mid}@t>\r\n\r\n".encode() +
                            b"filler line\r\n" * 200 + f"END {mid}\r\n".encode())
                    c.docmd("MAIL FROM:<s@remote.test>")
                    ok = [r for r in rcpts if c.docmd(f"RCPT TO:<{r}>")[0] == 250]
                    if not ok:
                        break
                    replies = [c.data(body)] + [c.getreply() for _ in ok[1:]]
                    for r, (code, _) in zip(ok, replies):
                        if code == 250:
                            acked.append((mid, r))
            except (OSError, smtplib.SMTPException):
                time.sleep(0.01)

    t = threading.Thread(target=client)
    t.start()
    rng = random.Random(1234)
    try:
        for _ in range(20):
            time.sleep(rng.uniform(0.02, 0.25))
            e.kill_deliverd()
            e.start_deliverd()
    finally:
        time.sleep(0.2)
        stop.set()
        t.join(timeout=60)
        e.stop()
    assert len(acked) > 0
    print(f"acked={len(acked)} sent={counter[0]}")
    for r in rcpts:
        files = e.messages(r)
        ids = {}
        for content in files:
            # Every file in new/ is whole.
            head = content.split(b"\r\n", 3)[2]
            mid = head[len(b"Message-ID: <"):].split(b"@")[0].decode()
            assert content.endswith(f"END {mid}\r\n".encode()), content[-80:]
            ids[mid] = ids.get(mid, 0) + 1
        for mid, rr in acked:
            if rr == r:
                assert ids.get(mid) == 1, (mid, r, ids.get(mid))
    e.cleanup()


def test_pflogsumm_reads_the_log(env):
    from deliverd_harness import SOURCE
    r = subprocess.run([str(SOURCE / "scripts" / "deps"), "pflogsumm"], capture_output=True,
                       text=True, timeout=600, check=False)
    if r.returncode != 0 or shutil.which("pflogsumm") is None:
        pytest.skip(f"pflogsumm not installable: {r.stderr[-300:]}")
    c = lmtp(env)
    for _ in range(3):
        transaction(c, "a@remote.test", ["alice@example.test", "bob@example.test",
                                         "nobody@example.test"], b"Subject: x\r\n\r\nhi\r\n")
    c.quit()
    env.stop()
    r = subprocess.run(["pflogsumm", "--syslog_name=tern", str(env.tmp / "deliverd.log")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    lines = [l.split() for l in r.stdout.splitlines()]
    assert ["6", "delivered"] in lines, r.stdout[:800]
    assert ["2", "recipients"] in lines, r.stdout[:800]


def test_sighup_reloads_alias_maps(env):
    c = lmtp(env)
    c.docmd("MAIL FROM:<s@remote.test>")
    assert c.docmd("RCPT TO:<sales@example.test>")[0] == 550
    c.quit()
    (env.tmp / "virtual").write_text("sales@example.test: carol@example.test\n")
    env.deliverd.send_signal(signal.SIGHUP)
    for _ in range(100):  # bounded: the reload happens on the loop, soon after the signal
        if "reloaded" in env.log_text():
            break
        time.sleep(0.05)
    c = lmtp(env)
    _, data = transaction(c, "s@remote.test", ["sales@example.test"], b"to sales\r\n")
    assert data[0][1][0] == 250
    c.quit()
    assert env.messages("carol@example.test")[0].endswith(b"to sales\r\n")
    # A broken map on reload keeps the old one.
    (env.tmp / "virtual").write_text("broken line without colon\n")
    env.deliverd.send_signal(signal.SIGHUP)
    for _ in range(100):
        if "keeping" in env.log_text() or "failed" in env.log_text():
            break
        time.sleep(0.05)
    c = lmtp(env)
    c.docmd("MAIL FROM:<s@remote.test>")
    code = c.docmd("RCPT TO:<sales@example.test>")[0]
    c.quit()
    assert code == 250
    assert env.deliverd.poll() is None
