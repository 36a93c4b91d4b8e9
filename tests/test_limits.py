"""rag.limits: clipping keeps the end; the reader/writer gate lets answers overlap but not a reload."""

from __future__ import annotations

import threading
import time

import pytest

from rag.engine import check_question
from rag.limits import Busy, ReadWriteGate, SerialGate, bounded_history, clip_end, deadline_after, make_gate
from rag.settings import Settings


def test_clip_end_keeps_the_last_characters():
    assert clip_end("前文很长。经开区2020年专项债发行多少", 15) == ("经开区2020年专项债发行多少", True)
    assert clip_end("短", 5) == ("短", False)
    assert clip_end("abc", 0) == ("", True)


def test_check_question_keeps_the_question_at_the_end():
    settings = Settings(max_question_chars=20)
    checked = check_question("请看下面这段材料：" + "材料" * 500 + "。经开区2020年专项债发行多少", settings)
    assert checked.truncated and checked.text.endswith("经开区2020年专项债发行多少") and len(checked.text) == 20
    assert check_question("\ud800经开区\x00？", settings).text == "\ufffd经开区？"


def test_bounded_history_keeps_the_latest_turns_and_their_ends():
    settings = Settings(max_history_items=3, max_question_chars=10)
    history = ["第一问", "第二问", "", "x" * 50 + "最后一问的结尾部分", "  \n "]
    assert bounded_history(history, settings) == ["第一问", "第二问", "x最后一问的结尾部分"]
    assert bounded_history(["旧"] + history, settings) == ["第一问", "第二问", "x最后一问的结尾部分"]
    assert bounded_history(None, settings) == []
    assert bounded_history(["a\ud800b"], settings) == ["a\ufffdb"]


def _hold(ctx, entered: threading.Event, release: threading.Event):
    with ctx:
        entered.set()
        release.wait(5)


def test_readers_overlap():
    gate = ReadWriteGate()
    release = threading.Event()
    entered = [threading.Event() for _ in range(3)]
    threads = [threading.Thread(target=_hold, args=(gate.reading(), e, release)) for e in entered]
    for t in threads:
        t.start()
    assert all(e.wait(2) for e in entered)  # three readers inside at once
    release.set()
    for t in threads:
        t.join(2)


def test_writer_waits_for_readers_and_new_readers_wait_for_a_waiting_writer():
    gate = ReadWriteGate()
    reader_in, reader_go = threading.Event(), threading.Event()
    writer_in, writer_go = threading.Event(), threading.Event()
    r = threading.Thread(target=_hold, args=(gate.reading(), reader_in, reader_go))
    r.start()
    assert reader_in.wait(2)
    w = threading.Thread(target=_hold, args=(gate.writing(), writer_in, writer_go))
    w.start()
    time.sleep(0.1)
    assert not writer_in.is_set()  # a reader is inside
    with pytest.raises(Busy):  # writer preference: a new reader queues behind the waiting writer
        with gate.reading(deadline_after(0.1)):
            pass
    reader_go.set()
    assert writer_in.wait(2)
    with pytest.raises(Busy):
        with gate.reading(deadline_after(0.1)):
            pass
    writer_go.set()
    w.join(2)
    r.join(2)
    with gate.reading(deadline_after(1)):
        pass


def test_writer_timeout_leaves_the_gate_usable():
    gate = ReadWriteGate()
    with gate.reading():
        with pytest.raises(Busy):
            with gate.writing(deadline_after(0.05)):
                pass
        with gate.reading(deadline_after(0.5)):  # the failed writer no longer blocks readers
            pass
    with gate.writing(deadline_after(0.5)):
        pass


def test_serial_gate_is_one_at_a_time():
    gate = SerialGate()
    with gate.reading():
        with pytest.raises(Busy):
            with gate.reading(deadline_after(0.05)):
                pass


def test_make_gate_names_the_setting():
    assert isinstance(make_gate("shared"), ReadWriteGate) and isinstance(make_gate("serial"), SerialGate)
    with pytest.raises(ValueError, match="ask_concurrency"):
        make_gate("parallel")



def test_serve_embed_threads_is_checked():
    """The web app's query embedder threads (0 = the embedder library's own choice); never negative."""
    assert Settings().serve_embed_threads == 1 and Settings(serve_embed_threads=0).serve_embed_threads == 0
    with pytest.raises(ValueError, match="serve_embed_threads"):
        Settings(serve_embed_threads=-1)
