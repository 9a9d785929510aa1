"""`python -m grader similarity ASSIGNMENT`: pairs of submissions whose answers are alike.

A pair found here is a lead for a person to read, never a verdict: short exercises have few
good answers, students may work together where the course allows it, and a pair that shares
a source outside the class looks just like a pair that copied from each other.

Each solution cell (by grade id) of each submission in submitted/ is compared with the same
cell of every other submission:

1. normalised: Python's tokenize, without comments, docstrings (and other statements that are
   only a string), blank lines and layout; string literals become one token; names the student
   chose become positional placeholders (the first new name is $0, the next $1, ...), so
   renaming variables changes nothing. Names the course gives keep their spelling: Python's
   keywords and builtins, attributes (`np.where`), keyword arguments, names imported or
   defined in the release notebook, names the test cells expect the student to define, and
   the names of the cell's stub (the function and its parameters);
2. the starter code every student got (the release cell: signature, docstring, stub) is cut
   out: the runs of at least STARTER_RUN tokens that the answer shares with it, in order
   (difflib), and any fingerprint of the stub itself;
3. fingerprinted: every run of K tokens of what is left is hashed, its placeholders numbered
   afresh within the run, so that a line added at the top with a new name shifts nothing (a
   cell is a few dozen to a few hundred tokens, so all runs are kept rather than winnowed).
   A fingerprint held by more than max(COMMON_MIN, COMMON_SHARE of the class) answers is
   the common way to write that line and counts for no pair.

An inverted index (fingerprint -> students) yields the pairs that share anything; all other
pairs score 0 and are never looked at, so a class of hundreds takes seconds (tests: 300
students, 5 exercises). Only rare fingerprints count, on both sides of the ratio: a pair's
score for one exercise is the share of the rare fingerprints of the smaller answer (the one
with fewer) that the other answer holds too, so two copies score 1 however idiomatic the
rest; its overall score is the same share over every exercise that both answered with
something of their own (shared / the smaller answers' rare fingerprints, summed), so one
copied exercise among five honest ones shows, but less than five copied ones.

reports/similarity/<assignment>/: index.html (the pairs above --min-score, best first), one
page per pair with the two answers side by side (lines that hold shared fingerprints marked,
the starter code greyed), and pairs.csv with every pair that shares anything. Everything a
submission wrote is escaped, and the pages carry the feedback pages' Content-Security-Policy.
"""

from __future__ import annotations

import ast
import builtins
import csv
import difflib
import io
import json
import keyword
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from pathlib import Path

import nbformat
import numpy as np

from grader.config import GradingFolder
from grader.notebooks.cells import text_of
from grader.notebooks.defang import MAX_NOTEBOOK_BYTES
from grader.notebooks.sanitize import html_page
from grader.workdir.folder import check_assignments

K = 5  # tokens per fingerprint
STARTER_RUN = 3  # tokens in a row shared with the stub that count as starter code
COMMON_MIN, COMMON_SHARE = 10, 0.1  # a fingerprint held by more answers is common
MAX_SOURCE = 20_000  # characters of a cell that are compared (and shown)
MIN_SCORE, TOP = 0.5, 50

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
LAYOUT = {tokenize.NEWLINE: ";", tokenize.INDENT: "{", tokenize.DEDENT: "}"}
PLACEHOLDER = "$"  # of a name the student chose: $0, $1, ... (no Python name starts so)
ROUGH = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\S")


@dataclass
class Answer:
    """One student's solution cell, normalised and fingerprinted."""

    student: str
    grade_id: str
    source: str
    texts: list[str]  # the normalised tokens
    lines: list[int]  # the (1-based) line of each token in `source`
    starter: list[bool]  # whether each token is starter code
    starter_lines: set[int]  # lines of `source` that are lines of the stub
    grams: dict[int, list[int]] = field(default_factory=dict)  # fingerprint -> token offsets


@dataclass
class Match:
    """What two answers to one exercise share."""

    grade_id: str
    shared: int  # rare fingerprints both hold
    smaller: int  # rare fingerprints of the answer with fewer

    @property
    def score(self) -> float:
        return self.shared / self.smaller if self.smaller else 0.0


@dataclass
class Pair:
    a: str
    b: str
    matches: list[Match]  # every exercise both answered, in notebook order

    @property
    def shared(self) -> int:
        return sum(m.shared for m in self.matches)

    @property
    def score(self) -> float:
        smaller = sum(m.smaller for m in self.matches)
        return self.shared / smaller if smaller else 0.0


@dataclass
class Similarity:
    assignment: str
    pairs: list[Pair]  # every pair that shares a rare fingerprint, best first
    answers: dict[str, dict[str, Answer]]  # grade id -> student -> answer
    students: list[str]  # whose submission was read
    unreadable: list[tuple[str, str]]  # (student, why)
    common: dict[str, set[int]]  # grade id -> common fingerprints


# pairs.csv: these, then the score of each answer compared.
PAIR_COLUMNS = ("student_a", "student_b", "score", "shared_fingerprints")


# --- normalising -----------------------------------------------------------------------------


def _tokens(source: str) -> list[tuple[int, str, int]]:
    """(type, text, line) of Python's tokenize, or of a rough split where the cell is not
    Python that tokenize reads to its end (a syntax error, an IPython magic)."""
    try:
        return [
            (t.type, t.string, t.start[0])
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        rough = []
        for number, line in enumerate(source.splitlines(), 1):
            line = re.sub(r"#.*", "", line)
            for match in ROUGH.finditer(line):
                text = match.group()
                kind = (
                    tokenize.NAME
                    if text[0].isalpha() or text[0] == "_"
                    else tokenize.NUMBER
                    if text[0].isdigit()
                    else tokenize.OP
                )
                rough.append((kind, text, number))
            rough.append((tokenize.NEWLINE, "\n", number))
        return rough


def normalise(source: str, kept: set[str]) -> tuple[list[str], list[int]]:
    """The cell's tokens as compared (see the module's docstring), and the line of each."""
    significant = [t for t in _tokens(source) if t[0] not in SKIPPED]
    texts, lines = [], []
    names: dict[str, str] = {}  # a name as written -> its placeholder
    depth, def_depth = 0, None  # bracket depth; the depth of a `def` header being read
    skip_to = -1
    for i, (kind, text, line) in enumerate(significant):
        if i <= skip_to:
            continue
        before = significant[i - 1] if i else None
        after = significant[i + 1] if i + 1 < len(significant) else None
        if kind == tokenize.STRING and (before is None or before[0] in LAYOUT):
            j = i
            while j < len(significant) and significant[j][0] == tokenize.STRING:
                j += 1
            if j == len(significant) or significant[j][0] == tokenize.NEWLINE:
                skip_to = j  # a docstring, or another statement that is only a string
                continue
        if kind in LAYOUT:
            out = LAYOUT[kind]
        elif kind == tokenize.STRING:
            out = "S"
        elif kind == tokenize.NAME:
            attribute = before is not None and before[1] == "."
            owner = significant[i - 2][1] if attribute and i >= 2 else None
            keyword_argument = (
                depth > 0 and def_depth is None and after is not None and after[1] == "="
            )
            if keyword.iskeyword(text):
                out = text
                if text == "def":
                    def_depth = depth
            elif (
                (text in kept and not attribute)
                or keyword_argument
                or (attribute and owner != "self")
            ):
                out = text
            else:
                key = ("." if attribute else "") + text
                out = names.setdefault(key, f"{PLACEHOLDER}{len(names)}")
        else:
            out = ";" if text == ";" else text
            if text in "([{":
                depth += 1
            elif text in ")]}":
                depth = max(0, depth - 1)
            elif text == ":" and def_depth is not None and depth == def_depth:
                def_depth = None
        texts.append(out)
        lines.append(line)
    return texts, lines


def kept_names(release) -> set[str]:
    """Names whose spelling the course gives (see the module's docstring)."""
    kept = set(dir(builtins))
    for cell in release.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        loaded: set[str] = set()
        stored: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                kept.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                kept.add(node.name)
                stored.add(node.name)
            elif isinstance(node, ast.Name):
                (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
            elif isinstance(node, ast.arg):
                stored.add(node.arg)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            kept |= loaded - stored  # what the test expects the student's cells to define
    return kept


def starter_mask(texts: list[str], stub: list[str]) -> list[bool]:
    """Which tokens are starter code: runs of STARTER_RUN or more shared with the stub."""
    mask = [False] * len(texts)
    if not stub:
        return mask
    matcher = difflib.SequenceMatcher(None, stub, texts, autojunk=False)
    for block in matcher.get_matching_blocks():
        if block.size >= min(STARTER_RUN, len(stub)):
            mask[block.b : block.b + block.size] = [True] * block.size
    return mask


def fingerprints(texts: list[str], mask: list[bool] | None = None) -> dict[int, list[int]]:
    """Hash of every run of K tokens that holds no starter token -> where the runs start."""
    grams: dict[int, list[int]] = defaultdict(list)
    mask = mask or [False] * len(texts)
    run = 0  # tokens in a row, up to here, that are not starter code
    for end, starter in enumerate(mask):
        run = 0 if starter else run + 1
        if run >= K:
            start = end - K + 1
            grams[hash(_window(texts[start : end + 1]))].append(start)
    return dict(grams)


def _window(texts: list[str]) -> tuple[str, ...]:
    """A run of tokens with its placeholders numbered afresh, in order of appearance: the
    same code gets the same fingerprint wherever it stands, even after new names earlier in
    the cell (a line added at the top) have shifted the cell's numbering."""
    local: dict[str, str] = {}
    return tuple(
        local.setdefault(t, f"{PLACEHOLDER}{len(local)}") if t.startswith(PLACEHOLDER) else t
        for t in texts
    )


def make_answer(student: str, grade_id: str, source: str, stub: str, kept: set[str]) -> Answer:
    """The answer `source` to the solution cell whose release version is `stub`."""
    source = source[:MAX_SOURCE]
    kept = kept | {text for kind, text, _ in _tokens(stub) if kind == tokenize.NAME}
    stub_texts, _ = normalise(stub, kept)
    texts, lines = normalise(source, kept)
    mask = starter_mask(texts, stub_texts)
    grams = fingerprints(texts, mask)
    for gram in fingerprints(stub_texts):
        grams.pop(gram, None)
    stub_lines = {line.strip() for line in stub.splitlines() if line.strip()}
    starter_lines = {
        number for number, line in enumerate(source.splitlines(), 1) if line.strip() in stub_lines
    }
    return Answer(student, grade_id, source, texts, lines, mask, starter_lines, grams)


# --- comparing -------------------------------------------------------------------------------


def compare(answers: dict[str, dict[str, Answer]]) -> tuple[list[Pair], dict[str, set[int]]]:
    """Every pair of students whose answers share a rare fingerprint, best first; and the
    common fingerprints of each exercise. `answers`: grade id -> student -> answer, in
    notebook order.

    The inverted index (fingerprint -> the students who hold it) gives, for each rare
    fingerprint, the pairs that share it; numpy counts them (pairs coded as one integer), so
    no pair that shares nothing is ever looked at."""
    students = sorted({s for by_student in answers.values() for s in by_student})
    index = {s: i for i, s in enumerate(students)}
    n = len(students)
    common, shared, rare = {}, {}, {}
    for grade_id, by_student in answers.items():
        holders: dict[int, list[int]] = defaultdict(list)
        for student in sorted(by_student):  # so that each list of holders is ascending
            for gram in by_student[student].grams:
                holders[gram].append(index[student])
        answered = sum(1 for answer in by_student.values() if answer.grams)
        limit = max(COMMON_MIN, COMMON_SHARE * answered)
        common[grade_id] = {g for g, h in holders.items() if len(h) > limit}
        rare[grade_id] = np.zeros(n, dtype=np.int64)
        for student, answer in by_student.items():
            rare[grade_id][index[student]] = sum(
                1 for gram in answer.grams if gram not in common[grade_id]
            )
        codes = [np.empty(0, dtype=np.int64)]
        for held in holders.values():
            if 2 <= len(held) <= limit:
                first, second = _pairs_of(len(held))
                positions = np.asarray(held, dtype=np.int64)
                codes.append(positions[first] * n + positions[second])
        shared[grade_id] = np.unique(np.concatenate(codes), return_counts=True)
    candidates = np.unique(
        np.concatenate([np.empty(0, dtype=np.int64), *(codes for codes, _ in shared.values())])
    )
    first, second = np.divmod(candidates, max(n, 1))
    total_shared = np.zeros(len(candidates), dtype=np.int64)
    total_smaller = np.zeros(len(candidates), dtype=np.int64)
    columns = {}
    for grade_id in answers:
        pair_codes, counts = shared[grade_id]
        both_shared = np.zeros(len(candidates), dtype=np.int64)
        both_shared[np.searchsorted(candidates, pair_codes)] = counts
        ra, rb = rare[grade_id][first], rare[grade_id][second]
        both = (ra > 0) & (rb > 0)  # both answered with something of their own
        smaller = np.where(both, np.minimum(ra, rb), 0)
        total_shared += both_shared
        total_smaller += smaller
        columns[grade_id] = (both_shared.tolist(), smaller.tolist(), both.tolist())
    score = total_shared / np.maximum(total_smaller, 1)
    order = np.lexsort((second, first, -total_shared, -score))  # the last key sorts first
    pairs = []
    for k in order.tolist():
        matches = [
            Match(g, shared_k[k], smaller_k[k])
            for g, (shared_k, smaller_k, both_k) in columns.items()
            if both_k[k]
        ]
        pairs.append(Pair(students[first[k]], students[second[k]], matches))
    return pairs, common


@lru_cache(maxsize=256)
def _pairs_of(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions (i, j), i < j, of every pair among `count` holders."""
    return np.triu_indices(count, 1)


def read_answers(course: GradingFolder, assignment: str):
    """(grade id -> student -> Answer, students read, [(student, why not read)]) of every
    submission in submitted/. Only the first cell with a solution's grade id counts, as in
    grading; a notebook that is not JSON, or too big, is listed as not read."""
    release = nbformat.read(str(course.root / "release" / assignment / f"{assignment}.ipynb"), 4)
    stubs: dict[str, str] = {}  # grade id -> the release's cell
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id"):
            stubs.setdefault(meta["grade_id"], cell.source)
    kept = kept_names(release)
    answers: dict[str, dict[str, Answer]] = {g: {} for g in stubs}
    students, unreadable = [], []
    root = course.root / "submitted"
    for folder in sorted(p for p in root.glob("*") if (p / assignment).is_dir()):
        student, path = folder.name, folder / assignment / f"{assignment}.ipynb"
        cells = _cells(path)
        if isinstance(cells, str):
            unreadable.append((student, cells))
            continue
        students.append(student)
        for cell in cells:
            nbgrader = _as_dict(_as_dict(cell.get("metadata")).get("nbgrader"))
            grade_id, source = nbgrader.get("grade_id"), text_of(cell.get("source"))
            if (
                isinstance(grade_id, str)
                and grade_id in stubs
                and source is not None
                and student not in answers[grade_id]
                and cell.get("cell_type") == "code"
            ):
                answers[grade_id][student] = make_answer(
                    student, grade_id, source, stubs[grade_id], kept
                )
    return answers, students, unreadable


def _as_dict(value) -> dict:
    """`value` if a dict, else an empty one (a submission's JSON may hold anything)."""
    return value if isinstance(value, dict) else {}


def _cells(path: Path) -> list[dict] | str:
    """The cells of a notebook file (dicts), or why they cannot be read."""
    try:
        if path.is_symlink() or not path.is_file():
            return "no notebook"
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return f"over {MAX_NOTEBOOK_BYTES // 2**20} MB"
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError) as error:
        return f"not a readable notebook ({type(error).__name__})"
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return "no cells (not an nbformat 4 notebook)"
    return [c for c in cells if isinstance(c, dict)]


def similarity(course: GradingFolder, assignment: str) -> Similarity:
    [assignment] = check_assignments(course, [assignment])
    answers, students, unreadable = read_answers(course, assignment)
    pairs, common = compare(answers)
    return Similarity(assignment, pairs, answers, students, unreadable, common)


def write_similarity(
    course: GradingFolder,
    assignment: str,
    out: Path | None = None,
    *,
    min_score: float = MIN_SCORE,
    top: int = TOP,
) -> tuple[Similarity, Path]:
    """The pages and pairs.csv (see the module's docstring); the result and index.html."""
    result = similarity(course, assignment)
    out = Path(out) if out else course.root / "reports" / "similarity" / result.assignment
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("pair-*.html"):
        if re.fullmatch(r"pair-\d+\.html", old.name):
            old.unlink()
    with open(out / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*PAIR_COLUMNS, *(f"score_{g}" for g in result.answers)])
        for pair in result.pairs:
            scores = {m.grade_id: f"{m.score:.3f}" for m in pair.matches}
            writer.writerow(
                [
                    pair.a,
                    pair.b,
                    f"{pair.score:.3f}",
                    pair.shared,
                    *(scores.get(g, "") for g in result.answers),
                ]
            )
    listed = listed_pairs(result, min_score, top)
    for number, pair in enumerate(listed, 1):
        (out / pair_file(number)).write_text(pair_page(result, pair, number), encoding="utf-8")
    index = out / "index.html"
    index.write_text(index_page(result, listed, min_score), encoding="utf-8")
    return result, index


def listed_pairs(result: Similarity, min_score: float = MIN_SCORE, top: int = TOP) -> list[Pair]:
    return [p for p in result.pairs if p.score >= min_score][:top]


def pair_file(number: int) -> str:
    return f"pair-{number:03d}.html"


def table(result: Similarity, min_score: float = MIN_SCORE, top: int = TOP) -> str:
    """The listed pairs for a terminal."""
    listed = listed_pairs(result, min_score, top)
    if not listed:
        return (
            f"No pair of the {len(result.students)} submissions of {result.assignment} "
            f"scores {min_score:g} or more."
        )
    rows = [("score", "student", "student", "most alike exercise")]
    for pair in listed:
        best = max(pair.matches, key=lambda m: (m.score, m.shared))
        rows.append((f"{pair.score:.2f}", pair.a, pair.b, f"{best.grade_id} ({best.score:.2f})"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- pages -----------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 90em; padding: 0 1em; color: #222; line-height: 1.4; }
p.lead { background: #fff8e1; border-left: 4px solid #f0a030; padding: 0.6em 1em; }
p.note { color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4;
         vertical-align: baseline; }
th { background: #f4f4f4; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
.side h3 { margin: 0.2em 0; font-size: 1em; }
pre { background: #fafafa; border: 1px solid #ddd; padding: 0.5em 0; margin: 0;
      font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.85em;
      overflow-x: auto; }
pre span { display: block; padding: 0 0.6em; white-space: pre; min-height: 1.2em; }
pre span.shared { background: #ffe08a; }
pre span.starter { color: #999; }
pre span i { font-style: normal; color: #aaa; display: inline-block; width: 2.5em;
             user-select: none; }
.key span { display: inline-block; padding: 0 0.4em; margin-right: 1em; }
.key .shared { background: #ffe08a; }
.key .starter { color: #999; }
"""

LEAD = (
    "A similar pair is a lead for a person to read, never a verdict or a penalty: short "
    "exercises have few good answers, students may have worked together where that was "
    "allowed, and two answers that share a source outside the class look alike too."
)


def index_page(result: Similarity, listed: list[Pair], min_score: float) -> str:
    e = escape
    body = [
        f"<h1>Similar answers: {e(result.assignment)}</h1>",
        f'<p class="lead">{e(LEAD)}</p>',
        f'<p class="note">{len(result.students)} submission(s) compared, exercise by '
        f"exercise ({e(', '.join(result.answers))}), after normalising names, comments, "
        "docstrings and layout, and without the starter code. A score is the share of "
        f"the smaller answer's runs of {K} tokens that the other one holds too (0 to 1; "
        "runs that many students wrote alike do not count), over the exercises both "
        f"answered. Listed: the {len(listed)} pair(s) scoring {min_score:g} or more "
        f"of {len(result.pairs)} that share anything (pairs.csv has them all).</p>",
    ]
    if result.unreadable:
        body.append(
            '<p class="note">Not read: '
            + e("; ".join(f"{s} ({why})" for s, why in result.unreadable))
            + ".</p>"
        )
    if not listed:
        body.append("<p>No pair to list.</p>")
        return html_page(f"Similar answers: {result.assignment}", body, STYLE)
    body += [
        "<table>",
        "<tr><th>#</th><th>Score</th><th>Students</th>"
        + "".join(f"<th>{e(g)}</th>" for g in result.answers)
        + "</tr>",
    ]
    for number, pair in enumerate(listed, 1):
        scores = {m.grade_id: m for m in pair.matches}
        cells = "".join(
            f'<td class="num">{scores[g].score:.2f}</td>' if g in scores else "<td></td>"
            for g in result.answers
        )
        body.append(
            f'<tr><td class="num">{number}</td><td class="num">{pair.score:.2f}</td>'
            f'<td><a href="{pair_file(number)}">{e(pair.a)} and {e(pair.b)}</a></td>'
            f"{cells}</tr>"
        )
    body.append("</table>")
    return html_page(f"Similar answers: {result.assignment}", body, STYLE)


def pair_page(result: Similarity, pair: Pair, number: int) -> str:
    e = escape
    body = [
        f"<h1>{e(pair.a)} and {e(pair.b)}: {pair.score:.2f}</h1>",
        f'<p><a href="index.html">All pairs of {e(result.assignment)}</a> (this is #{number})</p>',
        f'<p class="lead">{e(LEAD)}</p>',
        '<p class="key"><span class="shared">shared after normalising</span>'
        '<span class="starter">starter code</span></p>',
    ]
    for match in sorted(pair.matches, key=lambda m: (-m.score, -m.shared)):
        a = result.answers[match.grade_id][pair.a]
        b = result.answers[match.grade_id][pair.b]
        shared = (set(a.grams) & set(b.grams)) - result.common[match.grade_id]
        body.append(
            f"<h2>{e(match.grade_id)}: {match.score:.2f} "
            f"({match.shared} of {match.smaller} runs of {K} tokens)</h2>"
        )
        body.append('<div class="side">')
        for answer in (a, b):
            body.append(f"<div><h3>{e(answer.student)}</h3>{_source(answer, shared)}</div>")
        body.append("</div>")
    return html_page(f"{pair.a} and {pair.b}: {result.assignment}", body, STYLE)


def _source(answer: Answer, shared: set[int]) -> str:
    """The answer's source, escaped, line by line: lines holding a shared fingerprint marked,
    lines of the stub greyed."""
    marked = set()
    for gram in shared:
        for start in answer.grams.get(gram, []):
            marked.update(answer.lines[start : start + K])
    out = []
    for number, line in enumerate(answer.source.splitlines() or [""], 1):
        kind = (
            "shared" if number in marked else ("starter" if number in answer.starter_lines else "")
        )
        attribute = f' class="{kind}"' if kind else ""
        out.append(f"<span{attribute}><i>{number}</i>{escape(line)}</span>")
    return "<pre>" + "".join(out) + "</pre>"
