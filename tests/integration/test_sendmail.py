"""The sendmail command against a running deliverd: -t with To/Cc/Bcc (Bcc removed), -f
for trusted and untrusted users, -bs SMTP on stdin/stdout, mailq, newaliases, exit codes,
and Debian's mailx (bsd-mailx) end to end."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from deliverd_harness import AUTHD, DELIVERD, OTHER_USER, SENDMAIL, SOURCE, Env, me

EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 0, 64, 65, 67, 75


@pytest.fixture(autouse=True)
def need_binaries():
    for b in (AUTHD, DELIVERD, SENDMAIL):
        if not b.exists():
            pytest.fail(f"{b} is not built")


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path).start()
    yield e
    e.stop()
    e.cleanup()


def test_t_with_bcc_removed(env):
    msg = (b"From: me@example.test\n"
           b"To: Alice <alice@example.test>\n"
           b"Cc: bob@example.test (Bob)\n"
           b"Bcc: carol@example.test\n"
           b"Subject: -t test\n"
           b"\n"
           b"Hello.\n"
           b".dot line\n"
           b".\n"
           b"after a lone dot, kept with -i\n")
    r = env.sendmail("-t", "-oi", input_bytes=msg)
    assert r.returncode == EX_OK, r.stderr
    sender = f"{me()}@example.test".encode()
    for user in ("alice@example.test", "bob@example.test", "carol@example.test"):
        msgs = env.messages(user)
        assert len(msgs) == 1, user
        m = msgs[0]
        assert m.startswith(b"Return-Path: <" + sender + b">\r\nDelivered-To: " +
                            user.encode() + b"\r\n")
        assert b"Bcc:" not in m and b"carol@example.test\r\n" not in m.split(b"\r\n\r\n")[0][60:]
        assert b"\r\nHello.\r\n.dot line\r\n.\r\nafter a lone dot, kept with -i\r\n" in m
        assert b"\r\nDate: " in m and b"\r\nMessage-ID: <" in m
        assert b"\r\nSubject: -t test\r\n" in m


def test_lone_dot_ends_input_without_i(env):
    r = env.sendmail("alice@example.test", input_bytes=b"Subject: x\n\nbody\n.\nnot sent\n")
    assert r.returncode == EX_OK, r.stderr
    m = env.messages("alice@example.test")[0]
    assert m.endswith(b"\r\nbody\r\n") and b"not sent" not in m


def test_sender_rules(env):
    r = env.sendmail("-f", "boss@elsewhere.test", "-F", "The Boss", "bob@example.test",
                     input_bytes=b"Subject: f\n\nx\n")
    assert r.returncode == EX_OK, r.stderr
    m = env.messages("bob@example.test")[0]
    # The test runs as root or as the daemons' own user: trusted either way, so -f sets
    # the envelope sender and From: gets -F. (The untrusted case is the next test.)
    assert m.startswith(b"Return-Path: <boss@elsewhere.test>\r\n")
    assert b"\r\nFrom: \"The Boss\" <boss@elsewhere.test>\r\n" in m


def test_untrusted_user_cannot_set_sender(env):
    if os.getuid() != 0:
        pytest.skip("needs root to run sendmail as another user")
    os.chmod(env.conf, 0o644)
    r = env.sendmail("-f", "root@example.test", "alice@example.test",
                     input_bytes=b"Subject: u\n\nfrom another user\n", user=OTHER_USER)
    assert r.returncode == EX_OK, r.stderr
    m = env.messages("alice@example.test")[0]
    assert m.startswith(f"Return-Path: <{OTHER_USER}@example.test>\r\n".encode()), m[:80]
    # Speaking LMTP to the submit socket directly does not get around it either.
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
             "f=s.makefile('rb'); f.readline();"
             "s.sendall(b'LHLO x\\r\\nMAIL FROM:<root@example.test>\\r\\n');"
             "[f.readline() for _ in range(8)]; print(f.readline().decode())")
    r = subprocess.run(["/usr/bin/python3", "-c", probe, str(env.submit)], user=OTHER_USER,
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.stdout.startswith("553 5.7.1"), (r.stdout, r.stderr)


def test_unknown_recipient_and_deliverd_down(env):
    r = env.sendmail("nobody@example.test", input_bytes=b"Subject: x\n\nx\n")
    assert r.returncode == EX_NOUSER
    assert b"5.1.1" in r.stderr
    r = env.sendmail(input_bytes=b"Subject: x\n\nx\n")
    assert r.returncode == EX_USAGE
    env.kill_deliverd()
    # deliverd down: the message waits in the maildrop (never lost, never a failure for
    # cron), and goes to the mailbox once deliverd runs again.
    r = env.sendmail("alice@example.test", input_bytes=b"Subject: while down\n\nkept\n")
    assert r.returncode == EX_OK, r.stderr
    assert b"maildrop" in r.stderr
    assert env.messages("alice@example.test") == []
    env.start_deliverd()
    deadline = time.time() + 20
    while not env.messages("alice@example.test") and time.time() < deadline:
        time.sleep(0.2)
    msgs = env.messages("alice@example.test")
    assert len(msgs) == 1 and b"\r\nSubject: while down\r\n" in msgs[0]
    assert msgs[0].endswith(b"\r\n\r\nkept\r\n") or msgs[0].endswith(b"\r\nkept\r\n")
    # No maildrop either: a temporary failure, the caller keeps the message.
    env.kill_deliverd()
    shutil.rmtree(env.state / "maildrop")
    r = env.sendmail("alice@example.test", input_bytes=b"Subject: x\n\nx\n")
    assert r.returncode == EX_TEMPFAIL


def test_bs_session(env):
    script = (b"EHLO client\r\n"
              b"MAIL FROM:<" + f"{me()}@example.test".encode() + b">\r\n"
              b"RCPT TO:<alice@example.test>\r\n"
              b"RCPT TO:<ghost@example.test>\r\n"
              b"RCPT TO:<root@example.test>\r\n"
              b"DATA\r\n"
              b"Subject: bs\r\n\r\n..stuffed\r\nbody\r\n.\r\n"
              b"QUIT\r\n")
    r = env.sendmail("-bs", input_bytes=script)
    assert r.returncode == EX_OK
    codes = [l[:3] for l in r.stdout.split(b"\r\n") if l and l[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"550", b"250", b"354", b"250", b"221"], \
        r.stdout
    alice = env.messages("alice@example.test")
    assert len(alice) == 1 and alice[0].endswith(b"\r\nSubject: bs\r\n\r\n.stuffed\r\nbody\r\n")
    # root is a local alias of bob (aliases file).
    assert len(env.messages("bob@example.test")) == 1


def test_mailq_and_newaliases(env):
    r = env.sendmail("-bp")
    assert r.returncode == EX_OK and r.stdout == b"Mail queue is empty\n"
    # A message in deliverd's outbound queue (format: deliverd/queue.h).
    q = env.state / "queue" / "msg"
    q.mkdir(parents=True, exist_ok=True)
    body = b"x" * 3000
    head = ("TERNQ 1\nqid 0000000000000A01\narrival 1\nsender s@example.test\nenvid -\n"
            "ret -\nflags ---\nrcpt 0 r@remote.test -\nsize %020d\nend\n" % len(body))
    (q / "0000000000000A01").write_bytes(head.encode() + body)
    r = env.sendmail("-bp")
    assert r.stdout.endswith(b"-- 3 Kbytes in 1 Request.\n"), r.stdout
    assert b"0000000000000A01" in r.stdout and b"r@remote.test" in r.stdout
    r = env.sendmail("-bi")
    assert r.returncode == EX_OK, r.stderr
    assert b"2 aliases" in r.stdout
    (env.tmp / "aliases").write_text("postmaster: |/bin/sh\n")
    r = env.sendmail("-bi")
    assert r.returncode == EX_DATAERR
    assert b"aliases:1:" in r.stderr


def test_mailx_end_to_end(env):
    r = subprocess.run([str(SOURCE / "scripts" / "deps"), "bsd-mailx"], capture_output=True,
                       text=True, timeout=600, check=False)
    if r.returncode != 0 or not os.path.exists("/usr/bin/bsd-mailx"):
        pytest.skip(f"bsd-mailx not installable: {r.stderr[-300:]}")
    rc = env.tmp / "mailrc"
    rc.write_text(f"set sendmail={SENDMAIL}\n")
    menv = dict(os.environ, MAILRC=str(rc), TERN_CONF=str(env.conf), HOME=str(env.tmp))
    r = subprocess.run(["/usr/bin/bsd-mailx", "-s", "via mailx", "alice@example.test"],
                       input=b"Hello from mailx.\n", env=menv, capture_output=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    msgs = env.messages("alice@example.test")
    assert len(msgs) == 1
    assert b"\r\nSubject: via mailx\r\n" in msgs[0]
    assert msgs[0].endswith(b"Hello from mailx.\r\n")
