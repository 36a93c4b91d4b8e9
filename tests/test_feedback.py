"""Feedback in SQLite and its export as gold-set candidates; the rendering around an answer
(lead, filter chip, copy/export payloads, suggestions) and follow-up candidates."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from eval.feedback import main as export_main
from rag import render
from rag.feedback import FeedbackStore, feedback_path, gold_candidate
from rag.records import Answer, Article, Citation
from rag.suggest import candidates, suggest_questions

ARTICLE = Article(
    id="a1",
    title="积极申报专项债券 助力经开快速发展",
    body=(
        "本报讯 经开区财政局共申报2020年专项债券项目58个，申请金额127.58亿元。"
        "截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。"
        "经开区共组织召开专题培训会12场。"
    ),
    source="003_c4740e32d0d06a7b.txt",
    date="2020-05-25",
    year=2020,
)
QUOTE = "截至目前，全区2020年已累计发行5个项目13.92亿元，是2019年专项债券全年发行额1.86倍。"


def answer(**kw) -> Answer:
    start = ARTICLE.body.index(QUOTE)
    base = dict(
        question="经开区2020年专项债发行多少",
        answer=QUOTE + "[1]",
        abstained=False,
        citations=[Citation(1, "a1", ARTICLE.title, "2020-05-25", ARTICLE.source, QUOTE, start, start + len(QUOTE))],
        kind="number",
    )
    base.update(kw)
    return Answer(**base)


def test_store_round_trip_comment_and_undo(tmp_path):
    store = FeedbackStore(feedback_path(tmp_path / "index"))
    a = answer().to_json()
    down = store.add("经开区2020年专项债发行多少", a, -1, "v-1")
    up = store.add("谁主持召开了会议", {"answer": "张磊", "citations": []}, 1, "v-1")
    assert store.set_comment(down, "  应该是\n13.92亿元  ")
    assert [i.id for i in store.items(-1)] == [down]
    item = store.items(-1)[0]
    assert (item.question, item.rating, item.index_version, item.comment) == ("经开区2020年专项债发行多少", -1, "v-1", "应该是 13.92亿元")
    assert item.answer == a and item.created_at
    assert store.remove(up) and store.items(1) == []
    with pytest.raises(ValueError, match="rating"):
        store.add("q", {}, 0, "v")
    store.close()
    cols = [r[1] for r in sqlite3.connect(tmp_path / "index" / "feedback.sqlite").execute("PRAGMA table_info(feedback)")]
    assert cols == ["id", "created_at", "rating", "question", "answer_json", "index_version", "comment"]


def test_export_writes_thumbs_down_as_gold_candidates(tmp_path, capsys):
    index = tmp_path / "index"
    store = FeedbackStore(feedback_path(index))
    down = store.add("经开区2020年专项债发行多少", answer().to_json(), -1, "v-7", "数字不对")
    store.add("好问题", answer().to_json(), 1, "v-7")
    store.close()
    out = tmp_path / "candidates.jsonl"
    assert export_main(["--export", str(out), "--index", str(index)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {
            "id": f"fb-{down:04d}",
            "question": "经开区2020年专项债发行多少",
            "answers": [],
            "evidence": [],
            "kind": "number",
            "source": "003_c4740e32d0d06a7b.txt",
            "answer_given": QUOTE + "[1]",
            "lead_given": "",
            "abstained": False,
            "comment": "数字不对",
            "index_version": "v-7",
            "created_at": rows[0]["created_at"],
        }
    ]
    assert export_main(["--export", str(out), "--index", str(tmp_path / "none")]) == 1
    assert "没有反馈记录" in capsys.readouterr().err


def test_gold_candidate_tolerates_a_minimal_answer():
    from rag.feedback import FeedbackItem

    row = gold_candidate(FeedbackItem(3, "t", -1, "q", {}, "v", ""))
    assert (row["id"], row["answers"], row["source"], row["answer_given"]) == ("fb-0003", [], "", "")


def _payload(html: str, cls: str) -> str:
    """What the page's script reads from a hidden payload block."""
    import html as h

    m = re.search(rf'<div class="{cls}" hidden>(.*?)</div>', html)
    assert m
    return h.unescape(m.group(1).replace("<br>", "\n"))


def test_answer_shows_lead_chip_human_source_and_payloads():
    a = answer()
    a.lead = "13.92亿元"  # the coming answerer's short answer; plain attribute until then
    labels = {ARTICLE.source: "经开时报 第4份"}
    html = render.render_answer(a, lambda i: ARTICLE, 1, labels=labels, chip="已筛选：2020–2021年")
    assert '<div class="rag-chip">已筛选：2020–2021年</div>' in html
    assert html.index("rag-lead") < html.index("rag-text")
    assert "<strong>13.92亿元</strong>" in html
    assert "2020年5月25日 · 经开时报 第4份" in html and "c4740e32" not in html.split('class="rag-acts"')[0]
    copied = _payload(html, "rag-copytext")
    assert copied.splitlines()[0] == "13.92亿元"
    assert "[1]《积极申报专项债券 助力经开快速发展》2020年5月25日 · 经开时报 第4份" in copied
    md = _payload(html, "rag-md")
    assert md.startswith("# 经开问答：经开区2020年专项债发行多少\n")
    assert "**13.92亿元**" in md and "## 来源" in md and f"   > {QUOTE}" in md and "*已筛选：2020–2021年*" in md


def test_lead_written_as_the_first_line_is_shown_once_in_bold():
    a = answer(answer=f"13.92亿元[1]\n{QUOTE}[1]")
    a.lead = "13.92亿元"
    html = render.render_answer(a, lambda i: ARTICLE, 1)
    lead = re.search(r'<div class="rag-lead">(.*?)</div>', html).group(1)
    assert lead == '<strong>13.92亿元<a class="rag-cite" href="#src-1-1">&#91;1&#93;</a></strong>'
    text = re.search(r'<div class="rag-text">(.*?)</div>', html).group(1)
    assert text.startswith("截至目前") and "13.92亿元[" not in text
    assert _payload(html, "rag-copytext").startswith(f"13.92亿元[1]\n{QUOTE}[1]\n来源：")
    md = _payload(html, "rag-md")
    assert "**13.92亿元[1]**" in md and md.count("13.92亿元[1]") == 1


def test_answer_without_lead_and_hostile_payload_stays_inert():
    a = answer(question="<script>alert(1)</script>")
    html = render.render_answer(a, lambda i: ARTICLE, 2)
    assert "rag-lead" not in html and "<script>" not in html
    assert "<script>alert(1)</script>" in _payload(html, "rag-md")  # as text, for the file


def test_suggestions_are_added_once_above_the_actions():
    html = render.render_answer(answer(), lambda i: ARTICLE, 1)
    more = render.with_suggestions(html, ["经开区共组织召开专题培训会多少场？"])
    assert more.index("rag-suggests") < more.index("rag-acts")
    assert render.with_suggestions(more, ["again？"]) == more
    assert render.with_suggestions(html, []) == html


def test_follow_up_candidates_come_from_other_number_clauses():
    start = ARTICLE.body.index(QUOTE)
    got = candidates(ARTICLE, (start, start + len(QUOTE)))
    questions = [q for q, _ in got]
    assert ("经开区财政局共申报2020年专项债券项目多少个？", "58") in got
    assert "经开区共组织召开专题培训会多少场？" in questions
    assert not any("13.92" in q or "1.86" in q for q in questions)  # the quoted sentence is not re-asked


def test_follow_up_candidates_skip_list_items_and_clauses_with_two_numbers():
    article = Article(
        id="a2",
        title="经开区全力除雪保畅通",
        body=(
            "经开区组织综合行政执法局、6家环卫市场化营运公司组建8支3970人的应急抢险队伍,"
            "出动扫雪车辆53台次,全力保障群众出行安全。"
        ),
        source="004.txt",
    )
    questions = [q for q, _ in candidates(article)]
    assert not any("执法局、多少" in q or "8支" in q for q in questions)


def test_suggestions_only_when_the_answerer_answers_them():
    replies = {
        "经开区财政局共申报2020年专项债券项目多少个？": answer(answer="共申报2020年专项债券项目58个[1]"),
        "申请金额多少亿元？": answer(answer="资料中没有", abstained=True),
    }

    def ask(q: str) -> Answer:
        return replies.get(q, answer(answer="资料中没有", abstained=True))

    got = suggest_questions(answer().to_json(), lambda i: ARTICLE, ask)
    assert got == ["经开区财政局共申报2020年专项债券项目多少个？"]
    assert suggest_questions(answer(abstained=True).to_json(), lambda i: ARTICLE, ask) == []
