"""Progress bars for the command-line tools; the library reports progress through a callback
``(stage, done, total)`` and never prints, so only a CLI turns it into bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def progress_bars(labels: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None, leave: bool = True) -> Progress:
    """One tqdm bar per stage on stderr, with rate and ETA, closed when the stage is done."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    labels, units = labels or {}, units or {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=labels.get(stage, stage), unit=units.get(stage, "it"), file=sys.stderr, dynamic_ncols=True, leave=leave
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress
