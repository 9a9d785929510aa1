"""`python -m grader similarity`: a copied pair first, independent answers low, pages escaped,
and disguised copies first in a class (its time for 100 to 1,000 students: bench/similarity.py).

The class hands in 01_perceptron (the real release, so that the starter code is the real
one). ann wrote her own answers; ben copied them and renamed every variable, changed and
added comments, dropped a docstring and reformatted; cid and deb each wrote a genuinely
different correct implementation of every exercise; ref handed in the reference solutions;
blank handed in the untouched release. Every answer is checked to pass the assignment's
tests, hidden ones included.
"""

from __future__ import annotations

import shutil
import textwrap

import nbformat
import pytest

from grader.cli import main
from grader.pipeline.similarity import (
    compare,
    make_answer,
    normalise,
    similarity,
    write_similarity,
)
from grader.pipeline.synthetic import as_handed_in, fingerprinted, similarity_class
from grader.workdir import folder

ASSIGNMENT = "01_perceptron"

ANN = {
    "step": """
        arr = np.asarray(a)
        result = (arr > 0).astype(int)
        return result
    """,
    "perceptron": """
        activation = np.dot(x, w) + b
        return f(activation)
    """,
    "logic_gates": """
        w_and = np.array([0.6, 0.6])
        b_and = -1.0
        w_or = np.array([1.2, 1.2])
        b_or = -1.0
        w_nand = np.array([-0.6, -0.6])
        b_nand = 1.0
    """,
    "train_perceptron": """
        n, d = X.shape
        weights = np.zeros(d)
        bias = 0.0
        errors = np.zeros(num_epochs, dtype=int)
        for epoch in range(num_epochs):
            for idx in rng.permutation(n):
                pred = 1 if X[idx] @ weights + bias > 0 else 0
                delta = y[idx] - pred
                if delta != 0:
                    weights = weights + lr * delta * X[idx]
                    bias = bias + lr * delta
                    errors[epoch] += 1
        return weights, bias, errors
    """,
    "best_linear_accuracy": """
        best = 0.0
        for w1 in values:
            for w2 in values:
                for b in values:
                    pred = (X @ np.array([w1, w2]) + b > 0).astype(int)
                    best = max(best, np.mean(pred == y))
        return float(best)
    """,
}

BEN = {  # ann's answers: names, comments, docstrings and layout changed
    "step": """
        # turn the input into an array first
        values = np.asarray( a )
        out = ( values>0 ).astype(int)   # True -> 1

        return out
    """,
    "perceptron": """
        z = np.dot(x,w)+b  # weighted sum plus bias
        return f( z )
    """,
    "logic_gates": """
        # AND gate
        w_and = np.array([0.6,0.6]); b_and = -1.0
        # OR gate
        w_or = np.array([1.2,
                         1.2])
        b_or = -1.0
        w_nand = np.array([-0.6, -0.6])   # NAND = not AND
        b_nand = 1.0
    """,
    "train_perceptron": """
        '''My own training loop.'''
        num_rows, num_cols = X.shape
        W = np.zeros(num_cols)
        B = 0.0
        wrong = np.zeros(num_epochs, dtype=int)
        for e in range(num_epochs):
            # a new random order every epoch
            for k in rng.permutation(num_rows):
                guess = 1 if X[k] @ W + B > 0 else 0
                diff = y[k] - guess
                if diff != 0:
                    W = W + lr * diff * X[k]
                    B = B + lr * diff
                    wrong[e] += 1
        return W, B, wrong
    """,
    "best_linear_accuracy": """
        top = 0.0
        for a1 in values:
            for a2 in values:
                for c in values:
                    # predictions of this perceptron
                    p = (X @ np.array([a1, a2]) + c > 0).astype(int)
                    top = max(top, np.mean(p == y))

        return float(top)
    """,
}

CID = {
    "step": """
        return np.heaviside(np.asarray(a, dtype=float), 0.0).astype(int)
    """,
    "perceptron": """
        x = np.asarray(x, dtype=float)
        return f(np.matmul(x, w) + b)
    """,
    "logic_gates": """
        w_and, b_and = np.array([2.0, 2.0]), -3.0
        w_or, b_or = np.array([2.0, 2.0]), -1.0
        w_nand, b_nand = np.array([-2.0, -2.0]), 3.0
    """,
    "train_perceptron": """
        w = np.zeros(X.shape[1])
        b = 0.0
        mistakes = []
        epoch = 0
        while epoch < num_epochs:
            wrong = 0
            for i in rng.permutation(len(y)):
                y_hat = step(np.dot(w, X[i]) + b)
                if y_hat != y[i]:
                    sign = 1 if y[i] == 1 else -1
                    w = w + sign * lr * X[i]
                    b = b + sign * lr
                    wrong += 1
            mistakes.append(wrong)
            epoch += 1
        return w, b, np.array(mistakes)
    """,
    "best_linear_accuracy": """
        from itertools import product

        accuracies = [np.mean(np.where(X @ np.array([p, q]) + r > 0, 1, 0) == y)
                      for p, q, r in product(values, repeat=3)]
        return float(max(accuracies))
    """,
}

DEB = {
    "step": """
        z = np.asarray(a)
        return np.sign(np.maximum(z, 0)).astype(int)
    """,
    "perceptron": """
        s = (np.asarray(x) * w).sum(axis=-1) + b
        return f(s)
    """,
    "logic_gates": """
        w_and = np.ones(2)
        b_and = -1.5
        w_or = np.ones(2)
        b_or = -0.5
        w_nand = -np.ones(2)
        b_nand = 1.5
    """,
    "train_perceptron": """
        Xb = np.hstack([X, np.ones((len(X), 1))])  # the bias as one more weight
        theta = np.zeros(Xb.shape[1])
        history = []
        for _ in range(num_epochs):
            count = 0
            for k in rng.permutation(Xb.shape[0]):
                guess = int(Xb[k] @ theta > 0)
                if guess != y[k]:
                    theta += lr * (y[k] - guess) * Xb[k]
                    count += 1
            history.append(count)
        return theta[:-1], float(theta[-1]), np.asarray(history)
    """,
    "best_linear_accuracy": """
        grid = np.array(np.meshgrid(values, values, values)).reshape(3, -1)  # w1, w2, b
        scores = X @ grid[:2] + grid[2]  # (n, 17**3)
        hits = (scores > 0).astype(int) == y[:, None]
        return float(hits.mean(axis=0).max())
    """,
}

STUDENTS = {"ann": ANN, "ben": BEN, "cid": CID, "deb": DEB}


def fill(stub: str, body: str) -> str:
    """The release cell `stub` with its `# YOUR CODE HERE` and `raise NotImplementedError`
    lines replaced by `body`, at their indentation."""
    lines = stub.splitlines()
    at = next(i for i, line in enumerate(lines) if "raise NotImplementedError" in line)
    start = at - 1 if "YOUR CODE HERE" in lines[at - 1] else at
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), indent)
    return "\n".join(lines[:start] + body.splitlines() + lines[at + 1 :])


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def handed_in(release, answers: dict[str, str]):
    nb = nbformat.reads(nbformat.writes(release), 4)
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = fill(cell.source, answers[grade_id(cell)])
    return nb


def run_tests(source, nb) -> None:
    """Run the student's solution cells with the source's setup and test cells (hidden tests
    included) in this process; an AssertionError if a test fails."""
    answers = {grade_id(c): c.source for c in nb.cells if grade_id(c)}
    namespace: dict = {}
    setup = next(c for c in source.cells if c.cell_type == "code")
    exec(setup.source, namespace)
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            exec(answers[meta["grade_id"]], namespace)
        elif meta.get("grade"):
            exec(cell.source, namespace)


@pytest.fixture(scope="module")
def grading(tmp_path_factory, repo_course):
    root = tmp_path_factory.mktemp("similarity")
    course = folder.prepare(repo_course, root / "grading", [ASSIGNMENT])
    release = nbformat.read(str(course.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), 4)
    source = nbformat.read(str(course.root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), 4)
    class_ = {student: handed_in(release, answers) for student, answers in STUDENTS.items()}
    class_["ref"] = as_handed_in(source)
    class_["blank"] = release
    for student, nb in class_.items():
        path = root / f"{student}.ipynb"
        nbformat.write(nb, str(path))
        folder.submit(course, student, ASSIGNMENT, path)
    return course, source, class_


@pytest.mark.slow
def test_every_planted_answer_is_correct(grading):
    _, source, class_ = grading
    for student in [*STUDENTS, "ref"]:
        run_tests(source, class_[student])  # raises if any test, hidden ones too, fails


def test_the_copied_pair_comes_first_and_independent_answers_score_low(grading):
    course, _, _ = grading
    result = similarity(course, ASSIGNMENT)
    assert sorted(result.students) == sorted([*STUDENTS, "ref", "blank"])
    first = result.pairs[0]
    assert (first.a, first.b) == ("ann", "ben")
    assert first.score > 0.95, first
    assert [m.grade_id for m in first.matches] == list(result.answers)  # all five compared
    pairs = {(p.a, p.b): p for p in result.pairs}
    independent = pairs.get(("cid", "deb"))
    assert independent is None or independent.score < 0.25, independent
    # Every pair but the copied one is far below it.
    assert all(p.score < 0.5 for p in result.pairs[1:]), result.pairs[1:4]
    # The untouched release holds nothing but starter code: it is like no one.
    assert not [p for p in result.pairs if "blank" in (p.a, p.b)]
    assert not any(result.answers[g]["blank"].grams for g in result.answers)


def test_command_writes_the_listing_and_side_by_side_pages(grading, tmp_path, capsys):
    course, _, _ = grading
    out = tmp_path / "similarity"
    code = main(
        [
            "--root",
            str(course.config_file.parent),
            "--workdir",
            str(course.root),
            "similarity",
            ASSIGNMENT,
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    lines = printed.splitlines()
    assert lines[2].split()[1:3] == ["ann", "ben"], printed
    assert "not a verdict" in printed or "lead" in printed
    index = (out / "index.html").read_text()
    assert "pair-001.html" in index and "pair-002.html" not in index  # only ann and ben >= 0.5
    pair = (out / "pair-001.html").read_text()
    assert "weights = weights + lr * delta * X[idx]" in pair  # ann's side
    assert "W = W + lr * diff * X[k]" in pair  # ben's side
    assert 'class="shared"' in pair and 'class="starter"' in pair
    assert (out / "pairs.csv").read_text().splitlines()[1].startswith("ann,ben,")


def test_command_lists_as_many_pairs_as_its_options_ask(grading, tmp_path, capsys):
    """--min-score and --top reach the printed table and the pages alike."""
    course, _, _ = grading
    out = tmp_path / "similarity"
    command = ["--root", str(course.config_file.parent), "--workdir", str(course.root)]
    command += ["similarity", ASSIGNMENT, "--out", str(out), "--min-score", "0", "--top", "2"]
    assert main(command) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    rows = [line.split()[1:3] for line in table[2:]]  # under the header and its rule
    assert rows[0] == ["ann", "ben"] and len(rows) == 2, table
    assert (out / "pair-002.html").is_file() and not (out / "pair-003.html").exists()


def test_normalising_ignores_names_comments_docstrings_and_layout():
    one = 'def f(x):\n    """Doc."""\n    total = x + 1  # add\n    return total * total\n'
    two = "def f(x):\n    # no docstring\n    s = (x\n         + 1)\n\n    return s*s\n"
    kept = {"f", "x"}
    a, b = normalise(one, kept)[0], normalise(two, kept)[0]
    assert a == [
        "def",
        "f",
        "(",
        "x",
        ")",
        ":",
        ";",
        "{",
        "$0",
        "=",
        "x",
        "+",
        "1",
        ";",
        "return",
        "$0",
        "*",
        "$0",
        ";",
        "}",
    ]
    assert b == a[:10] + ["(", "x", "+", "1", ")"] + a[13:]
    # attributes, keyword arguments and the course's names keep their spelling
    texts, _ = normalise("y = np.sum(z, axis=0)", {"np"})
    assert texts == ["$0", "=", "np", ".", "sum", "(", "$1", ",", "axis", "=", "0", ")", ";"]


def test_a_line_added_at_the_top_shifts_nothing():
    stub = "def f(x):\n    raise NotImplementedError()"
    body = (
        "def f(x):\n    acc = 0\n    for item in x:\n        acc = acc + item * item\n"
        "    return acc\n"
    )
    plain = make_answer("a", "f", body, stub, {"f", "x"})
    added = make_answer("b", "f", "import os\nhelper = 1\n" + body, stub, {"f", "x"})
    assert set(plain.grams) <= set(added.grams)


def test_unparsable_answers_are_compared_roughly():
    stub = "def f(x):\n    raise NotImplementedError()"
    broken = "def f(x:\n    return [v * 2 for v in x if v > 0\n"
    answer = make_answer("a", "f", broken, stub, {"f", "x"})
    assert len(answer.grams) >= 5


@pytest.mark.slow
def test_hostile_ids_and_code_are_escaped_and_run_nothing(grading, repo_course, tmp_path, chromium):
    course, _, class_ = grading
    root = tmp_path / "grading"
    shutil.copytree(course.root, root)
    copy = folder.open_workdir(repo_course, root)
    hostile_id = "<img src=x onerror=window.__pwned=1>"
    nb = nbformat.reads(nbformat.writes(class_["ann"]), 4)
    for cell in nb.cells:
        if grade_id(cell) == "step":
            cell.source += "\n# </pre><script>window.__pwned=2</script>\n"
    target = root / "submitted" / hostile_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    target.parent.mkdir(parents=True)
    nbformat.write(nb, str(target))
    result, index = write_similarity(copy, ASSIGNMENT, tmp_path / "out")
    assert any(hostile_id in (p.a, p.b) for p in result.pairs[:3])
    pages = [index, *sorted((tmp_path / "out").glob("pair-*.html"))]
    assert len(pages) == 4  # ann, ben and the hostile copy: three pairs
    for path in pages:
        text = path.read_text()
        assert "<script" not in text and "<img" not in text, path
        page = chromium.new_page()
        page.goto(path.as_uri())
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.scripts.length") == 0
        if path != index and hostile_id in page.title():
            body = page.inner_text("body")
            assert "</pre><script>window.__pwned=2</script>" in body  # shown as text
        page.close()
    page = chromium.new_page()
    page.goto(index.as_uri())
    assert hostile_id in page.inner_text("body")  # the id, shown as text
    page.close()


# --- a class with disguised copies ------------------------------------------------------------


def test_disguised_copies_in_a_class_come_first():
    """60 students of random answers to 5 exercises, 10 of them copies of another's with every
    name changed: those 10 pairs first, nearly identical, and no independent pair close. (How
    long a class of 100 to 1,000 takes: bench/similarity.py.)"""
    answers, stubs, copies = similarity_class(60, copies=10)
    pairs, _ = compare(fingerprinted(answers, stubs))
    assert {(p.a, p.b) for p in pairs[:10]} == set(copies.items())
    assert all(p.score > 0.95 for p in pairs[:10]) and pairs[10].score < 0.6
