"""Helpers shared by the benchmark scripts (bench/<name>/bench).

A benchmark is an executable called as

    bench/<name>/bench --env ENV_FILE --system tern|peer [its own options]

where ENV_FILE is devstack's stack.env or the peer's peer.env (the same TERN_* variables).
It prints one JSON object per line on stdout:

    {"name": "<name>", "system": "tern"|"peer", "metric": "...", "value": <number>|null,
     "unit": "...", "better": "higher"|"lower"}

and anything for humans on stderr. A null value with a "skipped" reason means the system
cannot run this benchmark yet (e.g. a tern daemon that is not built).
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time


def parse_args(name, description, add_options=None):
    parser = argparse.ArgumentParser(prog="bench/%s/bench" % name, description=description)
    parser.add_argument("--env", required=True, help="stack.env or peer.env")
    parser.add_argument("--system", required=True, choices=["tern", "peer"])
    if add_options:
        add_options(parser)
    return parser.parse_args()


def load_env(path):
    """The TERN_* assignments of a file written by devstack or the peer script."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            words = shlex.split(value)
            env[key] = words[0] if words else ""
    return env


def users(env):
    """[(login, password)] from TERN_USERS."""
    out = []
    for item in env.get("TERN_USERS", "").split():
        login, _, password = item.partition(":")
        out.append((login, password))
    return out


def daemons(env):
    return set(env.get("TERN_DAEMONS", "").split())


def emit(name, system, metric, value, unit="", better="higher", **extra):
    row = {"name": name, "system": system, "metric": metric, "value": value, "unit": unit,
           "better": better}
    row.update(extra)
    print(json.dumps(row), flush=True)


def note(msg):
    print(msg, file=sys.stderr, flush=True)


def maildir_count(mail_root, address):
    """Messages in new/ and cur/ of <mail_root>/<domain>/<user>/ (the INBOX)."""
    user, _, domain = address.partition("@")
    total = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(os.path.join(mail_root, domain, user, sub)) as it:
                total += sum(1 for _ in it)
        except FileNotFoundError:
            pass
    return total


def wait_for_count(mail_root, address, target, timeout, interval=0.01):
    """Polls until the INBOX holds target messages; returns (count, time it was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        n = maildir_count(mail_root, address)
        now = time.monotonic()
        if n >= target or now > deadline:
            return n, now
        time.sleep(interval)


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


def median(values):
    return statistics.median(values) if values else None
