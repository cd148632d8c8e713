#!/usr/bin/python3
"""Runs inside the throw-away root that tests/integration/test_packages.py prepares (an
overlay of the CI machine in a private mount namespace, entered with chroot): installs
tern's .debs, checks the installed layout, starts each daemon exactly as its unit's
ExecStart does (as root, with $NOTIFY_SOCKET, waiting for READY=1), adds users with
ternctl, sends with sendmail and SMTP, reads with IMAP (and POP3 when packaged), reloads
with SIGHUP, purges, and checks what is left.

usage: pkg_inner.py DEBDIR PORT_BASE LOGDIR     (prints "PKG-OK" at the end on success)
"""

import email
import glob
import grp
import imaplib
import os
import poplib
import pwd
import shlex
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

DEBDIR, BASE, LOGDIR = sys.argv[1], int(sys.argv[2]), sys.argv[3]
DOMAIN = "example.test"
STEP_TIMEOUT = 30.0
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
ENV["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def say(msg):
    print("pkg: " + msg, flush=True)


def run(argv, check=True, stdin=None, timeout=300):
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=ENV,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(argv), p.returncode,
                                                          p.stdout[-3000:], p.stderr[-3000:]))
    return p


def port(service):
    return BASE + {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143,
                   "imaps": 993, "pop3": 110, "pop3s": 995}[service]


# --- install ----------------------------------------------------------------------------

debs = sorted(d for d in glob.glob(os.path.join(DEBDIR, "*.deb")) if "-dbgsym_" not in d)
names = [os.path.basename(d).split("_")[0] for d in debs]
have_pop3d = "tern-pop3d" in names
say("installing " + " ".join(names))
# policy-rc.d: nothing is started by maintainer scripts (there is no systemd here anyway).
with open("/usr/sbin/policy-rc.d", "w") as f:
    f.write("#!/bin/sh\nexit 101\n")
os.chmod("/usr/sbin/policy-rc.d", 0o755)
out = run(["apt-get", "install", "-y", "-q", "--no-install-recommends"]
          + debs, timeout=600)
print(out.stdout[-2000:])
for n in names:
    st = run(["dpkg-query", "-W", "-f=${Status}", n]).stdout
    assert st == "install ok installed", (n, st)

# Layout the packages promise.
for path in ["/usr/sbin/tern-authd", "/usr/sbin/tern-deliverd", "/usr/sbin/tern-smtpd",
             "/usr/sbin/tern-imapd", "/usr/sbin/ternctl", "/usr/sbin/sendmail",
             "/usr/bin/mailq", "/usr/bin/newaliases", "/usr/lib/sendmail",
             "/etc/tern/tern.conf", "/etc/tern/conf.d", "/etc/tern/tls/tern.pem",
             "/etc/tern/tls/tern.key", "/etc/tern/passwd", "/var/mail/tern", "/var/lib/tern",
             "/usr/lib/sysusers.d/tern-core.conf", "/usr/lib/tmpfiles.d/tern-core.conf",
             "/etc/fail2ban/filter.d/tern-smtpd.conf", "/etc/fail2ban/filter.d/tern-login.conf"]:
    assert os.path.exists(path), path + " missing after install"
assert os.path.realpath("/usr/bin/mailq") == "/usr/sbin/sendmail"
assert run(["dpkg-query", "-S", "/usr/sbin/sendmail"]).stdout.startswith("tern-mta:")
for user in ("tern", "tern-auth", "tern-vmail"):
    pwd.getpwnam(user)
vmail = pwd.getpwnam("tern-vmail")
st = os.stat("/var/mail/tern")
assert st.st_uid == vmail.pw_uid, "store not owned by tern-vmail"
st = os.stat("/etc/tern/passwd")
assert st.st_uid == 0 and st.st_gid == grp.getgrnam("tern-auth").gr_gid and \
    st.st_mode & 0o777 == 0o640, "passwd-file owner/mode"
st = os.stat("/etc/tern/tls/tern.key")
assert st.st_mode & 0o007 == 0, "key readable by others"
assert st.st_uid == vmail.pw_uid and st.st_gid == grp.getgrnam("tern").gr_gid, \
    "key must be readable by tern-vmail (imapd) and group tern (smtpd) for reload"
conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "tern-core"]).stdout
assert "/etc/tern/tern.conf" in conffiles, conffiles
mta = run(["dpkg-query", "-W", "-f=${Provides}|${Conflicts}|${Replaces}", "tern-mta"]).stdout
assert mta.count("mail-transport-agent") == 3, mta
for other in names:
    if other != "tern-mta":
        prov = run(["dpkg-query", "-W", "-f=${Provides}", other]).stdout
        assert "mail-transport-agent" not in prov, other

units = sorted(glob.glob("/lib/systemd/system/tern-*.service"))
assert len(units) == (5 if have_pop3d else 4), units
v = run(["systemd-analyze", "verify"] + units, check=False)
assert v.returncode == 0 and not v.stderr.strip(), "systemd-analyze verify:\n" + v.stderr
say("systemd-analyze verify: clean for %d units" % len(units))

# --- config the test writes (non-standard loopback ports) --------------------------------

listen = {"smtpd": {"smtp_listen": port("smtp"), "submission_listen": port("submission"),
                    "submissions_listen": port("submissions")},
          "imapd": {"imap_listen": port("imap"), "imaps_listen": port("imaps")}}
if have_pop3d:
    listen["pop3d"] = {"pop3_listen": port("pop3"), "pop3s_listen": port("pop3s")}
conf = ["domains = %s" % DOMAIN, "log_target = stderr"]
for section, keys in listen.items():
    conf.append("[%s]" % section)
    conf += ["%s = 127.0.0.1:%d" % (k, p) for k, p in keys.items()]
with open("/etc/tern/conf.d/50-pkgtest.conf", "w") as f:
    f.write("\n".join(conf) + "\n")

# --- users with ternctl -------------------------------------------------------------------

PW = {"alice": "Alice-pw-7c1e", "bob": "Bob-pw-92aa"}
for u, pw in PW.items():
    run(["ternctl", "user", "add", "%s@%s" % (u, DOMAIN), pw])
assert "alice@%s" % DOMAIN in run(["ternctl", "user", "list"]).stdout

# --- start each daemon as its unit does ----------------------------------------------------


def unit_execstart(unit):
    with open(unit) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return shlex.split(line.split("=", 1)[1].strip())
    raise AssertionError("no ExecStart in " + unit)


def wait_notify(sock, want, deadline):
    got = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return got
    raise AssertionError("no %s from the daemon (got %r)" % (want, got))


procs = {}
notify = {}
order = ["authd", "deliverd", "smtpd", "imapd"] + (["pop3d"] if have_pop3d else [])
os.makedirs("/run/tern", exist_ok=True)  # systemd's RuntimeDirectory=tern
try:
    for d in order:
        unit = "/lib/systemd/system/tern-%s.service" % d
        argv = unit_execstart(unit)
        path = "/run/pkgtest-notify-%s" % d
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        os.chmod(path, 0o777)  # the daemon may notify after dropping privileges
        notify[d] = s
        log = open(os.path.join(LOGDIR, d + ".log"), "w")
        env = dict(ENV, NOTIFY_SOCKET=path)
        procs[d] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, start_new_session=True)
        wait_notify(s, "READY=1", time.monotonic() + STEP_TIMEOUT)
        assert procs[d].poll() is None, d + " exited"
        say("%s: READY=1 (%s)" % (d, " ".join(argv)))

    # Reload: SIGHUP -> RELOADING=1 ... READY=1 (systemctl reload = ExecReload=kill -HUP).
    for d in order:
        procs[d].send_signal(signal.SIGHUP)
        wait_notify(notify[d], "RELOADING=1", time.monotonic() + STEP_TIMEOUT)
        wait_notify(notify[d], "READY=1", time.monotonic() + STEP_TIMEOUT)
        assert procs[d].poll() is None, d + " died on reload"
    for d in order:
        with open(os.path.join(LOGDIR, d + ".log")) as f:
            text = f.read()
        assert "keeping the previous configuration" not in text, d + " reload failed:\n" + text
    say("reload: every daemon sent RELOADING=1 then READY=1 and took the new configuration")

    # --- mail in: sendmail and SMTP -------------------------------------------------------
    msg1 = ("From: root@%s\nTo: alice@%s\nSubject: via sendmail pkgtest\n\n"
            "hello from /usr/sbin/sendmail\n" % (DOMAIN, DOMAIN))
    run(["/usr/sbin/sendmail", "-t", "-i"], stdin=msg1, timeout=60)
    with smtplib.SMTP("127.0.0.1", port("smtp"), timeout=STEP_TIMEOUT) as c:
        c.sendmail("someone@remote.test", ["alice@%s" % DOMAIN],
                   "From: someone@remote.test\r\nTo: alice@%s\r\nSubject: via smtp pkgtest"
                   "\r\n\r\nhello over SMTP\r\n" % DOMAIN)
    ctx = ssl.create_default_context(cafile="/etc/tern/tls/tern.pem")
    ctx.check_hostname = False  # the self-signed certificate names the host, not 127.0.0.1
    with smtplib.SMTP("127.0.0.1", port("submission"), timeout=STEP_TIMEOUT) as c:
        c.starttls(context=ctx)
        c.login("bob@%s" % DOMAIN, PW["bob"])
        c.sendmail("bob@%s" % DOMAIN, ["alice@%s" % DOMAIN, "bob@%s" % DOMAIN],
                   "From: bob@%s\r\nTo: alice@%s\r\nSubject: via submission pkgtest\r\n\r\n"
                   "hello over submission\r\n" % (DOMAIN, DOMAIN))

    # --- mail out: IMAP (and POP3) ---------------------------------------------------------
    want = {"via sendmail pkgtest", "via smtp pkgtest", "via submission pkgtest"}
    deadline = time.monotonic() + STEP_TIMEOUT
    subjects = set()
    while time.monotonic() < deadline:
        im = imaplib.IMAP4("127.0.0.1", port("imap"), timeout=STEP_TIMEOUT)
        im.starttls(ssl_context=ctx)
        im.login("alice@%s" % DOMAIN, PW["alice"])
        im.select("INBOX", readonly=True)
        _typ, data = im.search(None, "ALL")
        subjects = set()
        for num in data[0].split():
            _typ, parts = im.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.add(str(email.message_from_bytes(parts[0][1])["Subject"]))
        im.logout()
        if want <= subjects:
            break
        time.sleep(0.2)
    assert want <= subjects, "IMAP INBOX of alice has %r" % subjects
    im = imaplib.IMAP4_SSL("127.0.0.1", port("imaps"), ssl_context=ctx, timeout=STEP_TIMEOUT)
    try:
        im.login("alice@%s" % DOMAIN, "wrong password")
        raise AssertionError("IMAP accepted a wrong password")
    except imaplib.IMAP4.error:
        pass
    im.logout()
    say("IMAP: alice sees %d messages (sendmail, SMTP, submission)" % len(subjects))
    if have_pop3d:
        pp = poplib.POP3("127.0.0.1", port("pop3"), timeout=STEP_TIMEOUT)
        pp.stls(context=ctx)
        pp.user("bob@%s" % DOMAIN)
        pp.pass_(PW["bob"])
        count, _size = pp.stat()
        assert count >= 1, "bob has no mail over POP3"
        body = b"\n".join(pp.retr(1)[1])
        assert b"via submission pkgtest" in body
        pp.quit()
        pp = poplib.POP3_SSL("127.0.0.1", port("pop3s"), context=ctx, timeout=STEP_TIMEOUT)
        pp.user("bob@%s" % DOMAIN)
        try:
            pp.pass_("wrong password")
            raise AssertionError("POP3 accepted a wrong password")
        except poplib.error_proto:
            pass
        pp.quit()
        say("POP3: bob reads his copy; a wrong password is refused")

    # sendmail by an ordinary user while deliverd is down: the message waits in the
    # maildrop and is delivered when deliverd starts again.
    procs["deliverd"].terminate()
    procs["deliverd"].wait(timeout=30)
    assert procs["deliverd"].returncode == 0, "deliverd exit status on SIGTERM"
    msg2 = ("From: nobody@%s\nTo: alice@%s\nSubject: via maildrop pkgtest\n\n"
            "queued while deliverd was down\n" % (DOMAIN, DOMAIN))
    # As an ordinary user: the maildrop (mode 1733) takes it even though nobody cannot
    # read the directory.
    r = run(["runuser", "-u", "nobody", "--", "/usr/sbin/sendmail", "-i", "alice@%s" % DOMAIN],
            stdin=msg2, check=False, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "maildrop" in r.stderr, r.stderr
    log = open(os.path.join(LOGDIR, "deliverd-2.log"), "w")
    procs["deliverd"] = subprocess.Popen(
        unit_execstart("/lib/systemd/system/tern-deliverd.service"), stdin=subprocess.DEVNULL,
        stdout=log, stderr=log, env=dict(ENV, NOTIFY_SOCKET="/run/pkgtest-notify-deliverd"),
        start_new_session=True)
    wait_notify(notify["deliverd"], "READY=1", time.monotonic() + STEP_TIMEOUT)
    deadline = time.monotonic() + STEP_TIMEOUT
    found = False
    while time.monotonic() < deadline and not found:
        im = imaplib.IMAP4_SSL("127.0.0.1", port("imaps"), ssl_context=ctx, timeout=STEP_TIMEOUT)
        im.login("alice@%s" % DOMAIN, PW["alice"])
        im.select("INBOX", readonly=True)
        _typ, data = im.search(None, "SUBJECT", '"via maildrop pkgtest"')
        found = bool(data[0].split())
        im.logout()
        if not found:
            time.sleep(0.2)
    assert found, "mail left in the maildrop was not delivered"
    say("sendmail with deliverd down: kept in the maildrop, delivered at restart")

    # The Maildir is tern-vmail's.
    files = glob.glob("/var/mail/tern/**/new/*", recursive=True) + \
        glob.glob("/var/mail/tern/**/cur/*", recursive=True)
    assert files and all(os.stat(f).st_uid == vmail.pw_uid for f in files), files
finally:
    for d in reversed(order):
        p = procs.get(d)
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    for s in notify.values():
        s.close()

for d in order:
    assert procs[d].returncode == 0, "%s exit status %s on SIGTERM" % (d, procs[d].returncode)

# --- fail2ban: the packaged filter finds the wrong-password attempt in imapd's log -------
if os.path.exists("/usr/bin/fail2ban-regex"):
    for d in ["imapd"] + (["pop3d"] if have_pop3d else []):
        r = run(["fail2ban-regex", "--print-all-matched", os.path.join(LOGDIR, d + ".log"),
                 "/etc/fail2ban/filter.d/tern-login.conf"], timeout=120)
        matched = [l for l in r.stdout.splitlines() if "(auth failed" in l]
        assert len(matched) == 1 and "127.0.0.1" in matched[0], d + ":\n" + r.stdout[-3000:]
        say("fail2ban-regex: tern-login.conf matches the failed %s login" % d)

# --- purge -----------------------------------------------------------------------------
owned = set()
for n in names:
    owned.update(run(["dpkg-query", "-L", n]).stdout.split())
run(["apt-get", "purge", "-y", "-q"] + names, timeout=600)
for n in names:
    st = run(["dpkg-query", "-W", "-f=${Status}", n], check=False).stdout
    assert st in ("", "unknown ok not-installed") or "not-installed" in st, (n, st)
left = sorted(p for p in owned if os.path.lexists(p) and not os.path.isdir(p))
assert not left, "files of the packages left after purge: %r" % left
# What is left in /etc/tern is the admin's own file (dpkg keeps files it does not know).
left = sorted(os.path.join(b, f) for b, _d, fs in os.walk("/etc/tern") for f in fs)
assert left == ["/etc/tern/conf.d/50-pkgtest.conf"], left
for gone in ("/var/lib/tern", "/run/tern", "/etc/fail2ban/jail.d/tern.conf",
             "/usr/lib/sysusers.d/tern-core.conf"):
    assert not os.path.lexists(gone), gone + " left after purge"
# Kept on purpose: the users' mail and the system accounts (Debian policy 9.2.2 and
# common practice: purge does not delete user data or system users).
assert glob.glob("/var/mail/tern/**/*", recursive=True), "purge deleted the mail store"
pwd.getpwnam("tern-vmail")
say("purge: config, state and package files gone; mail store and system users kept")
print("PKG-OK", flush=True)
