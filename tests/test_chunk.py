from rag.chunk import chunk_article, sentence_spans
from rag.records import Article
from rag.load import load_corpus
from rag.segment import segment_page

from rag.settings import BUNDLED_CORPUS as SEED_CORPUS


def _article(body: str) -> Article:
    return Article(id="a1", title="标题", body=body, source="x.txt", date="2020-05-25", year=2020)


def test_sentence_spans_are_exact_offsets():
    body = "第一句。第二句！\n第三段没有句号\n“引号里的话。”后面"
    spans = sentence_spans(body)
    assert [body[s:e] for s, e in spans] == ["第一句。", "第二句！", "第三段没有句号", "“引号里的话。”", "后面"]


def test_chunks_pack_sentences_with_overlap_and_offsets():
    body = "".join(f"这是第{i}句话，内容是关于经开区的一些工作。" for i in range(40))
    chunks = chunk_article(_article(body), size=120, overlap=40)
    assert len(chunks) > 5
    for c in chunks:
        assert body[c.start : c.end] == c.text
        assert len(c.text) <= 120
        assert c.text.endswith("。")  # whole sentences only
        assert c.title == "标题" and c.year == 2020 and c.article_id == "a1"
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # overlap: the next chunk repeats the tail of the previous
        assert b.start > a.start


def test_long_sentence_never_cut_inside_a_number():
    body = "经开区" + "发行专项债券" * 40 + "13.92亿元" + "用于基础设施建设" * 30 + "。"
    for size in range(60, 200, 7):
        for c in chunk_article(_article(body), size=size, overlap=0):
            assert not (c.text.endswith("13.") or c.text.startswith("92亿元") or c.text.endswith("13"))
    assert any("13.92亿元" in c.text for c in chunk_article(_article(body), size=100, overlap=0))


def test_every_seed_article_is_fully_covered_by_its_chunks():
    for page in load_corpus(SEED_CORPUS).pages:
        for article in segment_page(page):
            chunks = chunk_article(article, size=300, overlap=60)
            covered = set()
            for c in chunks:
                covered.update(range(c.start, c.end))
            content = {i for i, ch in enumerate(article.body) if not ch.isspace()}
            assert content <= covered, article.title


def test_empty_body_yields_no_chunks():
    assert chunk_article(_article("")) == []
    assert chunk_article(_article("  \n ")) == []
