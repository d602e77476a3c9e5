"""What "improved" means, defined once: for best.pt, early stopping and the plateau schedule alike.

As Keras' `MonitorCallback`: a metric of the epoch's row (`monitor`), a direction (`mode`: min, max, or
auto: min for a loss, max otherwise) and `min_delta`, the least change that counts as better (0, as
Keras' default).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Monitor:
    monitor: str = "val_loss"
    mode: str = "auto"  # min | max | auto
    min_delta: float = 0.0

    @property
    def lower_is_better(self) -> bool:
        if self.mode == "auto":
            return self.monitor.removeprefix("val_") == "loss"
        return self.mode == "min"

    def improved(self, value: float, best: float | None) -> bool:
        """Whether `value` beats `best` by more than min_delta; any value beats none."""
        if best is None:
            return True
        if self.lower_is_better:
            return value < best - abs(self.min_delta)
        return value > best + abs(self.min_delta)
