"""Feedback pages of the real course, read as a student reads them.

For every notebook, one submission with a wrong answer to every exercise (the exercises
of release/, each stub replaced by a plausible mistake written here: a sign flipped, a
term forgotten), graded through the grader: each exercise fails a test, and the page of
each failing test cell shows the sentence of its failure, as the kernel raised it, with
nothing removed; no page shows a path of the grading machine. Then a half-right
submission of 01_perceptron opened in Chromium: scores and test names shown, formulas
rendered as MathML, no script, the Content-Security-Policy in place. Its screenshots are
kept in pytest's temporary folder (printed with -s).

All submissions are independent and graded in one run, by one worker (about 45 s).
"""

from __future__ import annotations

import html
import re

import pytest

from grader.config import REPO_ROOT, load_config
from grader.execution.sandbox import missing_pieces
from grader.notebooks import cells as nbs
from grader.notebooks.redaction import REDACTED
from grader.notebooks.sanitize import CSP
from grader.pipeline.autograde import autograde
from grader.pipeline.feedback import generate_feedback
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder, gradebook

COURSE = load_config(REPO_ROOT)
HALF = "01_perceptron"
HALF_WRONG = {"perceptron", "train_perceptron"}  # the rest of the half-right one is right

# grade id of each solution cell -> a body for each stub of the cell, in order.
WRONG = {
    "01_perceptron": {
        "step": ["return np.where(np.asarray(a) >= 0, 1, 0)  # 0 maps to 1"],
        "perceptron": ["return f(x @ w - b)  # the bias subtracted"],
        "logic_gates": [
            "w_and, b_and = np.array([1.0, 1.0]), -0.5  # that is OR\n"
            "w_or, b_or = np.array([1.0, 1.0]), -1.5  # that is AND\n"
            "w_nand, b_nand = np.array([1.0, 1.0]), 1.5  # signs of w flipped"
        ],
        "train_perceptron": [
            """w, b = np.zeros(X.shape[1]), 0.0
mistakes = []
for _ in range(num_epochs):
    count = 0
    for i in rng.permutation(len(X)):
        error = y[i] - perceptron(X[i], w, b)
        if error != 0:
            w = w - lr * error * X[i]  # the update's sign flipped
            b = b - lr * error
            count += 1
    mistakes.append(count)
return w, b, np.array(mistakes)"""
        ],
        "best_linear_accuracy": [
            """grids = np.meshgrid(values, values, values)
w1, w2, b_all = (g.ravel() for g in grids)
y_hat = np.where(X @ np.stack([w1, w2]) + b_all > 0, 1, 0)
return float(np.mean(y_hat == y[:, None]))  # the mean over all perceptrons, not the best"""
        ],
    },
    "02_networks": {
        "dense": ["return f(X @ W.T - b)  # the bias subtracted"],
        "mlp_forward": [
            """H = X
for W, b in layers[:-1]:  # the last layer forgotten
    H = dense(H, W, b, f)
return H"""
        ],
        "xor_layers": [
            """W1 = np.array([[1.0, 1.0], [-1.0, -1.0]])
b1 = np.array([-0.5, 1.5])
W2 = np.array([[1.0, 1.0]])
b2 = np.array([-0.5])  # OR of OR and NAND: always 1"""
        ],
        "network_from_truth_table": [
            """X, y = table
true_rows = np.asarray(X, dtype=float)[np.asarray(y) == 1]
W1 = 2 * true_rows - 1
b1 = 0.5 - true_rows.sum(axis=1)
W2 = np.ones((1, len(true_rows)))
b2 = np.array([0.5])  # the sign flipped: fires always
return [(W1, b1), (W2, b2)]"""
        ],
        "to_sequential": [
            """modules = []
for W, b in layers:
    d_out, d_in = np.shape(W)
    linear = nn.Linear(d_in, d_out)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(W))
        linear.bias.copy_(torch.as_tensor(b))
    modules.append(linear)  # no activation
return nn.Sequential(*modules)"""
        ],
        "count_parameters": [
            "return sum(p.numel() for p in net.parameters() if p.dim() > 1)  # weights only",
            "return sum(d_out * d_in + d_out for d_in, d_out in zip(sizes[:-1], sizes[1:]))",
        ],
    },
    "03_deep_networks": {
        "bump_network": [
            """t = np.linspace(a, b, num_units + 1)
width = (b - a) / num_units
steepness = 100 / width
W1 = np.full((num_units, 1), steepness)
b1 = -steepness * (t[:-1] + width / 2)
W2 = -np.diff(fn(t))[None, :]  # steps down where fn climbs
b2 = np.array([fn(t[:1])[0]])
return W1, b1, W2, b2"""
        ],
        "tent_parameters": [
            """W1 = np.array([[1.0], [1.0]])
b1 = np.array([0.0, -0.5])
W2 = np.array([[2.0, 4.0]])  # the sign of the second slope flipped
b2 = np.array([0.0])
return W1, b1, W2, b2"""
        ],
        "count_linear_pieces": [
            """slopes = np.diff(y) / np.diff(x)
return int(np.count_nonzero(np.abs(np.diff(slopes)) > tol))  # kinks, not pieces"""
        ],
        "make_good_model": ["return nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())  # a line"],
        "make_mlp": [
            """layers = []
d_in = 64
for d_out in hidden_sizes:
    layers.append(nn.Linear(d_in, d_out))  # no ReLU
    d_in = d_out
layers.append(nn.Linear(d_in, 10))
return nn.Sequential(*layers)"""
        ],
    },
    "04_learning": {
        "mse_loss": [
            """k = len(y_hat)
error = y_hat - y
return 0.5 * np.sum(error**2) / k, (y - y_hat) / k  # the gradient's sign flipped"""
        ],
        "sigmoid": [
            "return np.exp(-np.logaddexp(0.0, a))  # sigmoid(-a)",
            "s = sigmoid(a)\nreturn s * (1 - s)",
        ],
        "relu": ["return np.minimum(a, 0.0)  # min, not max", "return (a > 0).astype(float)"],
        "gradient_descent": [
            """trajectory = [np.array(theta0, dtype=float)]
for _ in range(num_steps):
    theta = trajectory[-1]
    trajectory.append(theta + lr * grad_fn(theta))  # ascent
return np.array(trajectory)"""
        ],
        "forward": [
            """H = [X]
A = [None]
for l in (1, 2, 3):
    A.append(H[-1] @ params[f"W{l}"].T - params[f"b{l}"])  # the bias subtracted
    H.append(f(A[-1]))
return H[3], (A, H)"""
        ],
        "backward": [
            """A, H = cache
_, dH = mse_loss(H[3], y)
grads = {}
for l in (3, 2, 1):
    delta = dH * f_grad(A[l])
    grads[f"W{l}"] = delta.T @ H[l - 1]
    grads[f"b{l}"] = -delta.sum(axis=0)  # the sign flipped
    dH = delta @ params[f"W{l}"]
return grads"""
        ],
        "minibatches": [
            """order = rng.permutation(len(X))
for start in range(0, len(X) - batch_size + 1, batch_size):  # the last, short batch lost
    batch = order[start : start + batch_size]
    yield X[batch], y[batch]"""
        ],
        "sgd_step": ["return theta + lr * grad, state  # ascent"],
        "momentum_step": [
            """if state is None:
    delta = lr * grad
else:
    delta = lr * grad - beta * state  # the sign of beta flipped
return theta - delta, delta"""
        ],
        "adam_step": [
            """if state is None:
    state = (np.zeros_like(grad), np.zeros_like(grad), 0)
m, v, t = state
t += 1
m = beta1 * m + (1 - beta1) * grad
v = beta2 * v + (1 - beta2) * grad**2
return theta - lr * m / (np.sqrt(v) + eps), (m, v, t)  # no bias correction"""
        ],
        "train_epoch": [
            """total_loss = 0.0
for X_batch, Y_batch in minibatches(X, Y, batch_size, rng):
    y_hat, cache = forward(X_batch, params)
    loss, _ = mse_loss(y_hat, Y_batch)
    total_loss += loss * len(X_batch)
    grads = backward(Y_batch, cache, params)
    for name in params:
        params[name], state[name] = adam_step(params[name], grads[name], state.get(name), lr=lr)
return total_loss  # the sum, not the mean"""
        ],
    },
    "05_convolution": {
        "num_parameters": ["m = n - K + 1\nreturn m * n, m * K, K  # the biases forgotten"],
        "conv1d": [
            """h, k = np.asarray(h, dtype=float), np.asarray(k, dtype=float)
return np.convolve(h, k, mode="valid") + b  # the kernel flipped"""
        ],
        "conv1d_matrix": [
            """k = np.asarray(k, dtype=float)
W = np.zeros((n - len(k) + 1, n))
for i in range(len(W)):
    W[i, i : i + len(k)] = k[::-1]  # the kernel flipped
return W"""
        ],
        "is_shift_equivariant": [
            """y = layer(h)
y_shifted = layer(np.roll(h, shift))
return bool(np.allclose(y_shifted, y))  # compared without the shift"""
        ],
        "conv2d": [
            """view = np.lib.stride_tricks.sliding_window_view
windows = view(X, K.shape[2:], axis=(1, 2))
return np.einsum("ircuv,oiuv->orc", windows, K)  # the padding ignored"""
        ],
        "max_pool2d": [
            """C, H, W = X.shape
H_out, W_out = H // size, W // size
blocks = X[:, : H_out * size, : W_out * size].reshape(C, H_out, size, W_out, size)
return blocks.mean(axis=(2, 4))  # the mean, not the max"""
        ],
        "make_cnn": [
            """return nn.Sequential(
    nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(16 * 4 * 4, 1),  # one score, not ten
)"""
        ],
    },
}

STUB = re.compile(r"^([ \t]*)raise NotImplementedError\(.*\)[ \t]*$", re.MULTILINE)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def release(assignment: str):
    return nbs.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb")


def fill(stubbed: str, bodies: list[str]) -> str:
    """A release cell with its stubs, in order, replaced by `bodies` (indented like them)."""
    left = list(bodies)

    def body(stub: re.Match) -> str:
        return "\n".join(stub[1] + line if line else line for line in left.pop(0).split("\n"))

    filled = STUB.sub(body, stubbed)
    assert not left and not STUB.search(filled), f"the stubs of {stubbed[:60]!r} changed"
    return filled


def submission(assignment: str, wrong: set[str]):
    """The release notebook with a wrong answer to the exercises `wrong` and the reference
    answer (source/'s solution) to the others."""
    nb = release(assignment)
    reference = {
        grade_id(c): c.source
        for c in as_handed_in(
            nbs.read(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb")
        ).cells
        if nbs.is_solution(c)
    }
    for cell in nb.cells:
        if nbs.is_solution(cell):
            cell.source = (
                fill(cell.source, WRONG[assignment][grade_id(cell)])
                if grade_id(cell) in wrong
                else reference[grade_id(cell)]
            )
    return nb


def test_every_exercise_has_a_wrong_answer():
    assert set(WRONG) == set(COURSE.assignments)
    for assignment, answers in WRONG.items():
        exercises = {
            grade_id(c)
            for c in release(assignment).cells
            if nbs.is_solution(c) and c.cell_type == "code"
        }  # written answers aside
        assert set(answers) == exercises, f"{assignment}: write a wrong answer to each exercise"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("course_feedback")
    course = folder.prepare(COURSE, root / "grading", list(WRONG))
    handed_in = {("wrong", a): submission(a, set(WRONG[a])) for a in WRONG}
    handed_in["half", HALF] = submission(HALF, HALF_WRONG)
    for (student, assignment), nb in handed_in.items():
        path = root / "hand-in" / student / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbs.write(nb, path)
        folder.submit(course, student, assignment, path)
    # One worker: a second one's start (its imports, a kernel template that imports torch)
    # costs more CPU than it saves in time for six notebooks, and nothing here depends on it.
    outcomes = autograde(course, list(WRONG), jobs=1, progress=False, unsafe=bool(missing_pieces()))
    assert {(o.student, o.assignment, o.status) for o in outcomes} == {
        (s, a, "graded") for s, a in handed_in
    }, outcomes
    generate_feedback(course, list(WRONG))
    return course


def page(course, student: str, assignment: str) -> str:
    return (course.root / "feedback" / student / assignment / f"{assignment}.html").read_text()


def words(text: str) -> str:
    return " ".join(text.split())


def page_text(page: str) -> str:
    """What a page says, its tags removed and its whitespace collapsed."""
    return words(html.unescape(re.sub(r"<[^>]*>", "", page)))


def exercises(nb) -> list[tuple[list[str], list]]:
    """(solution cells, the test cells after them) of each exercise, in order."""
    groups = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "markdown":
            continue  # a written answer: graded by hand, no test
        if meta.get("solution"):
            if not groups or groups[-1][1]:
                groups.append(([], []))
            groups[-1][0].append(meta["grade_id"])
        elif meta.get("grade") and groups:
            groups[-1][1].append(cell)
    return groups


@pytest.mark.slow
@pytest.mark.parametrize("assignment", list(WRONG))
def test_each_wrong_answer_fails_a_test_whose_sentence_the_page_shows(graded, assignment):
    nb = nbs.read(graded.root / "autograded" / "wrong" / assignment / f"{assignment}.ipynb")
    text = page_text(page(graded, "wrong", assignment))
    assert REDACTED not in text  # an honest submission quotes no hidden test
    for solutions, tests in exercises(nb):
        failures = [(grade_id(t), o) for t in tests for o in t.outputs if o.output_type == "error"]
        assert failures, f"{assignment}: no test of {solutions} fails on the wrong answer"
        for test, failure in failures:
            assert failure.evalue.strip(), f"{assignment}: {test} fails without a message"
            sentence = words(f"{failure.ename}: {failure.evalue}")
            assert sentence in text, f"{assignment}: {test}'s sentence not shown: {sentence}"


GRADING_MACHINE = (
    "/tmp/",
    "ipykernel_",
    "site-packages",
    "/submission",
    str(REPO_ROOT),
    "/root/",
    "/home/",
    ".venv",
    "Traceback (most recent call last)",
)


@pytest.mark.slow
def test_no_page_shows_a_path_of_the_grading_machine(graded):
    pages = sorted((graded.root / "feedback").rglob("*.html"))
    assert len(pages) == len(WRONG) + 1
    for path in pages:
        text = page_text(path.read_text())
        shown = [p for p in GRADING_MACHINE if p in text]
        assert not shown, f"{path.relative_to(graded.root)} shows {shown}"


@pytest.mark.slow
def test_a_half_right_page_reads_well_in_a_browser(graded, chromium, tmp_path_factory):
    path = graded.root / "feedback" / "half" / HALF / f"{HALF}.html"
    shots = tmp_path_factory.mktemp("screenshots")
    browser_page = chromium.new_page(viewport={"width": 1100, "height": 900})
    console = []
    browser_page.on("console", lambda message: console.append(message.text))
    browser_page.goto(path.as_uri())
    browser_page.screenshot(path=str(shots / "top.png"))
    state = browser_page.evaluate("""() => {
        const formula = document.querySelector('math[display="block"]');
        formula.scrollIntoView();
        const box = formula.getBoundingClientRect();
        const csp = document.head.firstElementChild;
        return {
            scripts: document.scripts.length,
            csp: [csp.tagName, csp.httpEquiv, csp.content],
            formulas: document.getElementsByTagName('math').length,
            mathml: formula.namespaceURI,
            display: getComputedStyle(formula).display,
            size: [box.width, box.height],
            prose: Array.from(document.querySelectorAll('.text_cell_render'))
                        .map(e => e.innerText).join('\\n'),
            text: document.body.innerText,
            toc: document.getElementById('toc').innerText,
        };
    }""")
    browser_page.screenshot(path=str(shots / "formula.png"))
    browser_page.locator('a[name="test_perceptron"]').scroll_into_view_if_needed()
    browser_page.screenshot(path=str(shots / "failure.png"))
    browser_page.close()
    print(f"screenshots of {path.name}: {shots}")
    # No script, none ran, and the policy heads the page.
    assert state["scripts"] == 0 and "<script" not in path.read_text().lower()
    assert state["csp"] == ["META", "Content-Security-Policy", CSP]
    assert all("glyphicons-halflings" in m for m in console), console
    # Formulas are MathML that the browser laid out, and no TeX is left in the prose.
    assert state["formulas"] > 20 and state["mathml"] == "http://www.w3.org/1998/Math/MathML"
    assert state["display"] == "block math" and min(state["size"]) > 10, state
    assert "$" not in state["prose"] and "\\frac" not in state["prose"]
    # Every test by its name with its score, the total, and the failing tests' sentences.
    text = words(state["text"])
    grades = {
        g.grade_id: g
        for g in gradebook.grades(graded)
        if g.student == "half" and g.assignment == HALF
    }
    for g in grades.values():
        shown = "pending" if g.pending else float(g.points)
        assert f"{g.grade_id} (Score: {shown} / {float(g.max_points)})" in text
    total = sum(g.points for g in grades.values()), sum(g.max_points for g in grades.values())
    pending = sum(g.max_points for g in grades.values() if g.pending)
    assert 0 < total[0] < total[1]
    tail = f" + {float(pending)} pending" if pending else ""
    assert f"{HALF} (Score: {float(total[0])} / {float(total[1])}{tail})" in text
    assert "Test cell" not in text
    nb = nbs.read(graded.root / "autograded" / "half" / HALF / f"{HALF}.ipynb")
    failed = [
        o
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert failed and all(words(f"{o.ename}: {o.evalue}") in text for o in failed)
    # The contents say why each failed test failed: its sentence's first line.
    assert all(
        words(o.evalue.strip().splitlines()[0])[:150] in words(state["toc"]) for o in failed
    ), state["toc"]
