"""A run's scalar log: `log.csv` (step,name,value,time; the means over each `log_every` interval, averaged over
processes) and `loss.png`, the curves of every series whose name starts with "loss"."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from glmimage.training.run import Run


def log_scalars(run: Run, step: int, values: dict[str, float]) -> None:
    """Accumulate the step's scalars; every `log_every` steps the means over the interval, averaged over processes,
    go to log.csv (main process). The bar shows the latest local loss."""
    if run.bar is not None and "loss" in values:
        run.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
    for name, value in values.items():
        total, count = run.pending.get(name, (0.0, 0))
        run.pending[name] = (total + float(value), count + 1)
    if step % run.cfg.log_every and step != run.cfg.steps:
        return
    names = sorted(run.pending)
    means = torch.tensor([run.pending[n][0] / run.pending[n][1] for n in names], device=run.device)
    means = run.accelerator.reduce(means, reduction="mean")
    run.pending.clear()
    if run.main:
        append_log(run.log_path(), step, dict(zip(names, means.tolist())))


def append_log(path: Path, step: int, values: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["step", "name", "value", "time"])
        now = round(time.time(), 3)
        for name, value in values.items():
            writer.writerow([step, name, repr(float(value)), now])


def read_log(path: Path) -> list[tuple[int, str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [(int(r["step"]), r["name"], float(r["value"])) for r in csv.DictReader(f)]


def truncate_log(path: Path, last_step: int) -> None:
    """On resume, forget what was logged after the checkpoint, so the log reads like one uninterrupted run."""
    if not path.exists():
        return
    with path.open() as f:
        rows = [r for r in csv.reader(f)]
    kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= last_step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)


def moving_average(values: list[float], window: int | None = None) -> list[float]:
    """Trailing mean over `window` points (default: a twentieth of the series), for curves of noisy scalars."""
    window = window or max(1, len(values) // 20)
    return [sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
            for i in range(len(values))]


def plot_losses(log: Path, png: Path, title: str = "") -> None:
    """Every logged series whose name starts with 'loss': raw (thin) and a moving average (thick)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for step, name, value in read_log(log):
        if name.startswith("loss"):
            series.setdefault(name, []).append((step, value))
    if not series:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in sorted(series.items()):
        steps = [s for s, _ in points]
        values = [v for _, v in points]
        line = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
        ax.plot(steps, moving_average(values), color=line.get_color(), linewidth=1.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all(v > 0 for pts in series.values() for _, v in pts):
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
