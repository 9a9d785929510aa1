"""`python -m grader similarity`'s comparison on classes of 100 to 1,000 students: its time,
and whether the disguised copies come first.

    python bench/similarity.py
    python bench/similarity.py --students 300 3000

Each class is grader.pipeline.synthetic's `similarity_class`: random answers to 5 exercises,
one student in ten a renamed copy of another's. The table gives the seconds that making the
answers (tokens, fingerprints) and comparing them take, the pairs that share anything, and
whether the copies are the first pairs, each scoring over 0.95.
"""

from __future__ import annotations

import argparse
import time

from grader.pipeline.similarity import compare
from grader.pipeline.synthetic import fingerprinted, similarity_class
from grader.process import setup_process


def measure(students: int) -> tuple[float, int, bool]:
    answers, stubs, copies = similarity_class(students, copies=students // 20)
    start = time.perf_counter()
    pairs, _ = compare(fingerprinted(answers, stubs))
    took = time.perf_counter() - start
    first = pairs[: len(copies)]
    found = {(p.a, p.b) for p in first} == set(copies.items()) and all(
        p.score > 0.95 for p in first
    )
    return took, len(pairs), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[100, 300, 1000])
    args = parser.parse_args()
    setup_process()
    row = "{:>8}  {:>14}  {:>13}  {:>7}  {}"
    print(row.format("students", "pairs compared", "pairs sharing", "seconds", "copies first"))
    for n in args.students:
        took, shared, found = measure(n)
        print(row.format(n, n * (n - 1) // 2, shared, f"{took:.1f}", "yes" if found else "NO"))


if __name__ == "__main__":
    main()
