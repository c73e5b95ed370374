"""One rich progress bar for training loops (fine-tuning, distillation): steps, loss, dev, ETA."""

from __future__ import annotations


class TrainingProgress:
    """Context manager yielding an `on_step(step, total, loss, parts=None)` callback; yields None
    (no display) when there is no console. `parts["dev_accuracy"]`, when given, is shown."""

    def __init__(self, console, label: str):
        self.console, self.label = console, label
        self.progress = self.task = None

    def __enter__(self):
        if self.console is None:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"),
                                 TextColumn("dev {task.fields[dev]}"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=None, loss="-", dev="-")
        return self.on_step

    def on_step(self, step: int, total: int, loss: float, parts: dict | None = None) -> None:
        fields = {"loss": f"{loss:.3f}"}
        if parts and "dev_accuracy" in parts:
            fields["dev"] = f"{parts['dev_accuracy']:.2%}"
        self.progress.update(self.task, completed=step, total=total, **fields)

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
        return False
