"""The saved index: atomic, self-describing, and refused when stale or damaged."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from qa import IndexCorruptError, IndexMissingError, IndexStaleError, Retriever
from qa.checksums import VERIFIED_FILE
from qa.config import Settings
from qa.corpus import corpus_hashes
from qa.index import MANIFEST, expected_settings, load_index, save_index

pytestmark = pytest.mark.slow


@pytest.fixture
def index_copy(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)
    return folder


@pytest.fixture
def expected(retriever, encoder):
    return expected_settings(retriever.settings, encoder, corpus_hashes(retriever.settings.corpus_dir))


def test_manifest_describes_the_index(retriever):
    manifest = json.loads((retriever.settings.index_dir / MANIFEST).read_text())
    assert manifest["model"]["dimension"] == 384 and manifest["model"]["max_tokens"] == 256
    assert manifest["model"]["weights_sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert manifest["chunking"]["chunk_tokens"] == retriever.settings.chunk_tokens
    assert set(manifest["corpus"]) == {"catalogue.json", *(p.name for p in retriever.settings.corpus_dir.glob("*.txt"))}
    assert {"dense.faiss", "chunks.jsonl", "sentences.npz"} <= set(manifest["files"])
    assert manifest["libraries"]["faiss-cpu"] != "not installed"


def test_a_fresh_index_loads(index_copy, expected):
    index = load_index(index_copy, expected)
    assert index.dense.ntotal == len(index.chunks)


@pytest.mark.parametrize("name", ["dense.faiss", "chunks.jsonl", "sentences.npz", "bm25/vocab.index.json"])
def test_a_flipped_byte_is_refused(index_copy, expected, name):
    path = index_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum.*python -m qa build"):
        load_index(index_copy, expected)



def test_a_verified_index_is_not_hashed_again_until_a_file_changes(index_copy, expected, monkeypatch):
    import qa.checksums as checksums

    load_index(index_copy, expected)  # hashes every file and records the digests
    assert (index_copy / VERIFIED_FILE).is_file()
    hashed = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    load_index(index_copy, expected)
    assert hashed == []
    # an edit that keeps the size and puts the modification time back is still seen: its ctime moved
    time.sleep(0.05)
    path = index_copy / "chunks.jsonl"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(IndexCorruptError, match="checksum"):
        load_index(index_copy, expected)
    assert hashed == ["chunks.jsonl"]


def test_a_record_entry_that_does_not_match_its_file_is_not_believed(index_copy, expected):
    load_index(index_copy, expected)
    record = index_copy / VERIFIED_FILE
    entries = json.loads(record.read_text())
    key = str((index_copy / "dense.faiss").resolve())
    entries[key]["identity"][2] += 1  # another size: the file is hashed again, not trusted on the record's word
    entries[key]["sha256"] = "0" * 64
    record.write_text(json.dumps(entries))
    assert load_index(index_copy, expected).dense.ntotal > 0

def test_a_missing_file_or_bad_manifest_is_refused(index_copy, expected):
    (index_copy / "dense.faiss").unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        load_index(index_copy, expected)
    (index_copy / MANIFEST).write_text("{ not json")
    with pytest.raises(IndexCorruptError, match="not a valid manifest"):
        load_index(index_copy, expected)
    (index_copy / MANIFEST).unlink()
    with pytest.raises(IndexCorruptError, match="no manifest.json"):
        load_index(index_copy, expected)


def test_a_missing_index_says_how_to_build(tmp_path, expected):
    with pytest.raises(IndexMissingError, match="python -m qa build"):
        load_index(tmp_path / "nowhere", expected)


def test_changed_settings_or_corpus_make_it_stale(index_copy, expected):
    other = json.loads(json.dumps(expected))
    other["chunking"]["chunk_tokens"] += 1
    with pytest.raises(IndexStaleError, match="chunking"):
        load_index(index_copy, other)
    other = json.loads(json.dumps(expected))
    other["corpus"]["001_c361ffa2229f1d7f.txt"] = "0" * 64
    with pytest.raises(IndexStaleError, match="001_c361ffa2229f1d7f.txt changed"):
        load_index(index_copy, other)
    other = json.loads(json.dumps(expected))
    other["model"]["name"] = "some/other-model"
    with pytest.raises(IndexStaleError, match="model"):
        load_index(index_copy, other)


def test_stale_index_is_reported_or_rebuilt(tmp_path, encoder, tiny_corpus):
    settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "idx", auto_rebuild=False)
    Retriever.build(settings, encoder=encoder)
    (tiny_corpus / "b.txt").write_text((tiny_corpus / "b.txt").read_text() + "\nA new closing sentence.\n")
    with pytest.raises(IndexStaleError, match="b.txt changed"):
        Retriever.load(settings=settings, encoder=encoder)
    rebuilt = Retriever.load(settings=settings.with_(auto_rebuild=True), encoder=encoder)
    assert any("new closing sentence" in c.text for c in rebuilt.index.chunks)
    assert Retriever.load(settings=settings, encoder=encoder).index.manifest == rebuilt.index.manifest


def test_a_failed_write_leaves_the_old_index(index_copy, expected, retriever, monkeypatch):
    before = (index_copy / MANIFEST).read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(retriever.index.lexical), "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_index(retriever.index, index_copy)
    assert (index_copy / MANIFEST).read_text() == before
    assert load_index(index_copy, expected).dense.ntotal == len(retriever.index.chunks)
    # only the lock files stay (they are meant to): no half-written or set-aside index folder
    assert not [p for p in index_copy.parent.iterdir() if p.name.startswith((".index.building", ".index.old"))]
