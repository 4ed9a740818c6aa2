"""Token counting: tiktoken from a local ranks file or cache (never a download), else one-warning approximation."""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import sys

import pytest

from qa import tokens
from qa.errors import QAError
from qa.tokens import PATTERNS, TokenCounter, TokenizerError, fit_passages, read_ranks

# Merges in priority order: "the" is built from "th" + "e", " the" from " " + "the".
MERGES = (b"th", b"the", b" the")


def write_ranks(path, merges=MERGES, singles=range(256)):
    """A .tiktoken file in load_tiktoken_bpe's format: base64 token, a space, its rank."""
    vocabulary = [bytes([b]) for b in singles] + list(merges)
    path.write_bytes(b"".join(base64.b64encode(t) + b" " + str(i).encode() + b"\n" for i, t in enumerate(vocabulary)))
    return path


@pytest.fixture
def ranks_file(tmp_path):
    return write_ranks(tmp_path / "tiny.tiktoken")


@pytest.fixture
def fresh_warning(monkeypatch):
    """A new once-per-process flag, so each test sees its own first warning."""
    monkeypatch.setattr(tokens, "_APPROXIMATION_WARNING", tokens._Once())


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def no_download(monkeypatch):
    """Make every tiktoken path that could fetch a URL fail loudly."""
    import tiktoken
    import tiktoken.load

    def refuse(*args, **kwargs):
        raise AssertionError(f"tiktoken was asked to fetch or register an encoding: {args!r}")

    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)


def test_file_counter_is_exact_and_applies_the_merges(ranks_file, no_download):
    counter = TokenCounter.from_file(ranks_file)
    assert counter.exact
    assert counter.count("the the") == 2  # "the" + " the", both merged
    assert counter.count("xyz xyz") == 7  # no merges: one token per byte
    assert counter.count("") == 0


def test_ranks_parse_exactly_as_tiktokens_loader_and_count_the_same(ranks_file, monkeypatch):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # keep the reference loader from caching the file
    reference_ranks = load_tiktoken_bpe(str(ranks_file))
    assert read_ranks(ranks_file.read_bytes()) == reference_ranks
    reference = tiktoken.Encoding("ref", pat_str=PATTERNS["cl100k_base"], mergeable_ranks=reference_ranks,
                                  special_tokens={})
    text = "Then the council said the 1,450 people waiting <|endoftext|> were the priority."
    assert TokenCounter.from_file(ranks_file).count(text) == len(reference.encode_ordinary(text))


def test_an_edited_file_is_read_again(tmp_path):
    path = write_ranks(tmp_path / "v.tiktoken", merges=())
    assert TokenCounter.from_file(path).count("the the") == 7
    write_ranks(path)
    assert TokenCounter.from_file(path).count("the the") == 2


def test_from_env_uses_the_configured_file_and_pattern(ranks_file, no_download, fresh_warning, caplog):
    counter = TokenCounter.from_env({"QA_TIKTOKEN_FILE": str(ranks_file), "QA_TIKTOKEN_ENCODING": "o200k_base"})
    assert counter.exact and "o200k_base" in counter.name
    assert counter.count("the the") == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("content, message", [
    (b"dGg= 0\nnot-a-valid-line\n", "Line 2"),
    (b"!!!! 0\n", "Line 1"),
])
def test_a_malformed_file_is_rejected(tmp_path, content, message):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(content)
    with pytest.raises(TokenizerError, match=message):
        TokenCounter.from_file(path)


def test_a_vocabulary_without_every_single_byte_is_rejected_not_a_panic(tmp_path):
    # tiktoken would raise a PanicException (a BaseException) on text with a byte it has no rank for
    path = write_ranks(tmp_path / "partial.tiktoken", merges=(), singles=range(97, 123))
    with pytest.raises(TokenizerError, match="single bytes"):
        TokenCounter.from_file(path)


def test_an_unknown_pattern_and_a_missing_file_are_tokenizer_errors(ranks_file, tmp_path):
    with pytest.raises(TokenizerError, match="QA_TIKTOKEN_ENCODING"):
        TokenCounter.from_file(ranks_file, "llama9_base")
    with pytest.raises(TokenizerError, match="Cannot read"):
        TokenCounter.from_file(tmp_path / "absent.tiktoken")
    assert issubclass(TokenizerError, QAError)


def test_without_a_file_or_cache_counts_approximately_and_warns_once(empty_cache, no_download, fresh_warning, caplog):
    caplog.set_level(logging.WARNING, logger="qa.tokens")
    counters = [TokenCounter.load(None, "cl100k_base") for _ in range(3)] + [TokenCounter.from_env({})]
    assert not any(c.exact for c in counters)
    assert counters[0].count("abcdefghi") == 3  # ceil(9 / 4)
    warnings = [r for r in caplog.records if r.name == "qa.tokens" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "approximately" in warnings[0].getMessage()


def test_a_bad_file_falls_back_to_the_approximation_with_a_warning(tmp_path, fresh_warning, caplog):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(b"garbage\n")
    counter = TokenCounter.load(path)
    assert not counter.exact
    assert "Line 1" in caplog.text


def _put_in_cache(cache, source, monkeypatch, expected_sha256=None):
    url = "https://example.invalid/cl100k_base.tiktoken"
    data = source.read_bytes()
    monkeypatch.setitem(tokens.TIKTOKEN_BLOBS, "cl100k_base",
                        (url, expected_sha256 or hashlib.sha256(data).hexdigest()))
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)


def test_a_cached_encoding_file_is_used_without_tiktoken_fetching(ranks_file, empty_cache, no_download, monkeypatch):
    _put_in_cache(empty_cache, ranks_file, monkeypatch)
    counter = TokenCounter.load(None, "cl100k_base")
    assert counter.exact
    assert counter.count("the the") == 2


def test_a_cached_file_with_the_wrong_hash_is_ignored(ranks_file, empty_cache, no_download, fresh_warning, monkeypatch,
                                                     caplog):
    _put_in_cache(empty_cache, ranks_file, monkeypatch, expected_sha256="0" * 64)
    assert not TokenCounter.load(None, "cl100k_base").exact
    assert "sha256" in caplog.text


def test_count_messages_adds_the_template_overhead(ranks_file):
    counter = TokenCounter.from_file(ranks_file)
    messages = [{"role": "system", "content": "the"}, {"role": "user", "content": "xyz xyz"}]
    expected = 3 + (3 + counter.count("system") + 1) + (3 + counter.count("user") + 7)
    assert counter.count_messages(messages) == expected
    approx = TokenCounter.approximate()
    assert approx.count_messages([{"role": "user", "content": "abcde"}]) == 3 + 3 + 1 + 2


def test_fit_passages_drops_the_lowest_ranked_first_even_when_they_are_small():
    approx = TokenCounter.approximate()
    big, small = "b" * 400, "s" * 40  # 100 and 10 tokens
    # size-greedy packing would keep the three small ones; rank order keeps the big best passage
    assert fit_passages([big, small, small, small], 115, approx) == [big, small]
    assert fit_passages([small, big, small], 25, approx) == [small]  # the third is not taken past the gap
    assert fit_passages([small, small], 20, approx) == [small, small]
    assert fit_passages([big], 99, approx) == []
    assert fit_passages([], 100, approx) == []


def test_importing_loads_and_downloads_nothing():
    code = ("import sys, qa.tokens, qa.generate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tiktoken'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
