"""Hidden tests out of a graded notebook's page, and out of everything that quotes them.

HideHiddenTests is the preprocessor the feedback pages (grader.pipeline.feedback) and the
class report (grader.pipeline.class_report) run on an autograded notebook: graded test cells
lose their hidden-test regions, every error is cut down to what a student needs, no output
keeps a line of hidden-test source, and no output shows a path of the grading machine.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from grader.config import REPO_ROOT
from grader.notebooks import cells as nbs
from grader.notebooks.defang import TEXT_DATA

REDACTED = "[a line quoting a hidden test, removed]"


def hidden_lines(nb) -> set[str]:
    """Every line of every hidden test region and the delimiters, stripped (lines under 8
    characters, such as `else:`, say nothing about the tests and would match everywhere;
    a delimiter is longer)."""
    return {
        line.strip()
        for cell in nb.cells
        for line in nbs.hidden_test_lines(cell.source)
        if len(line.strip()) >= 8
    }


def _redact(text: str, hidden: set[str]) -> str:
    """Printed output: every line that contains a hidden line anywhere is replaced."""
    if not any(h in text for h in hidden):  # the usual case, and quick on a huge output
        return text
    return "\n".join(
        REDACTED if any(h in line for h in hidden) else line for line in text.split("\n")
    )


# Around a line of source that a program quotes: the start or the end of a line of its
# output, or a quote (repr of inspect's code_context, "['    x = 1\n']").
_OPENS = re.compile(r"(?:\A|['\"])[ \t]*\Z")
_CLOSES = re.compile(r"[ \t]*(?:\Z|\\n|['\"])")


def _quotes(line: str, hidden: str) -> bool:
    """Whether `line` of a message quotes `hidden` as source: at a line boundary or in
    quotes, not in the middle of a sentence."""
    at = line.find(hidden)
    while at >= 0:
        if _OPENS.search(line, 0, at) or _CLOSES.match(line, at + len(hidden)):
            return True
        at = line.find(hidden, at + 1)
    return False


def _redact_message(text: str, hidden: set[str]) -> str:
    """An error's name or message: a line is replaced only where it quotes a hidden line as
    source (see `_quotes`), so that a sentence that names a tolerance or an expression that
    a hidden test also holds (`... tolerance rtol=1e-10, atol=0`) stays."""
    found = [h for h in hidden if h in text]
    if not found:
        return text
    return "\n".join(
        REDACTED if any(_quotes(line, h) for h in found) else line for line in text.split("\n")
    )


# An absolute path: not a part of a URL, a fraction, a date, a closing tag or base64.
PATH = re.compile(r"(?<![\w/.:~+%<\\-])/[\w.@+~-]+(?:/[\w.@+~-]+)*/?")
CELL_FILE = re.compile(r"tmp/ipykernel_\d+/\d+\.py")
STDLIB = re.compile(r"python3(?:\.\d+)?")


def _short_path(match: re.Match) -> str:
    """A path of the grading machine as a student may see it: a module by its name
    (numpy/linalg/_linalg.py), the kernel's file of a cell as [cell], a file of the
    submission's folder by its name there, anything else as .../its last part."""
    path = match[0]
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return "." if parts == ["submission"] else path
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            at = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join(parts[at + 1 :]) or "..."
    if CELL_FILE.fullmatch("/".join(parts)):
        return "[cell]"
    if parts[0] == "submission":
        return "/".join(parts[1:])
    if path.startswith(f"{REPO_ROOT}/"):
        return path[len(str(REPO_ROOT)) + 1 :]
    for at, part in enumerate(parts[:-1]):
        if part.startswith("lib") and STDLIB.fullmatch(parts[at + 1]):
            return "/".join(parts[at + 2 :]) or "..."
    return ".../" + parts[-1]


def scrub_paths(text: str) -> str:
    """`text` without any absolute path of the grading machine (see `_short_path`)."""
    return PATH.sub(_short_path, text) if "/" in text else text


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's header of a frame in a cell: "Cell In[6], line 10, in perceptron(x, w, b, f)".
CELL_FRAME = re.compile(r"\s*Cell In\[(\d{1,9})\], line (\d{1,9})(?:, in ([\w<>.]{1,100}))?")
RED, END = "\x1b[31m", "\x1b[39m"
FAILURE = "feedback_failure"  # metadata of a failed test cell: its sentence, for the contents
SUMMARY = 200  # characters of that sentence at most


def _summary(ename: str, evalue: str) -> str:
    """An error in one line: the first line of its message, after its name unless it is a
    failed check (an AssertionError with a message: the sentence says it all)."""
    first = next((line.strip() for line in evalue.split("\n") if line.strip()), "")
    if not first or ename != "AssertionError":
        first = f"{ename}: {first}" if first else ename
    return first if len(first) <= SUMMARY else first[: SUMMARY - 3] + "..."


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class HideHiddenTests(NbGraderPreprocessor):
    """What a page shows of outputs: no hidden-test source, no path of the grading machine.

    Hidden-test source reaches outputs three ways, each handled where it arrives:
    - a traceback quotes the lines of its frames, among them a test cell's. A traceback is
      cut down to the error's name and message, after the one line that a student can act
      on: that of the innermost frame in one of their own cells (not a test cell), taken
      from the cell's source on the page, never from the traceback's text;
    - a tested function can print its caller's source (inspect, linecache, an IPython
      hook): every line of printed output (streams, displayed and returned values) that
      contains a hidden line (8 characters or more) anywhere is replaced;
    - an error's message can embed source the same way. But the message is also the
      sentence the test's author wrote for the student, and it may name a fragment that a
      hidden test holds too (`... tolerance rtol=1e-10, atol=0`), so in a message only a
      line that quotes a hidden line as source (at its start or end, or in quotes, as
      code_context, getsource and linecache give it) is replaced.
    Absolute paths in outputs are shortened (`scrub_paths`)."""

    def preprocess(self, nb, resources):
        self.hidden = hidden_lines(nb)
        # The student's own code cells, by execution count: where a traceback may point.
        self.own = {
            cell.execution_count: cell.source.split("\n")
            for cell in nb.cells
            if cell.cell_type == "code"
            and not _is_test(cell)
            and type(cell.get("execution_count")) is int
        }
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if _is_test(cell):
            ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                self._error(output)
                if _is_test(cell) and FAILURE not in cell.metadata:
                    cell.metadata[FAILURE] = _summary(output["ename"], output["evalue"])
            if "text" in output:
                output["text"] = scrub_paths(_redact(output["text"], self.hidden))
            for mime in TEXT_DATA:
                if isinstance(output.get("data", {}).get(mime), str):
                    output["data"][mime] = scrub_paths(_redact(output["data"][mime], self.hidden))
        return cell, resources

    def _error(self, output) -> None:
        ename = scrub_paths(_redact_message(output.get("ename", ""), self.hidden))
        evalue = scrub_paths(_redact_message(output.get("evalue", ""), self.hidden))
        sentence = f"{RED}{ename}{END}" + (f": {evalue.strip()}" if evalue.strip() else "")
        output["ename"], output["evalue"] = ename, evalue
        output["traceback"] = [*self._own_frame(output.get("traceback", [])), sentence]

    def _own_frame(self, traceback: list[str]) -> list[str]:
        """The header and the line of the innermost frame in a cell of the student's own,
        or nothing."""
        for entry in reversed(traceback):
            found = CELL_FRAME.match(ANSI.sub("", entry[:1000]))
            if not found or int(found[1]) not in self.own:
                continue
            lines, number = self.own[int(found[1])], int(found[2])
            if 1 <= number <= len(lines):
                where = f", in {found[3]}" if found[3] and found[3] != "<module>" else ""
                return [
                    f"Cell In[{found[1]}], line {number}{where}",
                    f"----> {number} {lines[number - 1]}",
                ]
        return []
