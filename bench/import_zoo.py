"""Imports torchvision's classification zoo and a set of timm CNNs with `cnndsl.from_module`: for each model,
whether it imported, whether `check`'s params and MACs equal the model's (sum of numel; FlopCounterMode / 2),
whether the built spec with the model's weights gives bit-identical outputs in eval mode, and the lines of the
spec against those of the model's source file.

Run in the benchmark environment (torch 2.14.1, torchvision 0.29.1, timm; bench/README.md):

    PYTHONPATH=. /tmp/benchenv/bin/python bench/import_zoo.py [--size 64] [--only resnet50,vgg16] [--out FILE.md]

Models are imported at --size (64 by default, so that the zoo's checks run on a 2-core machine in minutes:
the figures compared are those at that size), the transformers at 224 (their only size) and Inception v3 at
128 (it needs 75). An exception is a row, not the end of the run. Weights are random (weights=None): every
batchnorm's statistics are drawn away from 0 and 1 first, so that a swapped tensor shows.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

TIMM = ["resnet18", "resnet50d", "seresnet50", "resnext26ts", "efficientnet_b0", "mobilenetv3_large_100",
        "regnety_016", "densenet121", "dpn68", "ghostnet_100", "repvgg_a2", "rexnet_100", "dla34", "hrnet_w18_small"]
BIG = {"regnet_y_128gf", "vit_h_14", "efficientnet_b7", "regnet_y_32gf", "vit_l_16", "vit_l_32"}


def make(name: str):
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[5:], pretrained=False)
    import torchvision

    return torchvision.models.get_model(name, weights=None)


def one(name: str, size: int) -> dict:
    """The row of one model (run in a child process)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    import cnndsl

    torch.manual_seed(0)
    model = make(name).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    size = 128 if "inception" in name else 224 if name.split("_")[0] in ("vit", "swin", "maxvit") else size
    shape = (3, size, size)
    row = {"model": name, "source_lines": _source_lines(model), "params": sum(p.numel() for p in model.parameters())}
    start = time.perf_counter()
    try:
        imported = cnndsl.from_module(model, shape)
    except cnndsl.CnnError as e:
        marks = [line.strip()[2:] for line in e.message.splitlines() if line.strip().startswith("✗")]
        row.update(imported=False, why=sorted(set(marks))[:3] or [e.message.splitlines()[0][:120]])
        return row
    row["seconds"] = round(time.perf_counter() - start, 2)
    row["spec_lines"] = sum(1 for line in imported.text.splitlines() if line.strip() and not line.startswith("#"))
    spec = cnndsl.loads(imported.text)
    report = spec.check()
    # attention is counted whole only off MultiheadAttention's fused eval path (taken without grad) and on SDPA's
    # math path, where its two products are bmm calls
    attention = any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(attention), \
            sdpa_kernel(SDPBackend.MATH):
        model(torch.zeros(1, *shape))
    unused = tuple(u + "." for u in imported.unused)
    used = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(unused))
    row.update(imported=True, spec_params=report.params, spec_macs=report.macs, macs=counter.get_total_flops() // 2,
               unused=imported.unused)
    row["exact"] = report.params == used and report.macs == row["macs"]
    built = spec.build().eval()
    cnndsl.load_weights(built, imported.state_dict(model.state_dict()))
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ours, theirs = built(x), model(x)
    row["identical"] = bool(torch.equal(ours, theirs))
    row["difference"] = float((ours - theirs).abs().max())
    return row


def _source_lines(model) -> int:
    try:
        return len(Path(inspect.getsourcefile(type(model))).read_text().splitlines())
    except (TypeError, OSError):
        return 0


def table(rows: list[dict]) -> str:
    out = ["| model | imported | params, MACs exact | bit-identical | spec lines | source file lines | import s |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("imported"):
            same = "yes" if r["identical"] else f"no ({r['difference']:.2g})"
            out.append(f"| {r['model']} | yes | {'yes' if r['exact'] else 'no'} | {same} | {r['spec_lines']} | "
                       f"{r['source_lines']} | {r['seconds']} |")
        else:
            why = "; ".join(r.get("why", ["?"]))[:110].replace("|", "/")
            out.append(f"| {r['model']} | no: {why} | | | | {r['source_lines']} | |")
    good = [r for r in rows if r.get("imported") and r["exact"] and r["identical"]]
    out.append(f"\n{len(good)} of {len(rows)} exact and bit-identical.")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--only", help="comma-separated model names (timm's as timm:NAME)")
    p.add_argument("--skip-big", action="store_true", help=f"leave out {', '.join(sorted(BIG))}")
    p.add_argument("--out", help="write the Markdown table here too")
    args = p.parse_args()
    if args.only:
        names = args.only.split(",")
    else:
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models) + [f"timm:{n}" for n in TIMM]
    if args.skip_big:
        names = [n for n in names if n not in BIG]
    rows = []
    for name in names:
        try:
            row = one(name, args.size)
        except Exception as e:  # noqa: BLE001 - a model the importer or the checks fail on is a row
            row = {"model": name, "imported": False, "why": [f"{type(e).__name__}: {e}"[:110]], "source_lines": 0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    text = table(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
