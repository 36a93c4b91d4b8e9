"""The archive as staff manage it from the browser: list, upload, remove, rebuild in the background.

The corpus folder stays the one source of truth (the CLI and the page see the same files);
this module only adds what a person needs around it:

- **Uploads** land in the corpus folder under a safe name: the directory part of the name the
  browser sent is dropped (``../../x.txt`` becomes ``x.txt``), control and reserved characters
  go, and an existing file is never replaced unless asked for: a same-named upload with other
  content is stored as ``x-2.txt``; one with identical bytes is not stored twice. A file that
  is too large, empty or not text in a supported encoding is refused with the reason, before it
  can reach a build.
- **Removal** moves a page and its sidecar to ``<corpus>/.removed/`` (hidden folders are not
  read by the loader), so a slip of the mouse can be undone from a shell.
- **Rebuild** runs ``rag.build.build_index`` in one background thread, one at a time, with its
  progress callback turned into a fraction and an ETA. The build publishes atomically, so the
  chat keeps answering from the old index until the new one is switched in.
- A small ledger (``<index>/archive.json``) remembers when each file's current content was first
  indexed and which files the last build skipped, with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .build import BuildReport, build_index
from .buildlock import BuildLocked
from .embed import Embedder, make_embedder
from .load import SIDECAR_SUFFIX, TEXT_SUFFIXES, CorpusError, decode
from .records import Article
from .render import date_label
from .settings import Settings
from .store import IndexProblem

log = logging.getLogger(__name__)

LEDGER = "archive.json"
REMOVED_DIR = ".removed"
MAX_NAME_CHARS = 80

# Share of the rebuild's time each reported stage takes (measured on the seed pages: embedding
# dominates); before the first report the job is "preparing", after the last it is publishing.
_STAGES = (("segment", "切分文章", 0.05, 0.15), ("tokenize", "分词", 0.15, 0.25), ("embed", "计算向量", 0.25, 0.95))
_HASHLIKE = re.compile(r"^(?:(\d+)_)?[0-9a-f]{12,}$")
_UNSAFE = re.compile(r'[<>:"|?*\\/\x00-\x1f\x7f]')


class UploadRefused(ValueError):
    """An upload that cannot be stored; the message is for the person who sent it (Chinese)."""


# -- names, labels, dates ---------------------------------------------------------------------
def safe_name(name: str) -> str:
    """The name an upload is stored under, or UploadRefused. Only the last path part is kept."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = _UNSAFE.sub("", base)
    base = re.sub(r"\s+", "_", base.strip()).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    ext = f".{ext.lower()}" if dot else ""
    if ext not in TEXT_SUFFIXES or stem.lower().endswith(".meta"):
        raise UploadRefused(f"“{name}”不是 .txt 或 .md 文件，只能上传报纸的文本文件。")
    stem = stem.strip("._") or "上传文件"
    return stem[:MAX_NAME_CHARS] + ext


def page_label(source: str, sidecar_label: str = "", date: str = "", year: int | None = None) -> str:
    """How a page is named to people: the sidecar's "label", else the file name, never a hash.

    Hash-like names (``003_c4740e32d0d06a7b.txt``, as the scanning tool writes them) become
    "经开时报 第4份" from the running number in the name, or "经开时报 2020年6月" from the date."""
    if sidecar_label:
        return sidecar_label
    stem = Path(source).name.rsplit(".", 1)[0]
    m = _HASHLIKE.match(stem)
    if not m:
        return stem
    if m[1]:
        return f"经开时报 第{int(m[1]) + 1}份"
    return f"经开时报 {date_label(date, year) or '（日期不详）'}"


@dataclass(frozen=True)
class Sidecar:
    year: int | None = None
    date: str = ""
    label: str = ""


def read_sidecar(page: Path) -> Sidecar:
    """The display fields of ``<page>.meta.json``; anything unusable reads as absent (the loader warns)."""
    path = page.with_name(page.name + SIDECAR_SUFFIX)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError):
        return Sidecar()
    if not isinstance(data, dict):
        return Sidecar()
    year = data.get("year") if type(data.get("year")) is int else None
    date = data.get("date") if isinstance(data.get("date"), str) else ""
    label = data.get("label") if isinstance(data.get("label"), str) else ""
    return Sidecar(year, date, " ".join(label.split())[:MAX_NAME_CHARS])


# Skip reasons from rag.load, said in Chinese for the archive page.
_REASONS = (
    ("empty", "文件是空的"),
    ("byte-order mark", "文件开头的编码标记与内容不符，无法读取"),
    ("control or unassigned", "不是文本文件（内容多为不可显示的字符）"),
    ("cannot decode", "无法识别文字编码（支持 UTF-8、UTF-16、GB18030/GBK）"),
    ("cannot read", "无法读取文件"),
)


def reason_zh(reason: str) -> str:
    if re.search(r"[\u4e00-\u9fff]", reason or ""):
        return reason
    for key, text in _REASONS:
        if key in (reason or ""):
            return text
    return "无法读取文件"


def check_text(raw: bytes) -> str:
    """'' when `raw` is a usable page, else the reason (Chinese), with the loader's own decoder."""
    try:
        text, _ = decode(raw)
    except UnicodeError as exc:
        return reason_zh(str(exc))
    return "" if text.strip() else reason_zh("file is empty")


# -- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadResult:
    name: str  # as sent
    stored_as: str  # "" when not stored
    ok: bool
    message: str


@dataclass(frozen=True)
class ArchiveEntry:
    file: str
    label: str
    issue_date: str  # "2020年5月25日", "" when unknown
    articles: int  # in the published index
    titles: list[str]
    indexed_at: str  # ISO time the current content was first indexed, "" if not yet
    state: str  # 已收录 | 待重建 | 已移除，待重建 | 有问题
    problem: str = ""


@dataclass
class RebuildStatus:
    state: str = "idle"  # idle | running | done | failed
    stage: str = ""
    fraction: float = 0.0
    eta_s: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason in Chinese)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["fraction"] = round(self.fraction, 3)
        out["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        out["skipped"] = [{"file": f, "reason": r} for f, r in self.skipped]
        return out


# -- the archive -----------------------------------------------------------------------------
class Archive:
    """One corpus folder and its published index, as the archive page sees them."""

    def __init__(
        self,
        settings: Settings,
        embedder_factory: Callable[[], Embedder] | None = None,
        max_upload_bytes: int | None = None,
    ):
        self.settings = settings
        self.corpus = Path(settings.corpus_dir)
        # the loader skips larger files anyway (Settings.max_file_bytes), so refuse them at the door
        self.max_upload_bytes = max_upload_bytes or int(getattr(settings, "max_file_bytes", 5_000_000))
        self._embedder_factory = embedder_factory or (lambda: make_embedder(settings))
        self._embedder: Embedder | None = None
        self._job_lock = threading.Lock()  # held for the whole rebuild: one at a time
        self._files_lock = threading.Lock()
        self._status = RebuildStatus()
        self._checks: dict[str, tuple[tuple[int, int], str, str]] = {}  # file -> ((size, mtime), sha256, problem)

    # ---- listing ----
    def files(self) -> list[Path]:
        """Pages in the corpus folder, as the loader reads them (hidden paths and sidecars left out)."""
        if not self.corpus.is_dir():
            return []
        out = []
        for path in self.corpus.rglob("*"):
            rel = path.relative_to(self.corpus)
            name = path.name.lower()
            if any(p.startswith(".") for p in rel.parts) or name.endswith(SIDECAR_SUFFIX):
                continue
            if name.endswith(TEXT_SUFFIXES) and path.is_file():
                out.append(path)
        return sorted(out, key=lambda p: p.relative_to(self.corpus).as_posix())

    def _check(self, path: Path, rel: str) -> tuple[str, str]:
        """(sha256, problem) of a page, cached on size and mtime so a polling page stays cheap."""
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = self._checks.get(rel)
        if cached and cached[0] == key:
            return cached[1], cached[2]
        raw = path.read_bytes()
        sha, problem = hashlib.sha256(raw).hexdigest(), check_text(raw)
        self._checks[rel] = (key, sha, problem)
        return sha, problem

    def labels(self) -> dict[str, str]:
        """file -> page label, for citations and the source filter."""
        out = {}
        for path in self.files():
            rel = path.relative_to(self.corpus).as_posix()
            side = read_sidecar(path)
            out[rel] = page_label(rel, side.label, side.date, side.year)
        return out

    def entries(self, articles: Mapping[str, Article] | None = None, manifest: Mapping[str, Any] | None = None) -> list[ArchiveEntry]:
        """The archive table: every page on disk, plus pages still in the index but removed from disk."""
        by_source: dict[str, list[Article]] = {}
        for a in (articles or {}).values():
            by_source.setdefault(a.source, []).append(a)
        for group in by_source.values():
            group.sort(key=lambda a: a.order)
        indexed = dict((manifest or {}).get("files", {}))
        ledger = self._ledger()
        skipped = {f: v.get("reason", "") for f, v in ledger.get("skipped", {}).items() if isinstance(v, dict)}
        published = str((manifest or {}).get("published_at", ""))
        rows: list[ArchiveEntry] = []
        for path in self.files():
            rel = path.relative_to(self.corpus).as_posix()
            sha, problem = self._check(path, rel)
            side = read_sidecar(path)
            group = by_source.get(rel, [])
            date, year = side.date, side.year
            if not date and group:
                date, year = group[0].date, year or group[0].year
            fp = indexed.get(rel, "")
            stale = ledger.get("skipped", {}).get(rel, {}).get("sha") != sha
            if problem or (rel in skipped and not stale):
                state, problem = "有问题", problem or skipped[rel]
            elif fp.split(":", 1)[0] == sha:
                state = "已收录"
            else:
                state = "待重建"
            at = ledger.get("indexed_at", {}).get(rel, {})
            indexed_at = at.get("at", "") if at.get("sha") == sha else (published if state == "已收录" else "")
            rows.append(
                ArchiveEntry(
                    file=rel,
                    label=page_label(rel, side.label, date, year),
                    issue_date=date_label(date, year),
                    articles=len(group) if state == "已收录" else 0,
                    titles=[a.title for a in group] if state == "已收录" else [],
                    indexed_at=indexed_at,
                    state=state,
                    problem=problem,
                )
            )
        on_disk = {r.file for r in rows}
        for rel in sorted(set(indexed) - on_disk):
            group = by_source.get(rel, [])
            rows.append(
                ArchiveEntry(
                    file=rel,
                    label=page_label(rel, "", group[0].date if group else "", group[0].year if group else None),
                    issue_date=date_label(group[0].date, group[0].year) if group else "",
                    articles=len(group),
                    titles=[a.title for a in group],
                    indexed_at="",
                    state="已移除，待重建",
                )
            )
        return rows

    # ---- changing the folder ----
    def save(self, name: str, data: bytes, overwrite: bool = False) -> UploadResult:
        """Store one upload; never raises for a bad file, the result says what happened."""
        try:
            target = safe_name(name)
        except UploadRefused as exc:
            return UploadResult(name, "", False, str(exc))
        if len(data) > self.max_upload_bytes:
            return UploadResult(
                name, "", False, f"“{target}”有 {_mb(len(data))}，超过单个文件 {_mb(self.max_upload_bytes)} 的上限，未保存。请拆分后再上传。"
            )
        problem = check_text(data)
        if problem:
            return UploadResult(name, "", False, f"“{target}”未保存：{problem}。")
        with self._files_lock:
            self.corpus.mkdir(parents=True, exist_ok=True)
            path = self.corpus / target
            if path.exists() and not overwrite:
                if path.read_bytes() == data:
                    return UploadResult(name, target, True, f"“{target}”已在资料库中，内容相同，未重复保存。")
                path = self._free_name(target)
                message = f"已有同名文件“{target}”，新文件另存为“{path.name}”。"
            else:
                message = f"已替换同名文件“{target}”。" if path.exists() else f"已保存“{target}”。"
            tmp = path.with_name(f".upload-{os.getpid()}-{path.name}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return UploadResult(name, path.name, True, message + "点击“更新索引”后即可查询。")

    def _free_name(self, target: str) -> Path:
        stem, ext = target.rsplit(".", 1)
        for n in range(2, 10_000):
            path = self.corpus / f"{stem}-{n}.{ext}"
            if not path.exists():
                return path
        raise UploadRefused("同名文件过多，请改名后再上传。")

    def remove(self, rel: str) -> str:
        """Move a listed page (and its sidecar) to .removed/; the message is for the page."""
        with self._files_lock:
            listed = {p.relative_to(self.corpus).as_posix(): p for p in self.files()}
            if rel not in listed:
                raise UploadRefused(f"资料库中没有文件“{rel}”。")
            path = listed[rel]
            bin_dir = self.corpus / REMOVED_DIR / time.strftime("%Y%m%d-%H%M%S")
            bin_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, bin_dir / path.name)
            sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
            if sidecar.exists():
                os.replace(sidecar, bin_dir / sidecar.name)
            self._checks.pop(rel, None)
        return f"已移除“{rel}”（移到 {REMOVED_DIR} 文件夹，可恢复）。点击“更新索引”后生效。"

    # ---- rebuild ----
    def status(self) -> RebuildStatus:
        return RebuildStatus(**{**asdict(self._status), "skipped": list(self._status.skipped)})

    @property
    def running(self) -> bool:
        return self._job_lock.locked()

    def start_rebuild(self, on_done: Callable[[], None] | None = None) -> bool:
        """Start a rebuild in the background; False (and nothing started) if one is running."""
        if not self._job_lock.acquire(blocking=False):
            return False
        self._status = RebuildStatus(state="running", stage="准备中", started_at=time.time(), message="正在准备…")
        thread = threading.Thread(target=self._rebuild, args=(on_done,), name="archive-rebuild", daemon=True)
        thread.start()
        return True

    def wait(self, timeout: float | None = None) -> RebuildStatus:
        """Block until no rebuild runs (tests, CLI); returns the final status."""
        if self._job_lock.acquire(timeout=-1 if timeout is None else timeout):
            self._job_lock.release()
        return self.status()

    def _progress(self, stage: str, done: int, total: int) -> None:
        for key, label, lo, hi in _STAGES:
            if key == stage:
                f = lo + (hi - lo) * (done / total if total else 1.0)
                s = self._status
                s.stage, s.fraction = label, max(s.fraction, f)
                elapsed = time.time() - (s.started_at or time.time())
                s.eta_s = elapsed * (1 - s.fraction) / s.fraction if s.fraction > 0.05 else None
                s.message = f"{label}：{done}/{total}"
                return

    def _rebuild(self, on_done: Callable[[], None] | None) -> None:
        s = self._status
        try:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            report = build_index(self.settings, embedder=self._embedder, progress=self._progress)
            s.skipped = [(f, reason_zh(r)) for f, r in report.skipped]
            self._record(report)
            s.state, s.stage, s.fraction, s.eta_s = "done", "完成", 1.0, 0.0
            s.message = _summary(report)
        except BuildLocked as exc:
            s.state, s.message = "failed", f"{exc}。稍后再点“更新索引”。"
        except CorpusError:
            s.state, s.message = "failed", "资料库中没有可读取的报纸文本，请先上传 .txt 或 .md 文件。"
        except IndexProblem as exc:
            log.exception("rebuild failed")
            s.state, s.message = "failed", f"索引无法更新，请联系管理员（{exc}）"
        except Exception as exc:  # the page must say so; the log has the traceback
            log.exception("rebuild failed")
            s.state, s.message = "failed", f"更新索引时出错：{exc}"
        finally:
            s.finished_at = time.time()
            self._job_lock.release()
            if on_done:
                try:
                    on_done()
                except Exception:
                    log.exception("after-rebuild hook failed")

    # ---- ledger ----
    def _ledger_path(self) -> Path:
        return Path(self.settings.index_dir) / LEDGER

    def _ledger(self) -> dict[str, Any]:
        try:
            data = json.loads(self._ledger_path().read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _record(self, report: BuildReport) -> None:
        ledger = self._ledger()
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        seen = ledger.get("indexed_at", {})
        fresh, skipped = {}, {}
        bad = {f: reason_zh(r) for f, r in report.skipped}
        for path in self.files():
            rel = path.relative_to(self.corpus).as_posix()
            sha, problem = self._check(path, rel)
            if rel in bad:
                skipped[rel] = {"reason": bad[rel], "sha": sha}
            if problem or rel in bad:
                continue
            old = seen.get(rel, {})
            fresh[rel] = old if old.get("sha") == sha else {"sha": sha, "at": now}
        ledger["indexed_at"] = fresh
        ledger["skipped"] = skipped
        ledger["last_build"] = {"at": now, "message": _summary(report)}
        tmp = self._ledger_path().with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(ledger, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self._ledger_path())


def _summary(report: BuildReport) -> str:
    parts = [f"共 {report.n_files} 版、{report.n_articles} 篇文章"]
    if report.files_added:
        parts.append(f"新增 {len(report.files_added)} 版")
    if report.files_changed:
        parts.append(f"更新 {len(report.files_changed)} 版")
    if report.files_removed:
        parts.append(f"移除 {len(report.files_removed)} 版")
    if report.skipped:
        parts.append(f"{len(report.skipped)} 个文件无法读取（见下表）")
    if not report.changed:
        parts.append("资料没有变化")
    return "索引已更新：" + "，".join(parts) + "。"


def _mb(n: int) -> str:
    """Sizes as people read them in a file manager: decimal megabytes, one decimal at most."""
    if n < 100_000:
        return f"{n / 1000:.1f}".removesuffix(".0") + " KB"
    return f"{n / 1e6:.1f}".removesuffix(".0") + " MB"
