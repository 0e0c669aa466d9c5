"""Shared by the tests that talk to a real `qianmian serve` (started by
tests/blackbox/python_test.sh, which passes it in the environment): QM_ENDPOINT, QM_BIN (the
qianmian binary), QM_DATA (the bank), QM_ARTIFACTS (the artifact root), QM_CONFIG (the
server's --config, with one experiment layer QM_LAYER), QM_WORK (a scratch folder)."""

import csv
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)

import qianmian  # noqa: E402

ENV = {k: os.environ.get(k) for k in ("QM_ENDPOINT", "QM_BIN", "QM_DATA", "QM_ARTIFACTS", "QM_CONFIG", "QM_LAYER",
                                      "QM_WORK")}
SCHEMAS = os.path.join(HERE, "..", "..", "docs", "protocol")


def needs_server(cls):
    """Skips a TestCase class when no server was given (run outside python_test.sh)."""
    missing = [k for k, v in ENV.items() if not v]
    return unittest.skipIf(missing, f"no live server ({', '.join(missing)} unset)")(cls)


def client(**options):
    """A client of the live server."""
    options.setdefault("timeout_ms", 20000)
    return qianmian.Client(ENV["QM_ENDPOINT"], **options)


def qm(*args):
    """Runs the qianmian binary; returns its stdout; fails the test with stderr on error."""
    done = subprocess.run([ENV["QM_BIN"], *args], capture_output=True, text=True,
                          env={**os.environ, "QM_PROGRESS": "0"})
    if done.returncode != 0:
        raise AssertionError(f"qianmian {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def bank_rows(name):
    """The rows of a bank file (customers.csv, items.csv) as dicts."""
    with open(os.path.join(ENV["QM_DATA"], name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def current_version():
    """The version CURRENT names."""
    with open(os.path.join(ENV["QM_ARTIFACTS"], "CURRENT"), encoding="utf-8") as f:
        return f.read().strip()
