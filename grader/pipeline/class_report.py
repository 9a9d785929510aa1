"""The class report, reports/class-report.html: what the class got wrong, on one page.

`python -m grader report` writes it beside its CSV files. For each assignment:

- per exercise (an `### Exercise N.M: title (K points)` heading of the release notebook and
  the test cells below it, or a `### Question N.M: title (K points)` heading and the written
  answers below it), how many submissions got full, partial and no marks, and apart from
  those how many are pending (a written answer not graded by hand yet);
- the failure messages met most often in those test cells, each with the number of students
  who met it: the `ename: evalue` that a failed test left in the autograded notebook, read
  through the feedback pages' own filters (grader.notebooks.defang's `defang`, then
  grader.notebooks.redaction's `HideHiddenTests`), so that the page quotes what the
  students' feedback pages quote and never a hidden test. A message is its first lines,
  without numpy's array dumps (which differ from student to student); messages count as
  one where they read the same;
- the distribution of totals, as an inline SVG histogram;
- the submissions that timed out, crashed or were invalid, with their messages.

Shares, messages and the assignment's histogram count the submissions that ran (graded,
timeout, crashed): an invalid submission never ran and a missing one was never handed in,
so they say nothing about which idea did not land (the page counts them apart). The
course's histogram counts every student, missing work scoring 0, as report's totals do.

The page is static: no script, no request, a Content-Security-Policy first in its head
(grader.notebooks.sanitize), and every string escaped (student ids and messages come from
submissions).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import nbformat

from grader.config import GradingFolder
from grader.notebooks.defang import MAX_NOTEBOOK_BYTES, defang
from grader.notebooks.redaction import HideHiddenTests
from grader.notebooks.sanitize import html_page
from grader.notebooks.validate import graded_heading

RAN = ("graded", "timeout", "crashed")
PROBLEMS = ("timeout", "crashed", "invalid")
TOP_MESSAGES = 6  # messages shown per exercise; the others are counted
HARDEST = 5  # exercises in the page's summary
MESSAGE_CHARS = 300  # of a message's headline
STUB = "NotImplementedError"

# np.testing's assertion messages: a preamble line, the test's err_msg, then details that
# differ from student to student (mismatch counts, the arrays themselves).
NUMPY_PREAMBLE = re.compile(r"(Not equal to tolerance|Arrays are not)")
NUMPY_DETAIL = re.compile(
    r"(Mismatched elements|Mismatch at index|Max (absolute|relative) difference|\(shapes? |"
    r"x:|y:|ACTUAL:|DESIRED:)"
)


@dataclass
class Message:
    """One failure message, as often as students met it in one exercise."""

    ename: str
    text: str
    students: int
    cells: list[str]  # the test cells that showed it

    def headline(self) -> str:
        if not self.text and self.ename == STUB:
            return f"{STUB} (the untouched stub: not answered)"
        return f"{self.ename}: {self.text}" if self.text else self.ename


@dataclass
class Exercise:
    title: str
    grade_ids: list[str]  # its test cells
    max_points: float
    full: int = 0
    partial: int = 0
    none: int = 0
    messages: list[Message] = field(default_factory=list)  # most frequent first
    pending: int = 0  # submissions with a written answer of it not graded by hand yet

    @property
    def counted(self) -> int:
        return self.full + self.partial + self.none


@dataclass
class AssignmentStats:
    name: str
    exercises: list[Exercise]
    totals: dict[str, float]  # student -> points, of the submissions that ran
    max_total: float
    statuses: Counter  # status -> submissions, every student of the gradebook
    problems: list[tuple[str, str, str]]  # (student, status, message), in PROBLEMS
    unread: list[str]  # students that ran but whose autograded notebook was not readable
    pending: list[str] = field(default_factory=list)  # students with answers to grade by hand


@dataclass
class ClassStats:
    course_id: str
    students: int
    totals: dict[str, float]  # student -> course total, missing work scoring 0
    max_total: float
    assignments: list[AssignmentStats]
    pending: int = 0  # written answers of the class still to be graded by hand


def write_class_report(course: GradingFolder, report, path: Path) -> Path:
    """reports/class-report.html of `report` (grader.pipeline.report.gather's Report)."""
    path = Path(path)
    path.write_text(render(class_stats(course, report)), encoding="utf-8")
    return path


def class_stats(course: GradingFolder, report) -> ClassStats:
    return ClassStats(
        course_id=str(course.course_id),
        students=len(report.students),
        totals={s: report.total(s) for s in report.students},
        max_total=report.max_total(),
        assignments=[assignment_stats(course, report, a) for a in report.assignments],
        pending=len(getattr(report, "pending", ())),
    )


def assignment_stats(course: GradingFolder, report, assignment: str) -> AssignmentStats:
    exercises = exercises_of(course, assignment, report.maximum)
    statuses = {s: report.statuses[s, assignment] for s in report.students}
    ran = [s for s, (status, _) in statuses.items() if status in RAN]
    counts = Counter(status for status, _ in statuses.values())
    problems = [
        (s, status, message)
        for s, (status, message) in sorted(statuses.items())
        if status in PROBLEMS
    ]
    # exercise index -> student -> [(grade id, ename, evalue)]
    failed_at: defaultdict[int, dict[str, list[tuple[str, str, str]]]] = defaultdict(dict)
    unread = []
    waiting: set[tuple[str, str, str]] = getattr(report, "pending", set())
    pending = sorted({s for s, a, _ in waiting if a == assignment and s in ran})
    for student in ran:
        failed = {
            g
            for e in exercises
            for g in e.grade_ids
            if report.points[student, assignment, g] < report.maximum[assignment, g]
            and (student, assignment, g) not in waiting
        }
        messages = failures(course, student, assignment, failed) if failed else {}
        if messages is None:
            unread.append(student)
            messages = {}
        for index, exercise in enumerate(exercises):
            if any((student, assignment, g) in waiting for g in exercise.grade_ids):
                exercise.pending += 1  # not graded yet: in none of the shares
                continue
            points = sum(report.points[student, assignment, g] for g in exercise.grade_ids)
            if points >= exercise.max_points:
                exercise.full += 1
            elif points > 0:
                exercise.partial += 1
            else:
                exercise.none += 1
            met = [(g, *m) for g in exercise.grade_ids for m in messages.get(g, [])]
            if met:
                failed_at[index][student] = met
    for index, exercise in enumerate(exercises):
        exercise.messages = group_messages(failed_at[index])
    return AssignmentStats(
        name=assignment,
        exercises=exercises,
        totals={s: report.total(s, assignment) for s in ran},
        max_total=report.max_total(assignment),
        statuses=counts,
        problems=problems,
        unread=unread,
        pending=pending,
    )


def exercises_of(course: GradingFolder, assignment: str, maximum: dict) -> list[Exercise]:
    """The assignment's exercises in notebook order: each exercise (or question) heading of
    the release notebook with the test cells (or written answers) below it. A graded cell
    under no heading (or of a notebook that cannot be read) is an exercise of its own."""
    graded = [g for (a, g) in maximum if a == assignment]
    groups: list[tuple[str, list[str]]] = []
    placed: set[str] = set()
    try:
        nb = nbformat.read(str(course.root / "release" / assignment / f"{assignment}.ipynb"), 4)
        cells = nb.cells
    except (OSError, ValueError):
        cells = []
    current: tuple[str, list[str]] | None = None
    for cell in cells:
        found = graded_heading(cell.source) if cell.cell_type == "markdown" else None
        if found and not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            current = (_title(found[1].group(0)), [])
            groups.append(current)
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in graded and grade_id not in placed:
            placed.add(grade_id)
            if current is None:
                groups.append((grade_id, [grade_id]))
            else:
                current[1].append(grade_id)
    groups += [(g, [g]) for g in graded if g not in placed]
    return [
        Exercise(title, ids, sum(maximum[assignment, g] for g in ids))
        for title, ids in groups
        if ids
    ]


def _title(heading: str) -> str:
    """'### Exercise 1.1: Step (1 point)' -> 'Exercise 1.1: Step'."""
    text = re.sub(r"^#+\s*", "", heading.strip())
    return re.sub(r"\s*\([^()]*\bpoints?\)\s*$", "", text)


def failures(
    course: GradingFolder, student: str, assignment: str, failed: set[str]
) -> dict[str, list[tuple[str, str]]] | None:
    """grade id -> [(ename, headline)] of the failed test cells `failed`, as the student's
    feedback page shows them (hidden tests removed); None if the autograded notebook cannot
    be read. A failed cell that shows no error was zeroed for its stderr output."""
    path = course.root / "autograded" / student / assignment / f"{assignment}.ipynb"
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        with open(path, encoding="utf-8") as f:
            nb = defang(json.load(f))
    except (OSError, ValueError):
        return None
    nb, _ = HideHiddenTests().preprocess(nb, {})
    found: dict[str, list[tuple[str, str]]] = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or grade_id not in failed or grade_id in found:
            continue
        outputs = cell.get("outputs", [])
        errors = [
            (o.ename or "Error", headline(o.evalue)) for o in outputs if o.output_type == "error"
        ]
        if not errors:
            stderr = "\n".join(
                o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"
            )
            errors = (
                [("output on stderr", headline(stderr))]
                if stderr.strip()
                else [("no error shown", "")]
            )
        found[grade_id] = errors
    return found


def headline(evalue: str) -> str:
    """An error's message on one line, without numpy's details, at most MESSAGE_CHARS."""
    lines = [" ".join(line.split()) for line in str(evalue).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and NUMPY_PREAMBLE.match(lines[0]):
        rest = lines[1:]
        cut = next((i for i, line in enumerate(rest) if NUMPY_DETAIL.match(line)), len(rest))
        lines = rest[:cut] or lines[:1]
    text = " ".join(lines)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "\u2026"


def group_messages(met: dict[str, list[tuple[str, str, str]]]) -> list[Message]:
    """Messages (student -> [(grade id, ename, headline)]) that read the same, each counting
    a student once (in however many of the exercise's test cells). Most frequent first."""
    students: dict[tuple, set] = defaultdict(set)
    cells: dict[tuple, set] = defaultdict(set)
    for student, items in met.items():
        for grade_id, ename, text in items:
            students[ename, text].add(student)
            cells[ename, text].add(grade_id)
    messages = [
        Message(ename, text, len(who), sorted(cells[ename, text]))
        for (ename, text), who in students.items()
    ]
    return sorted(messages, key=lambda m: (-m.students, m.ename, m.text))


# --- the page ------------------------------------------------------------------------------

COLOURS = {"full": "#1a9850", "partial": "#f0a030", "none": "#d73027"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 62em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.6em; }
h4 { margin: 1.2em 0 0.3em; }
p.lead, p.note { color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4;
         vertical-align: baseline; }
th { background: #f4f4f4; font-weight: 600; white-space: nowrap; }
table.messages { width: 100%; }
table.messages td.num { width: 4em; }
table.messages td.ids { width: 16em; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.msg { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em;
         white-space: pre-wrap; overflow-wrap: anywhere; max-width: 40em; }
td.ids { font-size: 0.85em; color: #555; }
.key span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em;
            vertical-align: -0.1em; }
.status-timeout, .status-crashed { color: #a05a00; font-weight: 600; }
.status-invalid { color: #b00020; font-weight: 600; }
svg text { font-family: system-ui, sans-serif; }
"""


def render(stats: ClassStats) -> str:
    e = escape
    parts = [
        "<h1>What the class got wrong</h1>",
        f'<p class="lead">Course {e(stats.course_id)}: {stats.students} student(s), '
        f"{len(stats.assignments)} assignment(s). Per exercise, the share of the submissions "
        "that ran (graded, timed out or crashed) with full, partial and no marks, the failure "
        "messages their tests wrote most often, and the submissions that did not grade "
        "normally. Written answers not graded by hand yet are counted apart, as pending. "
        "Messages are those of the students' feedback pages: no hidden test is "
        "quoted.</p>",
        _key(),
    ]
    parts += _hardest(stats)
    parts.append("<h2>Course totals</h2>")
    parts.append(
        f'<p class="note">All {stats.students} student(s); missing work scores 0.'
        + (
            f" {stats.pending} written answer(s) still to be graded by hand count in no total yet."
            if stats.pending
            else ""
        )
        + "</p>"
    )
    parts.append(histogram_svg(list(stats.totals.values()), stats.max_total, "Course totals"))
    for assignment in stats.assignments:
        parts += _assignment(assignment)
    return html_page(f"Class report: {stats.course_id}", parts, STYLE)


def _key() -> str:
    items = "".join(
        f'<span style="background:{COLOURS[k]}"></span>{label}'
        for k, label in (("full", "full marks"), ("partial", "partial marks"), ("none", "no marks"))
    )
    return f'<p class="key">{items}</p>'


def _anchor(assignment: str, index: int | None = None) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", assignment)
    return f"a-{name}" if index is None else f"a-{name}-ex{index + 1}"


def _hardest(stats: ClassStats) -> list[str]:
    rows = [
        (ex.full / ex.counted, a.name, i, ex)
        for a in stats.assignments
        for i, ex in enumerate(a.exercises)
        if ex.counted
    ]
    if not rows:
        return []
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    out = [
        "<h2>Exercises with the fewest full marks</h2>",
        "<table>",
        "<tr><th>Exercise</th><th>Assignment</th><th>Full marks</th><th></th>"
        "<th>Most frequent failure</th></tr>",
    ]
    for _, name, index, ex in rows[:HARDEST]:
        top = ex.messages[0] if ex.messages else None
        message = f"{escape(top.headline())} ({top.students} student(s))" if top else ""
        out.append(
            f'<tr><td><a href="#{_anchor(name, index)}">{escape(ex.title)}</a></td>'
            f'<td>{escape(name)}</td><td class="num">{_share(ex.full, ex.counted)}</td>'
            f'<td>{shares_svg(ex)}</td><td class="msg">{message}</td></tr>'
        )
    out.append("</table>")
    return out


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.0f}%)" if total else "0"


def _assignment(a: AssignmentStats) -> list[str]:
    e = escape
    ran = len(a.totals)
    s = a.statuses
    left = [
        f"{s[k]} {label}"
        for k, label in (
            ("invalid", "invalid"),
            ("missing", "missing (not handed in, or not graded yet)"),
        )
        if s[k]
    ]
    out = [
        f'<h2 id="{_anchor(a.name)}">{e(a.name)}</h2>',
        f'<p class="note">{ran} submission(s) ran: {s["graded"]} graded, {s["timeout"]} '
        f"timed out, {s['crashed']} crashed."
        + (f" Left out: {', '.join(left)}." if left else "")
        + "</p>",
    ]
    if a.unread:
        out.append(
            f'<p class="note">Failure messages not read (autograded notebook missing '
            f"or too big): {e(', '.join(a.unread))}.</p>"
        )
    if a.pending:
        out.append(
            f'<p class="note pending">{len(a.pending)} submission(s) with written '
            "answers still to be graded by hand (formgrader): those questions are "
            "counted as pending, in none of the shares, and the totals below leave "
            f"their points out: {e(', '.join(a.pending))}.</p>"
        )
    if not ran:
        out.append("<p>No submission of this assignment ran.</p>")
    out += [
        "<h3>Exercises</h3>",
        "<table>",
        "<tr><th>Exercise</th><th>Points</th><th></th><th>Full</th><th>Partial</th>"
        "<th>None</th><th>Pending</th></tr>",
    ]
    for ex in a.exercises:
        out.append(
            f'<tr><td>{e(ex.title)}</td><td class="num">{ex.max_points:g}</td>'
            f'<td>{shares_svg(ex)}</td><td class="num">{_share(ex.full, ex.counted)}</td>'
            f'<td class="num">{_share(ex.partial, ex.counted)}</td>'
            f'<td class="num">{_share(ex.none, ex.counted)}</td>'
            f'<td class="num pending">{ex.pending}</td></tr>'
        )
    out.append("</table>")
    out.append("<h3>Failure messages, most frequent first</h3>")
    for index, ex in enumerate(a.exercises):
        out.append(f'<h4 id="{_anchor(a.name, index)}">{e(ex.title)}</h4>')
        if not ex.messages:
            out.append(
                '<p class="note">No failure.</p>'
                if ex.counted
                else f'<p class="note">Not graded yet: {ex.pending} pending.</p>'
                if ex.pending
                else '<p class="note">No submission ran.</p>'
            )
            continue
        out += [
            '<table class="messages">',
            "<tr><th>Students</th><th>Message</th><th>Test cells</th></tr>",
        ]
        for m in ex.messages[:TOP_MESSAGES]:
            out.append(
                f'<tr><td class="num">{m.students}</td>'
                f'<td class="msg">{e(m.headline())}</td>'
                f'<td class="ids">{e(", ".join(m.cells))}</td></tr>'
            )
        out.append("</table>")
        rest = ex.messages[TOP_MESSAGES:]
        if rest:
            out.append(
                f'<p class="note">... and {len(rest)} other message(s), met by '
                f"{sum(m.students for m in rest)} student(s) in all.</p>"
            )
    out.append("<h3>Totals</h3>")
    out.append(histogram_svg(list(a.totals.values()), a.max_total, f"Totals of {a.name}"))
    out.append("<h3>Submissions that timed out, crashed or were invalid</h3>")
    if not a.problems:
        out.append('<p class="note">None.</p>')
    else:
        out += ["<table>", "<tr><th>Student</th><th>Status</th><th>Message</th></tr>"]
        for student, status, message in a.problems:
            out.append(
                f"<tr><td>{e(student)}</td>"
                f'<td class="status-{e(status)}">{e(status)}</td>'
                f'<td class="msg">{e(message)}</td></tr>'
            )
        out.append("</table>")
    return out


def shares_svg(ex: Exercise, width: int = 160, height: int = 14) -> str:
    """A stacked bar: full, partial and no marks, in proportion."""
    total = ex.counted
    if not total:
        return ""
    parts, x = [], 0.0
    for kind, count in (("full", ex.full), ("partial", ex.partial), ("none", ex.none)):
        if count:
            w = width * count / total
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" '
                f'fill="{COLOURS[kind]}"><title>{kind}: {count} of {total}</title>'
                "</rect>"
            )
            x += w
    label = f"full {ex.full}, partial {ex.partial}, none {ex.none} of {total}"
    return (
        f'<svg class="shares" width="{width}" height="{height}" role="img" '
        f'aria-label="{label}">{"".join(parts)}</svg>'
    )


def bins(maximum: float) -> list[tuple[float, float, str]]:
    """Histogram bins (low, high, label) over [0, maximum]: one per point up to 30 points
    (the last one holds the maximum), else 20 equal ones."""
    if maximum <= 0:
        return [(0.0, 1.0, "0")]
    if maximum <= 30 and float(maximum).is_integer():
        return [(float(k), float(k + 1), f"{k}") for k in range(int(maximum) + 1)]
    width = maximum / 20
    return [(k * width, (k + 1) * width, f"{k * width:g}") for k in range(20)]


def _bin_of(value: float, edges: list[tuple[float, float, str]]) -> int:
    for index, (_, high, _) in enumerate(edges):
        if value < high:
            return index
    return len(edges) - 1


def histogram_counts(values: list[float], maximum: float) -> list[int]:
    edges = bins(maximum)
    counts = [0] * len(edges)
    for value in values:
        counts[_bin_of(max(0.0, value), edges)] += 1
    return counts


def histogram_svg(values: list[float], maximum: float, title: str) -> str:
    """An inline SVG histogram of `values` (points out of `maximum`), with axis labels and
    each bar's count; no script, no style sheet."""
    edges = bins(maximum)
    counts = histogram_counts(values, maximum)
    width, height = 600, 210
    left, right, top, bottom = 44, 10, 18, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / len(edges)
    tallest = max(counts) or 1
    per_point = len(edges) == int(maximum) + 1 and maximum <= 30
    out = [
        f'<svg class="histogram" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}: {len(values)} value(s) in {len(edges)} bins">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>',
    ]
    for tick in sorted({0, tallest}):
        y = top + plot_h - plot_h * tick / tallest
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick}</text>'
        )
    label_every = max(1, round(len(edges) / 16))
    for index, ((low, high, label), count) in enumerate(zip(edges, counts, strict=True)):
        x = left + index * step
        h = plot_h * count / tallest
        span = f"{label} points" if per_point else f"{low:g} to {high:g} points"
        if count:
            out.append(
                f'<rect class="bar" x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="#4a7fb5">'
                f"<title>{span}: {count} student(s)</title></rect>"
            )
            out.append(
                f'<text x="{x + step / 2:.1f}" y="{top + plot_h - h - 4:.1f}" '
                f'font-size="11" text-anchor="middle">{count}</text>'
            )
        if index % label_every == 0:
            centre = x + step / 2 if per_point else x
            out.append(
                f'<text x="{centre:.1f}" y="{top + plot_h + 15}" font-size="11" '
                f'text-anchor="middle">{label}</text>'
            )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" '
        f'text-anchor="middle">points (of {maximum:g})</text>'
    )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">students</text>'
    )
    out.append("</svg>")
    return "".join(out)
