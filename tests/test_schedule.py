"""Learning-rate schedules: the same rates as torch.optim.lr_scheduler's, step by step."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cnndsl.training.schedule import Schedule  # noqa: E402


def torch_rates(make, epochs: int, steps: int, per_batch: bool, lr: float = 0.1) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make(optimizer)
    rates = []
    for _ in range(epochs):
        for _ in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if per_batch:
                scheduler.step()
        if not per_batch:
            scheduler.step()
    return rates


def ours(kind: str, epochs: int, steps: int, lr: float = 0.1, **kw) -> list[float]:
    s = Schedule(kind, lr, epochs, steps, **kw)
    return [s.lr(e, i) for e in range(1, epochs + 1) for i in range(steps)]


@pytest.mark.parametrize("epochs,steps", [(5, 7), (3, 1), (10, 45)])
def test_onecycle_is_torchs(epochs, steps):
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.1, total_steps=epochs * steps, cycle_momentum=False), epochs, steps, per_batch=True)
    assert ours("onecycle", epochs, steps) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert expected[-1] == pytest.approx(0.1 / 25 / 1e4)  # where the old schedule ended at lr/1e4


def test_cosine_and_step_are_torchs():
    cosine = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6 * 9), 6, 9, True)
    assert ours("cosine", 6, 9) == pytest.approx(cosine, rel=1e-9, abs=1e-15)
    step = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.1), 6, 3, False)
    assert ours("step", 6, 3, step_size=2) == pytest.approx(step, rel=1e-12)
