"""The built ternctl against real files: `config`, `config -n`, a broken file, includes,
and the exit codes from sysexits.h (EX_USAGE 64, EX_CONFIG 78)."""
import os
import subprocess
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("TERN_BUILD_DIR", "build"))
TERNCTL = BUILD / "ternctl" / "ternctl"

EX_OK, EX_USAGE, EX_CONFIG = 0, 64, 78


def ternctl(*args, env_conf=None):
    env = {k: v for k, v in os.environ.items() if k != "TERN_CONF"}
    if env_conf is not None:
        env["TERN_CONF"] = str(env_conf)
    return subprocess.run([str(TERNCTL), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=30, check=False)


@pytest.fixture(autouse=True)
def need_binary():
    if not TERNCTL.exists():
        pytest.fail(f"{TERNCTL} is not built")


def test_full_dump_loads_back_with_same_values(tmp_path):
    conf = tmp_path / "tern.conf"
    conf.write_text("run_dir = /tmp/it-run\r\nlog_debug = on\r\n"
                    "mynetworks = 10.0.0.0/8,\r\n  192.168.0.0/16\r\n")
    first = ternctl("-c", conf, "config")
    assert first.returncode == EX_OK, first.stderr
    assert first.stderr == ""
    assert "\nrun_dir = /tmp/it-run\n" in first.stdout
    assert "\nmynetworks = 10.0.0.0/8 192.168.0.0/16\n" in first.stdout
    # $run_dir in the defaults of other keys follows the new value.
    assert "\n[authd]\nauth_socket = /tmp/it-run/auth\n" in first.stdout
    dumped = tmp_path / "dumped.conf"
    dumped.write_text(first.stdout)
    second = ternctl("-c", dumped, "config")
    assert second.returncode == EX_OK, second.stderr
    assert second.stdout == first.stdout


def test_only_changed(tmp_path):
    conf = tmp_path / "tern.conf"
    conf.write_text("# a comment\nrun_dir = /tmp/it-run\nlog_debug = no\n"
                    "shutdown_timeout = 60s\n[authd]\nauth_socket_mode = 0600\n")
    r = ternctl("-c", conf, "config", "-n")
    assert r.returncode == EX_OK, r.stderr
    # log_debug = no is the default, so -n leaves it out; 60s is printed as 1m.
    assert r.stdout == ("run_dir = /tmp/it-run\nshutdown_timeout = 1m\n\n"
                        "[authd]\nauth_socket_mode = 0600\n")


def test_empty_file_is_all_defaults(tmp_path):
    conf = tmp_path / "tern.conf"
    conf.write_text("")
    assert ternctl("-c", conf, "config", "-n").stdout == ""
    full = ternctl("-c", conf, "config")
    assert full.returncode == EX_OK
    assert "\nrun_dir = /run/tern\n" in full.stdout


@pytest.mark.parametrize("text, line, problem", [
    ("log_debug = yes\nbogus = 1\n", 2, "unknown key 'bogus' in [global]"),
    ("log_debug = maybe\n", 1, "log_debug: 'maybe' is not a boolean"),
    ("[nosuch]\n", 1, "unknown section [nosuch]"),
    ("run_dir = /a\n\nrun_dir = /b\n", 3, "duplicate key 'run_dir'"),
    ("hostname = $nothere\n", 1, "undefined name $nothere"),
    ("shutdown_timeout = 2d\n", 1, "out of range"),
    ("config_version = 2\n", 1, "'2' is out of range (1..1)"),
])
def test_broken_file(tmp_path, text, line, problem):
    conf = tmp_path / "tern.conf"
    conf.write_text(text)
    r = ternctl("-c", conf, "config")
    assert r.returncode == EX_CONFIG
    assert r.stdout == ""
    assert r.stderr.startswith(f"ternctl: {conf}:{line}: "), r.stderr
    assert problem in r.stderr


def test_error_inside_include_names_that_file(tmp_path):
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "10-ok.conf").write_text("log_debug = yes\n")
    (confd / "20-bad.conf").write_text("[authd]\n# mode\nauth_socket_mode = 0999\n")
    conf = tmp_path / "tern.conf"
    conf.write_text("!include conf.d/*.conf\n")
    r = ternctl("-c", conf, "config", "-n")
    assert r.returncode == EX_CONFIG
    assert r.stderr.startswith(f"ternctl: {confd}/20-bad.conf:3: "), r.stderr
    (confd / "20-bad.conf").write_text("[authd]\nauth_socket_mode = 0660\n")
    r = ternctl("-c", conf, "config", "-n")
    assert r.returncode == EX_OK, r.stderr
    assert r.stdout == "log_debug = yes\n\n[authd]\nauth_socket_mode = 0660\n"


def test_tern_conf_env_and_c_override(tmp_path):
    a = tmp_path / "a.conf"
    a.write_text("run_dir = /tmp/from-env\n")
    b = tmp_path / "b.conf"
    b.write_text("run_dir = /tmp/from-c\n")
    assert ternctl("config", "-h", "run_dir", env_conf=a).stdout == "/tmp/from-env\n"
    assert ternctl("-c", b, "config", "-h", "run_dir", env_conf=a).stdout == "/tmp/from-c\n"


def test_missing_file_and_usage(tmp_path):
    r = ternctl("-c", tmp_path / "none.conf", "config")
    assert r.returncode == EX_CONFIG
    assert "cannot open: No such file or directory" in r.stderr
    assert ternctl().returncode == EX_USAGE
    assert ternctl("nosuchcommand").returncode == EX_USAGE
    assert ternctl("config", "--bogus").returncode == EX_USAGE
    h = ternctl("help")
    assert h.returncode == EX_OK
    assert "config" in h.stdout and "help" in h.stdout
