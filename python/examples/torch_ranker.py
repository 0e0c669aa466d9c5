"""Train your own ranker for qianmian in PyTorch and export it as TorchScript: a template.

The loop (Debian: python3-torch, python3-numpy):

    Q=build/tools/qianmian
    $Q export rank-rows --data BANK --artifacts ART --out rows/        # or --out rows.csv
    PYTHONPATH=python /usr/bin/python3 python/examples/torch_ranker.py rows/ ranker.pt --epochs 3
    $Q import ranker ranker.pt --artifacts ART                         # a new version, CURRENT

`export rank-rows` writes the rows the built-in ranker learns from, for the version CURRENT
names (or --version): one row per logged exposure (an impression, a push send), its inputs as
the engine builds them when it serves, its labels (clicked or opened; converted) and a weight
(1, or 1/keep for a kept unclicked exposure when [training] negative_keep downsamples them),
and `held_out` = 1 for the exposures of the split's held-out period (use them to validate).

The input contract (rank/include/qianmian/rank/rank_features.h; the version's rank_inputs.json,
repeated in the rows' layout.json):

    forward(cat: Long[n, C], dense: Float[n, K], bag: Long[n, B]) -> Float[n, 2]

returning (p_click, p_convert), probabilities in [0, 1]. `cat` holds the customer's categorical
fields, the item's id, kind, category, risk and service flag, then channel, local hour and
weekday; column j takes ids in [0, cat_vocab[j]) (`qianmian.data.rank_layout`). `dense` holds
the customer's numeric features, the two-tower score u.v, the product u*v and contact counts.
`bag` holds the customer's labels and the item's tags (one id space, 0 = padding). The model
must accept every id of the version's vocabularies: `import ranker` probes it with each
column's largest id and refuses it otherwise, so size the embedding tables from the layout as
below. Anything inside forward is yours: this template is a small embedding + MLP network.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from qianmian import data  # noqa: E402


class Ranker(torch.nn.Module):
    """Embeddings of every categorical column (one table, offset per column) and of the bag
    (summed), the standardised dense columns, then an MLP with two sigmoid outputs."""

    def __init__(self, cat_vocab, bag_vocab, dense_mean, dense_std, dim=8, hidden=64):
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(cat_vocab)[:-1]]).astype(np.int64)
        self.register_buffer("offsets", torch.from_numpy(offsets))
        self.register_buffer("mean", torch.from_numpy(dense_mean.astype(np.float32)))
        self.register_buffer("std", torch.from_numpy(dense_std.astype(np.float32)))
        self.cat_emb = torch.nn.Embedding(int(np.sum(cat_vocab)), dim)
        self.bag_emb = torch.nn.Embedding(int(bag_vocab), dim, padding_idx=0)
        width = len(cat_vocab) * dim + dim + len(dense_mean)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden // 2), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden // 2, 2))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        e = self.cat_emb(cat + self.offsets).flatten(1)
        b = self.bag_emb(bag).sum(1)
        d = (dense - self.mean) / self.std
        return torch.sigmoid(self.mlp(torch.cat([e, b, d], 1)))


def auc(scores, labels):
    """Area under the ROC curve (ties averaged); NaN without both classes."""
    labels = labels.astype(bool)
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def tensors(rows, mask):
    """The model's inputs, labels and weights of the rows selected by `mask`."""
    return (torch.from_numpy(rows["cat"][mask]), torch.from_numpy(rows["dense"][mask]),
            torch.from_numpy(rows["bag"][mask]), torch.from_numpy(rows["labels"][mask]),
            torch.from_numpy(rows["weight"][mask]))


def train(model, train_set, epochs, batch_size, lr, seed):
    """Weighted binary cross-entropy on both outputs (click, convert), Adam."""
    cat, dense, bag, labels, weight = train_set
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(cat), generator=gen)
        total = 0.0
        for lo in range(0, len(cat), batch_size):
            idx = order[lo:lo + batch_size]
            p = model(cat[idx], dense[idx], bag[idx]).clamp(1e-6, 1 - 1e-6)
            loss = (torch.nn.functional.binary_cross_entropy(p, labels[idx], reduction="none").sum(1) *
                    weight[idx]).sum() / weight[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch + 1}: loss {total / len(cat):.4f}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", help="output of `qianmian export rank-rows` (a folder, or FILE.csv)")
    parser.add_argument("out", help="the TorchScript file to write (for `qianmian import ranker`)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    rows = data.read_rank_rows(args.rows)
    layout = data.rank_layout(rows["layout"])
    fit = rows["held_out"] == 0
    if not fit.any():
        sys.exit("torch_ranker: no rows before the split to train on")
    std = rows["dense"][fit].std(0)
    model = Ranker(layout["cat_vocab"], layout["bag_vocab"], rows["dense"][fit].mean(0), np.where(std > 0, std, 1),
                   dim=args.dim, hidden=args.hidden)
    train(model, tensors(rows, fit), args.epochs, args.batch_size, args.lr, args.seed)

    model.eval()
    scripted = torch.jit.script(model)
    scripted.save(args.out)
    held = ~fit
    summary = {"rows": int(fit.sum()), "held_out_rows": int(held.sum()), "out": args.out}
    if held.any():
        with torch.no_grad():
            cat, dense, bag, labels, _ = tensors(rows, held)
            p = torch.jit.load(args.out)(cat, dense, bag).numpy()  # the saved module, as qianmian loads it
        summary["held_out_click_auc"] = auc(p[:, 0], labels[:, 0].numpy())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
