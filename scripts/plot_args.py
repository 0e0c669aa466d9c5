"""Shared by the plot scripts (tooling only): their command line of --out, options and
LABEL=PATH arguments, and matplotlib's pyplot without a display."""
import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported)


def parse(prog, doc, name, form, options=()):
    """Returns (args, [(label, path), ...]); exits naming any argument that is not `form`."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    ap.add_argument("--out", required=True)
    for flag, default in options:
        ap.add_argument(flag, default=default)
    ap.add_argument(name, nargs="+", help=form)
    a = ap.parse_args()
    pairs = []
    for item in getattr(a, name):
        if "=" not in item:
            sys.exit(f"{prog}: '{item}' is not {form}")
        pairs.append(tuple(item.split("=", 1)))
    return a, pairs
