"""What a question's lookups in the catalogue cost with a national catalogue.

    python bench/catalogue_scale.py [--reports 20000] [--chunks 1000000] [--questions 200]

Every search and answer asks the catalogue which councils, years and reports a question names
(`qa.sides`, through `qa.catalogue.Catalogue`), and a filtered search which chunks a filter keeps
(`Retriever._mask`: `Catalogue.select`, then one gather over each chunk's report number). The
reports here are synthetic (the five real reports' kinds and titles, and as many care providers'
inspection reports, each named for its provider; 300 councils, 2016-2025);
the questions are the eval set's. Prints medians in milliseconds; the last line is key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = [("CQC local authority assessment", "CQC assessment ({c}, {y})"),
         ("Council self-assessment", "Self-assessment ({c}, {y})"),
         ("Peer challenge feedback letter", "Peer challenge letter ({c}, {y})"),
         ("CQC quality statement", "CQC quality statement ({c}, {y})")]
HOMES = ["Oakwood House", "Riverside Care Home", "Meadow View", "Home Care Services", "Elm Lodge Nursing Home"]


def reports(n: int, seed: int = 0) -> list:
    from qa.corpus import DocumentInfo

    rng = random.Random(seed)
    councils = ["Birmingham City Council", "Westminster City Council"] + [f"Council {i} Borough" for i in range(298)]
    out = []
    for i in range(n):
        council, year = rng.choice(councils), rng.randint(2016, 2025)
        if i % 2:  # half are inspections of care providers, each with a name of its own
            doc_type, name = "CQC provider inspection report", f"CQC inspection of {rng.choice(HOMES)} {i} ({year})"
        else:
            doc_type, title = rng.choice(KINDS)
            name = title.format(c=council, y=year)
        out.append(DocumentInfo(f"r{i:06d}", f"r{i}.txt", name, name, council, "CQC", doc_type, str(year), str(year)))
    return out


def median_ms(work, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        work(item)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reports", type=int, default=20000)
    p.add_argument("--chunks", type=int, default=1_000_000)
    p.add_argument("--questions", type=int, default=200)
    args = p.parse_args()

    from qa.catalogue import Catalogue
    from qa.sides import comparison_sides, without_side_names

    documents = reports(args.reports)
    start = time.perf_counter()
    catalogue = Catalogue(documents)
    build_ms = (time.perf_counter() - start) * 1000
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
    questions = (questions * (args.questions // len(questions) + 1))[: args.questions]
    sides_ms = median_ms(lambda q: comparison_sides(q, catalogue), questions)
    names_ms = median_ms(lambda q: without_side_names(q, catalogue), questions)
    councils_ms = median_ms(catalogue.named_councils, questions)

    # each chunk's report (chunks of a report are consecutive, as an index stores them)
    report_of = np.sort(np.random.default_rng(0).integers(0, len(documents), args.chunks))
    chunk_doc_ids = np.array([d.doc_id for d in documents])[report_of]
    filters = [(c, None, None) for c in catalogue.councils[:20]] + [(None, None, y) for y in catalogue.years] + \
              [(None, d.doc_id, None) for d in documents[:20]]

    def mask(f) -> np.ndarray:  # Retriever._mask, without its checks and its cache
        kept = np.zeros(len(catalogue) + 1, dtype=bool)
        kept[catalogue.select(*f)] = True
        return kept[report_of]

    def mask_by_ids(f) -> np.ndarray:  # the way before the catalogue: every chunk's report id looked up
        return np.isin(chunk_doc_ids, sorted(documents[i].doc_id for i in catalogue.select(*f)))

    mask_ms = median_ms(mask, filters)
    isin_ms = median_ms(mask_by_ids, filters[::5])
    assert all(np.array_equal(mask(f), mask_by_ids(f)) for f in filters[::10])

    print(f"{len(documents):,} reports about {len(catalogue.councils)} councils; {args.chunks:,} chunks")
    print(f"catalogue built in {build_ms:.0f} ms (once, when a retriever is made)")
    print(f"a question's comparison sides: median {sides_ms:.3f} ms; its words naming reports taken out: "
          f"{names_ms:.3f} ms; councils it names: {councils_ms:.3f} ms ({len(questions)} eval questions)")
    print(f"a filter's chunks: median {mask_ms:.2f} ms (each chunk's report id looked up instead, as before: "
          f"{isin_ms:.1f} ms); kept for the last 16 filters used")
    print(f"reports={len(documents)} chunks={args.chunks} build_ms={build_ms:.0f} sides_ms={sides_ms:.3f} "
          f"names_ms={names_ms:.3f} councils_ms={councils_ms:.3f} mask_ms={mask_ms:.2f} isin_ms={isin_ms:.1f}")


if __name__ == "__main__":
    main()
