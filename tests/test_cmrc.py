"""CMRC 2018 trial as a dataset adapter: its questions become gold items of the harness loop."""

from __future__ import annotations

from eval.cmrc import CMRC, load_cmrc
from eval.metrics import GoldItem


def test_cmrc_questions_are_span_items_with_their_passage_file(shared_dir):
    files, items = load_cmrc(shared_dir / CMRC)
    assert len(files) == 256
    assert len(items) == 1000  # of 1,002: TRIAL_776_QUERY_4 is blank, TRIAL_20_QUERY_0 has no answer text
    assert all(isinstance(it, GoldItem) and it.kind == "span" and it.answerable for it in items)
    assert len({it.id for it in items}) == len(items)
    for it in items:
        assert it.source in files and it.evidence == it.answers
        assert any(a in files[it.source] for a in it.answers), it.id
