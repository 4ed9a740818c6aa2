"""Concurrent builds and reads of one index folder (issue 10: two `qa build` at once raced)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from qa.corpus import corpus_hashes
from qa.index import MANIFEST, build_lock, expected_settings, load_index, remove_leftovers, save_index

pytestmark = pytest.mark.slow


def test_concurrent_saves_and_loads_never_fail(retriever, encoder, tmp_path):
    folder = tmp_path / "index"
    expected = expected_settings(retriever.settings, encoder, corpus_hashes(retriever.settings.corpus_dir))
    save_index(retriever.index, folder)
    errors: list[BaseException] = []
    loads = 0
    writing = threading.Event()
    writing.set()

    def writer() -> None:
        try:
            for _ in range(4):
                save_index(retriever.index, folder)
        except BaseException as exc:  # noqa: BLE001 - any failure is what the test looks for
            errors.append(exc)

    def reader() -> None:
        nonlocal loads
        while writing.is_set():
            try:
                index = load_index(folder, expected)
                assert index.dense.ntotal == len(index.chunks)
                loads += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    writers = [threading.Thread(target=writer) for _ in range(5)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    writing.clear()
    for t in readers:
        t.join()
    assert errors == [], [f"{type(e).__name__}: {e}" for e in errors[:5]]
    assert loads > 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith((".index.building-", ".index.old-"))]
    assert leftovers == []
    load_index(folder, expected)


def test_a_second_builder_waits_for_the_first(tmp_path):
    folder = tmp_path / "index"
    order: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with build_lock(folder):
            inside.set()
            order.append("first in")
            time.sleep(0.5)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    inside.wait(10)
    waited = []
    with build_lock(folder, on_wait=lambda: waited.append(True)):
        order.append("second in")
    t.join()
    assert waited == [True]
    assert order == ["first in", "first out", "second in"]


def test_leftovers_of_killed_builds_are_removed(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)
    for name in (".index.building-4242", ".index.old-4242-abcd"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "chunks.jsonl").write_text("partial")
    save_index(retriever.index, folder)
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".index.") and p.is_dir()]
    assert left == [".index.generations"]  # where the saved generations live; nothing of the killed builds


def test_an_index_left_aside_by_a_killed_swap_is_put_back(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, tmp_path / ".index.old-99-deadbeef")
    (tmp_path / ".index.building-99-deadbeef").mkdir()
    removed = remove_leftovers(folder)
    assert (folder / MANIFEST).is_file()
    assert [p.name for p in removed] == [".index.building-99-deadbeef"]
    assert not (tmp_path / ".index.old-99-deadbeef").exists()
