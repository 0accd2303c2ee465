"""The progress bar of ``digest subscribers import``: shown on stderr for large files only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress


class ImportProgress:
    """A rich progress bar on stderr for large files; silent for small ones or --json."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.total = total
        self.bar: Progress | None = None
        if not quiet and total >= 1000:
            # rich only for a bar that is shown: every other command starts without it.
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("import", total=self.total)
        bar = self.bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
