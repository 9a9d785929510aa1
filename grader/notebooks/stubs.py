"""What the release makes of an exercise: a stub that names it, and cells that may fail.

Two preprocessors of nbgrader's generate_assignment (nbgrader_config.py puts them in its
pipeline, so `make build` and a plain `nbgrader generate_assignment` agree):

- ExerciseStubs: nbgrader's ClearSolutions, whose stub names the exercise and the function
  it sits in, ``raise NotImplementedError("Exercise 1.2 (`perceptron`) is not answered
  yet")``. The kernel shows that error as this one line (course.messages). It runs where
  ClearSolutions ran, before ComputeChecksums, so the checksums are those of the stubs.
- TagCellsThatMayFail: the tag ``raises-exception`` on every code cell that fails while an
  exercise is unanswered: the test cells, an exercise cell that raises at its top level,
  and every cell that uses a name an exercise cell defines, directly or through other such
  cells. JupyterLab's Run All (and nbclient, nbval) goes on past an error in a cell with
  that tag, so a student sees every unanswered exercise in one run and the plots of the
  answered ones. An untagged cell that fails still stops the run. Tags are not part of
  nbgrader's checksums; the solutions/ notebooks carry none (nbval would accept errors).
"""

from __future__ import annotations

import ast
import symtable

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Unicode

from grader.notebooks.cells import BEGIN_SOLUTION
from grader.notebooks.validate import EXERCISE_HEADING

RAISES = "raises-exception"


def exercise_numbers(nb) -> dict[int, str]:
    """Cell index -> the number of the exercise whose heading comes last before the cell."""
    numbers, current = {}, None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = EXERCISE_HEADING.search(cell.source)
            if match:
                current = match.group("number")
        if current is not None:
            numbers[index] = current
    return numbers


def enclosing_function(source: str, line: int) -> str | None:
    """The innermost function of `source` whose body holds the (1-based) line, if any."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found = None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.lineno < line <= (node.end_lineno or 0)
            and (found is None or node.lineno > found.lineno)
        ):
            found = node
    return found.name if found else None


class ExerciseStubs(ClearSolutions):
    """ClearSolutions with a stub that names its exercise and function."""

    stub = Unicode(
        '# YOUR CODE HERE\nraise NotImplementedError("{what} is not answered yet")',
        help="The stub of a code solution region; {what} names the exercise and function.",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        self._numbers = exercise_numbers(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        self._number = self._numbers.get(cell_index)
        return super().preprocess_cell(cell, resources, cell_index)

    def _replace_solution_region(self, cell, language: str) -> bool:
        if cell.cell_type != "code" or language != "python":
            return super()._replace_solution_region(cell, language)
        lines = cell.source.split("\n")
        new_lines, inside, replaced = [], False, False
        for number, line in enumerate(lines, start=1):
            if self.begin_solution_delimeter in line:
                if inside:
                    raise RuntimeError("encountered nested begin solution statements")
                inside = replaced = True
                indent = line[: len(line) - len(line.lstrip())]
                stub = self.stub.format(what=self._what(cell.source, number))
                new_lines += [indent + stub_line for stub_line in stub.split("\n")]
            elif self.end_solution_delimeter in line:
                inside = False
            elif not inside:
                new_lines.append(line)
        if inside:
            raise RuntimeError("no end solution statement found")
        cell.source = "\n".join(new_lines)
        return replaced

    def _what(self, source: str, line: int) -> str:
        name = enclosing_function(source, line)
        if self._number is None:
            return f"`{name}`" if name else "This exercise"
        return f"Exercise {self._number} (`{name}`)" if name else f"Exercise {self._number}"


def _statements(source: str) -> list[tuple[set[str], set[str]]]:
    """(global names read, global names bound) of each top-level statement of a cell, from
    Python's own symbol tables: a function's parameters and locals are not globals, the
    globals it reads are. A name the cell bound before is not counted as read."""
    statements: list[tuple[set[str], set[str]]] = []
    bound: set[str] = set()
    for statement in ast.parse(source).body:
        reads, binds = set(), set()
        tables = [symtable.symtable(ast.unparse(statement), "<cell>", "exec")]
        while tables:
            table = tables.pop()
            module = table.get_type() == "module"
            for symbol in table.get_symbols():
                if symbol.is_referenced() and (module or symbol.is_global()):
                    reads.add(symbol.get_name())
                if (module or symbol.is_declared_global()) and (
                    symbol.is_assigned() or symbol.is_imported()
                ):
                    binds.add(symbol.get_name())
            tables += table.get_children()
        targets = (
            [statement.target]
            if isinstance(statement, ast.For | ast.AsyncFor)
            else [item.optional_vars for item in statement.items]
            if isinstance(statement, ast.With | ast.AsyncWith)
            else []
        )
        for target in filter(None, targets):  # bound before the body reads them
            reads -= {node.id for node in ast.walk(target) if isinstance(node, ast.Name)}
        statements.append((reads - bound, binds))
        bound |= binds
    return statements


def _raises_at_top_level(source: str) -> bool:
    """Whether a solution region of the cell is at its top level (its stub raises when the
    cell runs, not when a function of it is called)."""
    return any(
        line.strip() == BEGIN_SOLUTION and not line[:1].isspace() for line in source.splitlines()
    )


class TagCellsThatMayFail(NbGraderPreprocessor):
    """Tag `raises-exception` the code cells that fail while an exercise is unanswered."""

    def preprocess(self, nb, resources):
        # Names an unanswered exercise leaves undefined or broken: what exercise cells bind,
        # and what any cell binds that reads such a name before binding it.
        tainted: set[str] = set()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                statements = _statements(cell.source)
            except (SyntaxError, ValueError):  # IPython syntax: no names known
                statements = []
            if is_solution(cell):
                may_fail, taints = _raises_at_top_level(cell.source), True
            else:
                may_fail = is_grade(cell) or any(reads & tainted for reads, _ in statements)
                taints = may_fail
            if taints:  # all it binds: a list it filled before failing may be half full
                for _, binds in statements:
                    tainted |= binds
            if may_fail:
                tags = list(cell.metadata.get("tags", []))
                if RAISES not in tags:
                    cell.metadata["tags"] = [*tags, RAISES]
        return nb, resources


def release_preprocessors() -> list:
    """nbgrader's generate_assignment pipeline with ExerciseStubs in place of ClearSolutions
    and TagCellsThatMayFail before it (it reads the solutions' names)."""
    default = GenerateAssignment.class_traits()["preprocessors"].default()
    pipeline = []
    for preprocessor in default:
        if preprocessor is ClearSolutions:
            pipeline += [TagCellsThatMayFail, ExerciseStubs]
        else:
            pipeline.append(preprocessor)
    return pipeline
