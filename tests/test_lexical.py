"""The lexical index reads questions as bm25s read the chunks when it built the index."""

import json
from pathlib import Path

import bm25s

from qa.acronyms import expand
from qa.lexical import STOPWORDS

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def test_question_words_are_bm25s_words_on_the_whole_corpus(retriever):
    lex = retriever.index.lexical
    texts = [c.text for c in retriever.index.chunks]
    texts += [json.loads(line)["question"] for line in QUESTIONS.open(encoding="utf-8")]
    texts += ["", "Ça coûte 12€: l'année 2023/24, a naïve café_x __ A1 b2 x", "DoLS, BSL and TEC"]
    for text in texts:
        for acronyms in (False, True):
            expected = bm25s.tokenize([expand(text, lex.acronyms) if acronyms else text], stopwords=STOPWORDS,
                                      stemmer=lex._stem, return_ids=False, show_progress=False)[0]
            assert lex.tokens(text, expand_acronyms=acronyms) == expected, text
