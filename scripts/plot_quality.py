#!/usr/bin/python3
"""Quality versus the oracle and the baselines, from artifact manifests (docs/BENCHMARKS.md).

    python3 scripts/plot_quality.py --out docs/img/quality.png \
        "generated 20k bank=/tmp/art20k" "MovieLens-100k=/tmp/art-ml"

Each argument is LABEL=ARTIFACT_ROOT (or a MANIFEST.json); the version CURRENT names is read.
Plots Recall@20 of every system the manifest's metrics hold (two-stage, retrieval, EASE,
item-kNN, popularity, and on generated data the planted oracle and the history and attribute
oracles). Tooling only: the numbers
come from `qianmian train`/`eval`, which wrote them into the manifest.
"""
import json
import os

from plot_args import parse, plt

SYSTEMS = [("oracle", "oracle (planted truth)"),
           ("history_oracle", "history oracle (a model's bound)"), ("attribute_oracle", "attribute oracle"),
           ("two_stage", "two-stage (qianmian)"),
           ("retrieval", "retrieval alone"), ("ease", "EASE"), ("item_knn", "item-kNN"),
           ("popularity", "popularity")]


def load(path):
    if os.path.isdir(path):
        with open(os.path.join(path, "CURRENT")) as f:
            path = os.path.join(path, f.read().strip(), "MANIFEST.json")
    with open(path) as f:
        return json.load(f)["metrics"]


def main():
    a, pairs = parse("plot_quality", __doc__, "sets", "LABEL=ARTIFACT_ROOT", [("--metric", "recall@20")])
    sets = [(label, load(path)) for label, path in pairs]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 3.8), squeeze=False)
    for ax, (label, m) in zip(axes[0], sets):
        names, values, colors = [], [], []
        for key, name in SYSTEMS:
            v = m.get(f"{key}.{a.metric}")
            if v is None:
                continue
            names.append(name)
            values.append(v)
            colors.append("#c0392b" if key == "two_stage" else "#7f8c8d" if key.endswith("oracle") else "#2980b9")
        y = range(len(names))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, max(values) * 1.25)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(a.metric.replace("recall", "Recall").replace("ndcg", "NDCG"))
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"plot_quality: wrote {a.out}")


if __name__ == "__main__":
    main()
