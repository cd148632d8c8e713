"""Debian's Roundcube (roundcube-core + roundcube-sqlite3) pointed at a tern stack and
served by PHP's built-in server on a loopback port, with its own config directory
(ROUNDCUBE_CONFIG_DIR), sqlite database, temp and log dirs in DIR: the machine's
/etc/roundcube is not touched. imap_debug/smtp_debug logs land in DIR/logs/."""

import os
import shutil
import socket
import sqlite3
import subprocess
import time

RC_ROOT = "/var/lib/roundcube/public_html"
RC_SQL = "/usr/share/roundcube/SQL/sqlite.initial.sql"


def php_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Roundcube:
    def __init__(self, directory, env, implicit_tls=False):
        self.dir = directory
        self.env = env  # the tern stack's stack.env values
        self.implicit_tls = implicit_tls
        self.proc = None
        self.port = None

    def write_config(self):
        cfg = os.path.join(self.dir, "config")
        for d in ("config", "logs", "temp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for f in ("defaults.inc.php", "mimetypes.php"):
            shutil.copy(os.path.join("/etc/roundcube", f), cfg)
        db = os.path.join(self.dir, "roundcube.db")
        if not os.path.exists(db):
            con = sqlite3.connect(db)
            with open(RC_SQL) as f:
                con.executescript(f.read())
            con.close()
        host = self.env["TERN_HOST"]
        if self.implicit_tls:
            imap = "ssl://%s:%s" % (host, self.env["TERN_IMAPS_PORT"])
            smtp = "ssl://%s:%s" % (host, self.env["TERN_SUBMISSIONS_PORT"])
        else:
            imap = "tls://%s:%s" % (host, self.env["TERN_IMAP_PORT"])
            smtp = "tls://%s:%s" % (host, self.env["TERN_SUBMISSION_PORT"])
        # The stack's certificate is signed by its local CA and names localhost and
        # 127.0.0.1: verify it against that CA (the CA is "trusted" for Roundcube).
        tls = ("['ssl' => ['verify_peer' => true, 'verify_peer_name' => true, "
               "'cafile' => %s, 'peer_name' => 'localhost']]" % php_str(self.env["TERN_CA_CERT"]))
        text = """<?php
$config = [];
$config['db_dsnw'] = %(dsn)s;
$config['imap_host'] = %(imap)s;
$config['smtp_host'] = %(smtp)s;
$config['smtp_user'] = '%%u';
$config['smtp_pass'] = '%%p';
$config['imap_conn_options'] = %(tls)s;
$config['smtp_conn_options'] = %(tls)s;
$config['des_key'] = 'tern-roundcube-test-key!';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['enable_spellcheck'] = false;
$config['temp_dir'] = %(temp)s;
$config['log_dir'] = %(logs)s;
$config['log_driver'] = 'file';
$config['imap_debug'] = true;
$config['smtp_debug'] = true;
$config['sql_debug'] = false;
$config['support_url'] = '';
$config['product_name'] = 'Roundcube Webmail';
$config['login_autocomplete'] = 0;
$config['create_default_folders'] = true;
$config['mime_types'] = %(mime)s;
$config['language'] = 'en_US';
""" % {"dsn": php_str("sqlite:///%s?mode=0640" % db), "imap": php_str(imap),
       "smtp": php_str(smtp), "tls": tls,
       "temp": php_str(os.path.join(self.dir, "temp") + "/"),
       "logs": php_str(os.path.join(self.dir, "logs") + "/"),
       "mime": php_str(os.path.join(cfg, "mimetypes.php"))}
        with open(os.path.join(cfg, "config.inc.php"), "w") as f:
            f.write(text)

    def start(self, timeout=30):
        self.write_config()
        self.port = free_port()
        # ROUNDCUBE_CONFIG_DIR (Debian's iniset.php) replaces /etc/roundcube as the config dir.
        env = dict(os.environ, ROUNDCUBE_CONFIG_DIR=os.path.join(self.dir, "config"))
        env.pop("RCUBE_CONFIG_PATH", None)
        self.log = open(os.path.join(self.dir, "logs", "php-server.log"), "w")
        self.proc = subprocess.Popen(
            ["php", "-d", "upload_max_filesize=5M", "-d", "post_max_size=6M",
             "-S", "127.0.0.1:%d" % self.port, "-t", RC_ROOT],
            cwd=RC_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("php -S exited: %d" % self.proc.returncode)
                time.sleep(0.1)
        raise RuntimeError("php -S did not listen")

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def read_logs(self):
        out = {}
        for name in ("imap.log", "smtp.log", "errors.log"):
            p = os.path.join(self.dir, "logs", name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out[name] = f.read()
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None:
            self.log.close()
