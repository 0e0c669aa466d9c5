"""Readers for what qianmian writes, for notebooks: a version's ``MANIFEST.json`` and
``rank_inputs.json``, and the CSV exports of ``qianmian export decisions|events`` and the JSON
of ``qianmian report --json`` (or the ``report`` op's reply), as numpy arrays.

Tables are returned as ``dict`` of column name -> 1-D numpy array (``pandas.DataFrame(table)``
makes a frame of one). numpy is needed only by these helpers, not by the client.
"""

import csv
import hashlib
import json
import math
import os

# Column types of the CSV exports (tools/src/export.cc); every other column is text.
DECISION_INTS = ("ts_ms", "position")
DECISION_FLOATS = ("score", "p_click", "p_convert")
DECISION_LISTS = ("arms", "reasons")
EVENT_INTS = ("ts_ms", "service")

# The effect report's metrics (experiment/src/report.cc), in its order.
REPORT_METRICS = ("contacts", "clicks", "conversions", "value", "dismissals", "opens", "ghosts", "opt_outs")


def _numpy():
    """numpy, or an ImportError that says how to get it."""
    try:
        import numpy
    except ImportError:
        raise ImportError("the qianmian.data helpers need numpy (Debian: apt-get install python3-numpy)") from None
    return numpy


# -- artifact versions ----------------------------------------------------------------------------


def version_dir(artifacts, version=None):
    """The folder of ``version`` under the artifact root ``artifacts`` (default: the one
    ``CURRENT`` names). FileNotFoundError names what is missing."""
    if version is None:
        current = os.path.join(artifacts, "CURRENT")
        if not os.path.isfile(current):
            raise FileNotFoundError(f"{current}: no CURRENT file (is {artifacts!r} an artifact root?)")
        with open(current, encoding="utf-8") as f:
            version = f.read().strip()
    path = os.path.join(artifacts, version)
    if not os.path.isfile(os.path.join(path, "MANIFEST.json")):
        raise FileNotFoundError(f"{path}: no MANIFEST.json (not a version of {artifacts!r})")
    return path


def read_manifest(artifacts, version=None):
    """A version's MANIFEST.json as a dict (version, created_ms, data_fingerprint, config,
    metrics, files)."""
    with open(os.path.join(version_dir(artifacts, version), "MANIFEST.json"), encoding="utf-8") as f:
        return json.load(f)


def manifest_metrics(manifest):
    """The manifest's numeric metrics as (names, values): a list of names and a float64 array."""
    np = _numpy()
    names = sorted(k for k, v in manifest.get("metrics", {}).items() if isinstance(v, (int, float)))
    return names, np.array([float(manifest["metrics"][k]) for k in names], dtype=np.float64)


def manifest_files(manifest):
    """The manifest's file list as columns: ``path`` (str), ``size`` (int64), ``sha256`` (str)."""
    np = _numpy()
    files = manifest.get("files", [])
    return {
        "path": np.array([f["path"] for f in files], dtype=object),
        "size": np.array([int(f["size"]) for f in files], dtype=np.int64),
        "sha256": np.array([f["sha256"] for f in files], dtype=object),
    }


def verify_version(artifacts, version=None):
    """Checks every file of a version against its manifest's size and SHA-256, as the server
    does before serving it. Returns the list of problems (empty: the bundle verifies)."""
    path = version_dir(artifacts, version)
    problems = []
    for entry in read_manifest(artifacts, version).get("files", []):
        name = os.path.join(path, entry["path"])
        if not os.path.isfile(name):
            problems.append(f"{entry['path']}: missing")
            continue
        if os.path.getsize(name) != int(entry["size"]):
            problems.append(f"{entry['path']}: size {os.path.getsize(name)}, manifest says {entry['size']}")
            continue
        digest = hashlib.sha256()
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: SHA-256 differs from the manifest")
    return problems


def read_rank_inputs(artifacts, version=None):
    """A version's rank_inputs.json (the ranker's input contract: sizes C, K, B and the
    widths of each column group) as a dict."""
    with open(os.path.join(version_dir(artifacts, version), "rank_inputs.json"), encoding="utf-8") as f:
        return json.load(f)


def rank_layout(rank_inputs):
    """The column layout of the ranker's three inputs (rank/include/qianmian/rank/rank_features.h):
    ``{"cat": [(group, begin, end)], "dense": [...], "bag": [...]}`` with half-open column
    ranges, and ``"cat_vocab"``: an int64 array of length C, the exclusive upper bound of each
    categorical column's ids (an embedding table's size). ValueError when the groups do not add
    up to C / K."""
    np = _numpy()
    cat, dense = rank_inputs["cat"], rank_inputs["dense"]
    cat_groups = [("customer", cat["customer_fields"], cat["customer_vocab"]),
                  ("item_id", 1, cat["item_id_vocab"]),
                  ("item", cat["item_fields"] - 1, cat["item_cat_vocab"])]
    cat_groups += [(name, 1, cat["context"][name]) for name in ("channel", "hour", "weekday")]
    dense_groups = [(name, dense[name]) for name in ("customer_dense", "two_tower_dot", "two_tower_product",
                                                     "contact")]
    layout = {"cat": [], "dense": [], "bag": [("labels_and_tags", 0, int(rank_inputs["B"]))]}
    vocab = []
    at = 0
    for name, width, size in cat_groups:
        layout["cat"].append((name, at, at + width))
        vocab += [size] * width
        at += width
    if at != rank_inputs["C"]:
        raise ValueError(f"rank_inputs.json: the categorical groups add up to {at} columns, C = {rank_inputs['C']}")
    at = 0
    for name, width in dense_groups:
        layout["dense"].append((name, at, at + width))
        at += width
    if at != rank_inputs["K"]:
        raise ValueError(f"rank_inputs.json: the dense groups add up to {at} columns, K = {rank_inputs['K']}")
    layout["cat_vocab"] = np.array(vocab, dtype=np.int64)
    layout["bag_vocab"] = int(rank_inputs["bag"]["vocab"])
    return layout


def read_rank_rows(path):
    """The output of ``qianmian export rank-rows``: a folder of .npy files, or a CSV file with
    its ``.layout.json``. Returns ``{"cat": int64 [n, C], "dense": float32 [n, K], "bag": int64
    [n, B], "labels": float32 [n, 2] (click, convert), "weight": float32 [n], "held_out": uint8
    [n], "layout": dict}``; the layout is the version's rank_inputs.json plus row counts, so
    :func:`rank_layout` reads it. ValueError when the arrays disagree with the layout."""
    np = _numpy()
    if str(path).endswith(".csv"):
        with open(f"{path}.layout.json", encoding="utf-8") as f:
            layout = json.load(f)
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
        C, K, B = layout["C"], layout["K"], layout["B"]
        rows = {"cat": table[:, :C].astype(np.int64), "dense": table[:, C:C + K].astype(np.float32),
                "bag": table[:, C + K:C + K + B].astype(np.int64),
                "labels": table[:, C + K + B:C + K + B + 2].astype(np.float32),
                "weight": table[:, C + K + B + 2].astype(np.float32),
                "held_out": table[:, C + K + B + 3].astype(np.uint8)}
    else:
        with open(os.path.join(path, "layout.json"), encoding="utf-8") as f:
            layout = json.load(f)
        rows = {name: np.load(os.path.join(path, f"{name}.npy"))
                for name in ("cat", "dense", "bag", "labels", "weight", "held_out")}
    n = layout["rows"]
    expected = {"cat": (n, layout["C"]), "dense": (n, layout["K"]), "bag": (n, layout["B"]), "labels": (n, 2),
                "weight": (n,), "held_out": (n,)}
    for name, shape in expected.items():
        if rows[name].shape != shape:
            raise ValueError(f"{path}: {name} has shape {rows[name].shape}, the layout says {shape}")
    rows["layout"] = layout
    return rows


# -- CSV exports ------------------------------------------------------------------------------------


def _read_csv(path, ints=(), floats=(), lists=(), required=()):
    """A CSV file with a header as columns: ints as int64, floats as float64 (empty = NaN),
    lists (``;``-separated) as object arrays of lists, the rest as object arrays of str."""
    np = _numpy()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file (expected a header row)")
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
        columns = {name: [] for name in header}
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
            for name, cell in zip(header, row):
                columns[name].append(cell)
    return {name: _column(np, path, name, cells, ints, floats, lists) for name, cells in columns.items()}


def _column(np, path, name, cells, ints, floats, lists):
    """One CSV column converted by its kind."""
    try:
        if name in ints:
            return np.array([int(c) for c in cells], dtype=np.int64)
        if name in floats:
            return np.array([float(c) if c != "" else math.nan for c in cells], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: column {name!r}: {e}") from None
    out = np.empty(len(cells), dtype=object)
    for i, c in enumerate(cells):
        out[i] = ([p for p in c.split(";") if p] if name in lists else c)
    return out


def read_decisions_csv(path):
    """``qianmian export decisions`` output: ts_ms, position (int64); score, p_click, p_convert
    (float64); arms, reasons (lists); time, kind, request_id, customer_id, channel, item_id,
    model_version (str)."""
    return _read_csv(path, DECISION_INTS, DECISION_FLOATS, DECISION_LISTS,
                     required=("ts_ms", "kind", "customer_id", "item_id", "score"))


def read_events_csv(path):
    """``qianmian export events`` output: ts_ms, service (int64); time, customer_id, item_id,
    type, channel, request_id, campaign, category (str)."""
    return _read_csv(path, EVENT_INTS, required=("ts_ms", "customer_id", "item_id", "type", "channel"))


# -- effect reports ---------------------------------------------------------------------------------


def read_report(source):
    """An effect report (the file of ``qianmian report --json``, or the ``report`` op's reply
    dict) as arrays over arms x metrics (REPORT_METRICS order): ``arms`` (names), ``metrics``,
    ``control`` (bool), ``assigned``/``contacted``/``ghosted`` (int64 per arm), and float64
    [arms, metrics] arrays ``total``, ``per_customer``, ``low``, ``high``, ``lift``,
    ``lift_low``, ``lift_high``, ``lift_p_value`` (NaN where the report has no value, e.g. the
    control arm's lift in the file), plus ``sample_ratio`` (the dict as given)."""
    np = _numpy()
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as f:
            source = json.load(f)
    arms = source.get("arms") or []
    shape = (len(arms), len(REPORT_METRICS))
    out = {k: np.full(shape, math.nan) for k in ("total", "per_customer", "low", "high", "lift", "lift_low",
                                                  "lift_high", "lift_p_value")}
    for a, arm in enumerate(arms):
        for m, metric in enumerate(REPORT_METRICS):
            _fill_metric(out, a, m, arm.get("metrics", {}).get(metric))
    out["arms"] = np.array([a["arm"] for a in arms], dtype=object)
    out["metrics"] = REPORT_METRICS
    out["control"] = np.array([bool(a.get("control")) for a in arms], dtype=bool)
    for key in ("assigned", "contacted", "ghosted"):
        out[key] = np.array([int(a.get(key, 0)) for a in arms], dtype=np.int64)
    out["sample_ratio"] = source.get("sample_ratio", {})
    return out


def _fill_metric(out, a, m, metric):
    """Copies one arm's metric map into row a, column m of the arrays (None stays NaN)."""
    if not metric:
        return
    pairs = [("total", metric.get("total")), ("per_customer", metric.get("per_customer")),
             ("low", metric.get("low")), ("high", metric.get("high"))]
    lift = metric.get("lift") or {}
    pairs += [("lift", lift.get("difference")), ("lift_low", lift.get("low")), ("lift_high", lift.get("high")),
              ("lift_p_value", lift.get("p_value"))]
    for key, value in pairs:
        if value is not None:
            out[key][a, m] = float(value)
