"""Trained weights at work: `cnndsl eval` on a dataset's test split, `cnndsl predict` on image files."""

from __future__ import annotations

from pathlib import Path

from cnndsl.errors import CnnError
from cnndsl.train.data import adapt, apply_normalization, load_dataset
from cnndsl.train.loop import pick_device, run_epoch, scores


def _model(spec, weights, device):
    from cnndsl.weights import load_weights, read_state_dict

    model = spec.build()
    load_weights(model, read_state_dict(weights))
    model.to(device).eval()
    return model, scores(model)


def evaluate(spec, weights, data: str = "digits", seed: int = 0, batch_size: int = 256, device: str = "auto"):
    """(test loss, test accuracy) of the weights on the dataset's test split."""
    import torch

    dev = pick_device(device)
    report = spec.check()
    dataset = load_dataset(data, report.input, seed)
    _, forward = _model(spec, weights, dev)
    split = dataset.test
    split.x = apply_normalization(split.x, _saved(weights).get("normalization") or {})
    split.x, split.y = split.x.to(dev), split.y.to(dev)
    return run_epoch(forward, split, batch_size, torch.nn.CrossEntropyLoss())


def predict(spec, weights, images: list[str], top: int = 3, device: str = "auto") -> list[list[tuple[str, float]]]:
    """The `top` classes of each image file, with their probabilities."""
    import torch

    dev = pick_device(device)
    report = spec.check()
    classes = _classes(weights, report.output[0])
    _, forward = _model(spec, weights, dev)
    x = torch.cat([_read_image(Path(p), report.input) for p in images])
    x = apply_normalization(x, _saved(weights).get("normalization") or {}).to(dev)
    with torch.no_grad():
        probs = torch.softmax(forward(x), dim=1)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    return [[(classes[int(i)], float(p)) for p, i in zip(ps, idx)] for ps, idx in zip(best.values, best.indices)]


def _saved(weights) -> dict:
    """What a cnndsl checkpoint saved beside the weights (class names, normalisation); {} otherwise."""
    from cnndsl.weights import read_state_dict

    if isinstance(weights, (str, Path)) and Path(weights).suffix == ".pt":
        import torch

        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:
            read_state_dict(weights)  # raises the error that names the bad file
            raise
        if isinstance(state, dict) and "model" in state:
            return state
    return {}


def _classes(weights, outputs: int) -> list[str]:
    classes = _saved(weights).get("classes", [])
    return list(classes) if len(classes) == outputs else [str(i) for i in range(outputs)]


def _read_image(path: Path, shape: tuple[int, ...]):
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = len(shape) == 1 or shape[0] == 1
            pixels = image.convert("L" if grey else "RGB")
            data = torch.frombuffer(bytearray(pixels.tobytes()), dtype=torch.uint8)
            x = data.reshape(pixels.height, pixels.width, -1).permute(2, 0, 1).float() / 255.0
    except FileNotFoundError:
        raise CnnError(f"no such image: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise CnnError(f"cannot read {path} as an image: {e}") from None
    adapted, _ = adapt(x.unsqueeze(0), shape)
    return adapted
