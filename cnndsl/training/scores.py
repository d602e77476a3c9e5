"""Per-class precision, recall and F1 of a set of predictions, as scikit-learn's
`precision_recall_fscore_support` counts them (a class never predicted has precision 0, one never
present recall 0), and the compact table the run prints at its end."""

from __future__ import annotations

from cnndsl.errors import printable

WORST = 5  # classes listed past MANY classes, by their F1
MANY = 20


def per_class(truth, predicted, classes: list[str]) -> dict:
    """{"per_class": {class: {precision, recall, f1, support}}, "macro": {precision, recall, f1}}."""
    import torch

    n = len(classes)
    truth, predicted = truth.cpu().long(), predicted.cpu().long()
    hits = torch.bincount(truth[truth == predicted], minlength=n).tolist()
    support = torch.bincount(truth, minlength=n).tolist()
    guessed = torch.bincount(predicted, minlength=n).tolist()
    table = {}
    for c, name in enumerate(classes):
        precision = hits[c] / guessed[c] if guessed[c] else 0.0
        recall = hits[c] / support[c] if support[c] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[name] = {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
                       "support": support[c]}
    macro = {key: round(sum(row[key] for row in table.values()) / max(1, n), 6)
             for key in ("precision", "recall", "f1")}
    return {"per_class": table, "macro": macro}


def lines(scores: dict) -> list[str]:
    """Every class up to MANY classes; past that, the macro averages and the WORST classes by F1."""
    table = scores["per_class"]
    rows = list(table.items()) if len(table) <= MANY else sorted(table.items(), key=lambda kv: kv[1]["f1"])[:WORST]
    shown = [(printable(name, False), row) for name, row in rows]  # a class is a folder's name: any text
    width = max([len("class"), len("macro average")] + [len(name) for name, _ in shown])
    head = (f"test set per class ({len(table)} classes)" if len(table) <= MANY
            else f"test set: {len(table)} classes, the {WORST} with the lowest F1")
    out = [head, f"  {'class':<{width}}  precision  recall      f1  support"]
    for name, row in shown:
        out.append(f"  {name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  "
                   f"{row['support']:7d}")
    m, total = scores["macro"], sum(row["support"] for row in table.values())
    out.append(f"  {'macro average':<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}  "
               f"{total:7d}")
    return out
