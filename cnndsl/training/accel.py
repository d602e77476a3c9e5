"""Speed where the hardware has it: mixed precision, cudnn's autotuner, torch.compile's needs, pinned copies.

The recipe's keys (`amp`, `compile`, `channels_last`, `data_on_device`) are settled here against the device
once, as the run is set up: a key the device cannot honour is an error that says why, and one it honours only
slowly is a warning, so that nothing fails in the middle of an epoch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from cnndsl.errors import CnnError

COMPILERS = ("c++", "g++", "clang++")  # what torch.compile's inductor needs on the CPU to build its kernels


@dataclass
class Amp:
    """Mixed precision as the run does it: the autocast type (None: off) and, with float16, a GradScaler,
    whose state goes into the checkpoints so that a resumed run scales as the first run would have."""

    dtype: object = None  # torch.bfloat16 or torch.float16
    scaler: object = None  # torch.amp.GradScaler (float16 only: bfloat16 has float32's range)

    @property
    def name(self) -> str:
        import torch

        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self, device):
        import torch

        return torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None)


def amp_for(mode: str | bool, dev, warn=None) -> Amp:
    """The Amp that `amp: MODE` means on `dev`, or an error saying why the device cannot do it. `warn` receives
    a line when the device can but slowly (float16 on the CPU)."""
    import torch

    mode = {False: "off", True: "auto"}.get(mode, mode) if isinstance(mode, bool) else mode
    if mode == "off":
        return Amp()
    bf16 = _has_bf16(dev)
    if mode == "auto":
        mode = "bf16" if bf16 else "fp16"
    if mode == "bf16":
        if not bf16:
            raise CnnError(f"`amp: bf16`: {_name(dev)} has no bfloat16 arithmetic (CUDA needs compute capability 8.0, "
                           "Ampere or newer)", hint="use `amp: fp16` (float16 with a gradient scaler), or `amp: off`")
        return Amp(torch.bfloat16)
    if dev.type == "cpu":
        if not hasattr(torch.amp, "GradScaler") or _torch_below(2, 4):
            raise CnnError("`amp: fp16` on the CPU needs torch 2.4 or newer (float16 autocast and a CPU gradient "
                           f"scaler); this is torch {torch.__version__}", hint="use `amp: bf16` on the CPU")
        if warn:
            warn("`amp: fp16` on the CPU: float16 arithmetic is emulated there and slower than float32; "
                 "`amp: bf16` is the CPU's mixed precision")
    return Amp(torch.float16, torch.amp.GradScaler(dev.type))


def prepare(dev) -> None:
    """Device-wide settings a run wants: cudnn's autotuner on CUDA (it times the convolution algorithms for each
    input shape once and keeps the fastest; the runner's batches have one shape but the last)."""
    import torch

    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True


def check_compile(dev) -> None:
    """torch.compile on the CPU writes C++ kernels: without a compiler it would fail at the first batch, deep
    inside torch. Said now instead."""
    if dev.type == "cpu" and not any(shutil.which(name) for name in COMPILERS):
        raise CnnError("`compile: true` on the CPU needs a C++ compiler (torch.compile builds its CPU kernels with "
                       f"one) and none of {', '.join(COMPILERS)} is on the PATH",
                       hint="install one (e.g. `apt install g++`), or leave `compile` off")


def to_device(tensor, dev):
    """`tensor` (on the CPU) on `dev`: on CUDA through pinned memory and without waiting (non_blocking), so that
    the host goes on queueing work while the copy runs; elsewhere as it is, or copied plainly."""
    if tensor.device == dev:
        return tensor
    if dev.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(dev, non_blocking=True)
    return tensor.to(dev)


def _has_bf16(dev) -> bool:
    import torch

    if dev.type == "cuda":
        try:  # torch 2.3 on: without counting the slow emulation older cards have
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    return dev.type in ("cpu", "mps")


def _name(dev) -> str:
    import torch

    if dev.type == "cuda":
        return f"this GPU ({torch.cuda.get_device_name(dev)})"
    return f"the device {dev}"


def _torch_below(major: int, minor: int) -> bool:
    import torch

    parts = torch.__version__.split("+")[0].split(".")
    return (int(parts[0]), int(parts[1])) < (major, minor)
