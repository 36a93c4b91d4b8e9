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


def duration_zh(seconds: float) -> str:
    """4200 -> "1小时10分", 95 -> "2分", 20 -> "1分" (a wait people plan around, in minutes)."""
    minutes = max(1, int(round(seconds / 60)))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}小时{minutes}分"
    return f"{hours}小时" if hours else f"{minutes}分"


def dense_label(coverage: float, eta_s: float | None = None, building: bool = True) -> str:
    """"向量 45%（约 1小时10分 完成）" while vectors are being computed; "" when complete."""
    if coverage >= 1.0:
        return ""
    pct = f"向量 {int(coverage * 100)}%"
    if not building:
        return f"{pct}（未在计算：运行 python -m rag.index --continue 继续）"
    if eta_s is None:
        return f"{pct}（计算中）"
    return f"{pct}（约 {duration_zh(eta_s)} 完成）"
