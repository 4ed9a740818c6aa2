"""BM25 top-k without scoring every chunk (`LexicalIndex.top`) finds the chunks that scoring every
chunk finds, with bit-equal scores, on a corpus large and repetitive enough that the early exit,
the lookups and the chunks matching no query word all occur."""

import numpy as np
import pytest

from qa.backends.exact import lexical_top
from qa.lexical import LexicalIndex

WORDS = [f"word{i}" for i in range(300)]


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    p = 1.0 / np.arange(1, len(WORDS) + 1)  # Zipf-like: a few words in most chunks, many rare ones
    p /= p.sum()
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 60)), p=p)) for _ in range(3000)]
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 12)), p=p)) for _ in range(60)]
    queries += ["word299", "word0 word0 word5", "nothing here", "word1 word250 word251 word252",
                "word0 word1 word2 word3 word40 word41", "word0 word1 word30 word31 word32 word33 word34"]
    lex = LexicalIndex.build(texts)
    lex.score_all_below = 0  # MaxScore for every query (by default this small corpus would score every chunk)
    return lex, queries


def same_top(got_ids, got_scores, full, want_ids):
    """Equal as sets of scores (chunks tied at the n-th place may differ), and scores bit-equal."""
    assert np.array_equal(got_scores, full[got_ids])
    assert len(set(got_ids.tolist())) == len(got_ids)
    assert sorted(full[got_ids].tolist()) == sorted(full[want_ids].tolist())


@pytest.mark.parametrize("n", [1, 10, 100, 1000])
def test_top_equals_scoring_every_chunk(corpus, n):
    lex, queries = corpus
    for q in queries:
        full = lex.scores(q)
        ids, scores = lex.top(q, n)
        same_top(ids, scores, full, lexical_top(full, n, None))


@pytest.mark.parametrize("share", [0.01, 0.3])
def test_top_with_a_filter(corpus, share):
    lex, queries = corpus
    allowed = np.random.default_rng(3).random(lex.size) < share
    kept = np.flatnonzero(allowed)
    for q in queries:
        full = lex.scores(q)
        want = lexical_top(full, 20, kept)
        for ids, scores in (lex.top(q, 20, allowed), lex.top_among(q, 20, kept)):
            assert allowed[ids].all()
            same_top(ids, scores, full, want)


def test_chunks_without_a_query_word_make_up_the_number_in_index_order(corpus):
    lex, _ = corpus
    full = lex.scores("word299")
    ids, scores = lex.top("word299", 200)
    matched = np.flatnonzero(full > 0)
    assert len(matched) < 200
    assert set(matched) <= set(ids.tolist())
    zero = [i for i in ids.tolist() if full[i] == 0]
    assert zero == np.flatnonzero(full == 0)[: 200 - len(matched)].tolist()
    ids, scores = lex.top("nothing here", 5)
    assert ids.tolist() == [0, 1, 2, 3, 4] and not scores.any()


def test_scores_of_equals_every_chunks_scores_to_the_bit(corpus):
    lex, queries = corpus
    ids = np.sort(np.random.default_rng(1).choice(lex.size, 500, replace=False))
    for q in queries:
        assert np.array_equal(lex.scores_of(q, ids), lex.scores(q)[ids])


def test_queries_with_few_postings_score_every_chunk_with_the_same_result(corpus):
    lex, queries = corpus
    every = LexicalIndex(lex._bm25, lex.size, lex.acronyms)
    assert every.score_all_below > 0
    for q in queries:
        full = lex.scores(q)
        ids, scores = every.top(q, 50)
        same_top(ids, scores, full, lex.top(q, 50)[0])
