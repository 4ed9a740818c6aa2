"""Index generations: each save is a new folder, switched in by replacing one symbolic link."""

import shutil

import pytest

from qa.corpus import corpus_hashes
from qa.index import MANIFEST, expected_settings, generations_dir, index_stamp, load_index, save_index

pytestmark = pytest.mark.slow


def test_each_save_is_a_new_generation_switched_atomically(retriever, encoder, tmp_path):
    expected = expected_settings(retriever.settings, encoder, corpus_hashes(retriever.settings.corpus_dir))
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)  # a plain folder, as older versions wrote
    stamps = [index_stamp(folder)]
    for _ in range(3):
        save_index(retriever.index, folder)
        assert folder.is_symlink() and (folder / MANIFEST).is_file()
        stamps.append(index_stamp(folder))
        assert load_index(folder, expected).dense.ntotal == len(retriever.index.chunks)
    assert len(set(stamps)) == 4  # every save is seen as a new generation
    gens = sorted(p.name for p in generations_dir(folder).iterdir())
    assert len(gens) == 2 and folder.resolve().name == gens[-1]  # the current one and the one before
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name or ".link-" in p.name or ".old-" in p.name]
