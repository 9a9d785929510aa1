"""Catching a submission that disarms the tests, in the kernel the tests run in.

Student code and tests share one Python process, so a submission can replace what the
tests call (`np.testing.assert_allclose = lambda *a, **k: None`, `assert_close` from
course.testing, IPython's cell runner, an AST transformer that empties test cells) and
pass everything. Restoring those objects before each test cannot work: code in the same
process can undo any restore. So the worker checks, in two ways:

1. Canaries. Before every test cell it runs, in the same kernel and in one cell, calls
   that must each end in an AssertionError: each assertion helper the tests use (found
   with `ast`, under whatever alias the notebook imports it) on 0.25 against 0.75, and
   `assert False`. Any other outcome is tampering. This catches blanket replacements.
2. A perturbed twin. Each test cell runs a second time with one check changed so that it
   must fail: a digit of an expected number, a comparison turned around, an assertion
   negated (a computed expected value scaled, as a last resort), chosen at random by the
   worker among the checks that run whenever the cell passes (`Checks.twin`). The real
   run and the twin take the same path into the kernel, in random order, and the
   random-number generators and the variables are put back between them (SNAPSHOT): the
   kernel sees the same test run twice, one token apart. When the real run passes, the
   twin must fail; if it passes too, the checks do not check. This catches replacements
   written to recognise the canaries, and always-equal objects.

What remains possible: code that knows this scheme and tells the two runs apart by what
it knows of the test (a visible test's text, a plausible expected value) passes one of
them at random; it gains the test's points half of the time and is caught otherwise.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass

from grader.notebooks.scoring import is_test_cell

MARK = "'grader check'"


@dataclass(frozen=True)
class Helper:
    """An assertion helper: its canary's arguments, and where its expected value sits."""

    canary: str  # arguments on which the real helper raises AssertionError
    expected: int | None = None  # position of the expected value; None: no twin of it
    keyword: str = ""  # its keyword name
    kind: str = "exact"  # exact, close (rtol/atol), decimal, shape, kinds
    rtol: float = 0.0  # default tolerances of a "close" helper
    atol: float = 0.0
    positional_tolerances: tuple[str, ...] = ()  # rtol, atol as positional arguments
    decimal: int = 7


HELPERS = {
    "numpy.testing.assert_allclose": Helper(
        f"0.25, 0.75, err_msg={MARK}",
        1,
        "desired",
        "close",
        rtol=1e-7,
        positional_tolerances=("rtol", "atol"),
    ),
    "numpy.testing.assert_array_equal": Helper(f"0.25, 0.75, err_msg={MARK}", 1, "y"),
    "numpy.testing.assert_equal": Helper(f"0.25, 0.75, err_msg={MARK}", 1, "desired"),
    "numpy.testing.assert_almost_equal": Helper(
        f"0.25, 0.75, err_msg={MARK}",
        1,
        "desired",
        "decimal",
        decimal=7,
        positional_tolerances=("decimal",),
    ),
    "numpy.testing.assert_array_almost_equal": Helper(
        f"0.25, 0.75, err_msg={MARK}",
        1,
        "y",
        "decimal",
        decimal=6,
        positional_tolerances=("decimal",),
    ),
    "numpy.testing.assert_approx_equal": Helper(f"0.25, 0.75, err_msg={MARK}"),
    "numpy.testing.assert_array_less": Helper(f"0.75, 0.25, err_msg={MARK}"),
    "course.testing.assert_close": Helper(f"0.25, 0.75, {MARK}", 1, "expected", "close", rtol=1e-7),
    "course.testing.assert_equal": Helper(f"0.25, 0.75, {MARK}", 1, "expected"),
    "course.testing.assert_shape": Helper(f"[0.25], (2,), {MARK}", 1, "expected_shape", "shape"),
    "course.testing.assert_dtype_kind": Helper(f"0.25, 'i', {MARK}", 1, "kinds", "kinds"),
    # torch's tolerances depend on the dtype; these are the widest (bfloat16's).
    "torch.testing.assert_close": Helper(
        f"0.25, 0.75, msg={MARK}", 1, "expected", "close", rtol=1.6e-2, atol=1e-5
    ),
}
# Calls that only make an array of a literal: the literal inside is the expected value.
ARRAY_MAKERS = ("numpy.array", "numpy.asarray", "torch.tensor", "torch.as_tensor")
FLOAT_DTYPES = (
    "numpy.float64",
    "numpy.float32",
    "torch.float64",
    "torch.float32",
    "torch.double",
    "torch.float",
    "float",
)
FLIPPED = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
OPERATOR = {
    ast.Eq: r"==",
    ast.NotEq: r"!=",
    ast.Lt: r"<(?!=)",
    ast.GtE: r">=",
    ast.Gt: r">(?!=)",
    ast.LtE: r"<=",
    ast.Is: r"\bis\b(?!\s+not\b)",
    ast.IsNot: r"\bis\s+not\b",
    ast.In: r"(?<!not )\bin\b",
    ast.NotIn: r"\bnot\s+in\b",
}
SPELLING = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
NUMBER = re.compile(r"(\d[\d_]*)?(\.[\d_]*)?([eE][+-]?\d[\d_]*)?")
KINDS = "fiubc"  # numpy dtype kinds course.testing.assert_dtype_kind knows
ATOMIC = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)
SMALLEST_CHANGE = 1e-3  # relative: survives float32 and any sane test tolerance


class Tampered(Exception):
    """A check the tests rely on no longer fails when it must."""


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # IPython syntax (magics), null bytes
        return None


def imported_names(nb) -> dict[str, set[str]]:
    """Name -> the dotted paths the notebook's imports bind it to (every code cell)."""
    names: dict[str, set[str]] = {}
    for cell in nb.cells:
        tree = _parse(cell.source) if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names.setdefault(alias.asname, set()).add(alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        names.setdefault(top, set()).add(top)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        names.setdefault(alias.asname or alias.name, set()).add(
                            f"{node.module}.{alias.name}"
                        )
    return names


def resolve(node: ast.AST, names: dict[str, set[str]]) -> set[str]:
    """The dotted paths an expression such as `npt.assert_allclose` may stand for."""
    if isinstance(node, ast.Name):
        return names.get(node.id, set()) | {node.id}
    if isinstance(node, ast.Attribute):
        return {f"{path}.{node.attr}" for path in resolve(node.value, names)}
    return set()


def helper_of(node: ast.AST, names) -> tuple[str, Helper] | None:
    for path in sorted(resolve(node, names)):
        if path in HELPERS:
            return path, HELPERS[path]
    return None


def canary_code(expression: str, arguments: str) -> str:
    """Code that must end in an AssertionError: the helper as the kernel has it now, called
    on arguments it must reject; a name or attribute not there yet has nothing to check."""
    return (
        f"try:\n    {expression}\nexcept (NameError, AttributeError):\n"
        f"    assert False, {MARK}\n{expression}({arguments})"
    )


def canary_block(canaries: list[str]) -> str:
    """All canaries in one cell (one round trip, one traceback): each must end in an
    AssertionError, else the cell raises `RuntimeError("grader check K: ...")` naming
    canary K; when all do, the cell ends in `assert False` at its top level, so that a
    cell runner that swallows errors shows too. No name of the kernel's is touched."""
    parts = []
    for number, code in enumerate(canaries[1:], start=1):
        body = "\n".join("    " + line for line in code.splitlines())
        parts.append(  # by name, as in an error reply: builtins.AssertionError may be another
            f"try:\n{body}\nexcept BaseException:\n"
            f"    if __import__('sys').exc_info()[0].__name__ != 'AssertionError':\n"
            f"        raise RuntimeError({MARK} + ' {number}: raised ' + "
            f"__import__('sys').exc_info()[0].__name__) from None\n"
            f"else:\n    raise RuntimeError({MARK} + ' {number}: no error')\n"
        )
    return "".join(parts) + canaries[0]


def disarmed(canaries: list[str], ename: str | None, evalue: str = "") -> str | None:
    """What a run of `canary_block(canaries)` shows was disarmed, or None when it ended as
    it must, in an AssertionError. `ename`: the name of the exception it ended in, as the
    kernel's error reply gives it (None: it raised nothing); `evalue`: its message."""
    if ename == "AssertionError":
        return None
    if ename is None:
        return f"`{canaries[0]}` no longer fails"
    what = failed_canary(canaries, evalue) if ename == "RuntimeError" else None
    return what or f"the canaries raise {ename[:60]}, not an AssertionError"


def failed_canary(canaries: list[str], evalue: str) -> str | None:
    """The canary a canary block's RuntimeError names, and what it did instead."""
    match = re.fullmatch(r"grader check (\d+): (no error|raised \w{1,60})", evalue)
    if not match or not 0 < int(match.group(1)) < len(canaries):
        return None
    outcome = (
        "no longer fails"
        if match.group(2) == "no error"
        else (f"{match.group(2)}, not an AssertionError")
    )
    return f"`{canaries[int(match.group(1))].splitlines()[-1]}` {outcome}"


# --- the twin: one check of a test cell changed so that it must fail --------------------


@dataclass
class Edit:
    """Replace source[start:end] by text; `change` does the same to the parsed tree (applied
    to the node at `node`, its index in ast.walk order), to verify the edit."""

    start: int
    end: int
    text: str
    node: int
    change: Callable[[ast.AST], None]


@dataclass
class Twin:
    source: str
    line: int  # 1-based line of the changed check


class Checks:
    """What the worker checks in one notebook's kernel: canaries and twins."""

    def __init__(self, nb):
        self.names = imported_names(nb)
        calls: dict[str, str] = {}  # expression -> canary arguments
        paths: set[str] = set()
        for name, bound in self.names.items():
            for path in bound & set(HELPERS):
                calls[name] = HELPERS[path].canary
                paths.add(path)
        for cell in nb.cells:
            tree = _parse(cell.source) if is_test_cell(cell) else None
            for node in ast.walk(tree) if tree else ():
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    found = helper_of(node.func, self.names)
                    if found:
                        calls[ast.unparse(node.func)] = found[1].canary
                        paths.add(found[0])
        own = {}  # the module's own, which a test importing the name afresh gets
        for path in paths:
            module, _, name = path.rpartition(".")
            own[f"__import__({module!r}, fromlist=['_']).{name}"] = HELPERS[path].canary
        self.canaries = [f"assert False, {MARK}"] + [
            canary_code(expression, arguments)
            for expression, arguments in [*sorted(calls.items()), *sorted(own.items())]
        ]
        self.canary_block = canary_block(self.canaries)

    def twin(self, source: str, rng) -> Twin | None:
        """The cell's source with one check changed so that it must fail, chosen with `rng`
        among the checks that run whenever the cell passes; None when there is none."""
        tree = _parse(source)
        if tree is None:
            return None
        text = Text(source)
        order = {id(node): i for i, node in enumerate(ast.walk(tree))}
        sites, scaled = [], []
        for statement in _reached(tree.body):
            if isinstance(statement, ast.Assert):
                sites += _truth_sites(statement, "test", text, order, self.names)
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                exact, rough = self._helper_sites(statement.value, text, order, rng)
                sites.append(exact)
                scaled.append(rough)
        # Scaling an expected value is the last resort: it shows in the twin's text.
        sites = [site for site in sites if site] or [site for site in scaled if site]
        while sites:
            site = rng.choice(sites)
            edit = site.pop(rng.randrange(len(site)))
            if not site:
                sites.remove(site)
            changed = source[: edit.start] + edit.text + source[edit.end :]
            if _verified(source, changed, edit):
                return Twin(changed, source.count("\n", 0, edit.start) + 1)
        return None

    def _helper_sites(self, call: ast.Call, text: Text, order, rng):
        """(changes of a literal expected value, a scaling of a computed one) of a call of
        an assertion helper."""
        found = helper_of(call.func, self.names)
        if not found or found[1].expected is None:
            return [], []
        helper = found[1]
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            return [], []
        arguments = {k.arg: k.value for k in call.keywords}
        for name, value in zip(
            ("actual", "expected", *helper.positional_tolerances), call.args, strict=False
        ):
            arguments.setdefault(name, value)
        expected = arguments.get("expected", arguments.get(helper.keyword))
        if expected is None:
            return [], []
        if helper.kind == "kinds":
            return _kinds_edits(expected, text, order), []
        rtol: float | None = 0.0
        atol: float | None = 0.0
        if helper.kind == "close":
            rtol = _literal_number(arguments.get("rtol"), helper.rtol)
            atol = _literal_number(arguments.get("atol"), helper.atol)
        elif helper.kind == "decimal":
            decimal = _literal_number(arguments.get("decimal"), helper.decimal)
            atol = None if decimal is None else 1.5 * 10.0**-decimal
        if rtol is None or atol is None:
            return [], []  # tolerances the worker cannot read: no change is sure to fail
        literal = _array_literal(expected, self.names)
        if literal is not None:
            return [
                edit
                for node in _numbers_in(literal, shape=helper.kind == "shape")
                for edit in _number_edits(node, text, order, rtol, atol)
            ], []
        if helper.kind == "shape" or max(rtol, atol) > MAX_SCALED_TOLERANCE:
            return [], []
        return [], [_scaled(call, expected, text, order, rng)]


def _straight(node) -> bool:
    """Whether every statement of the node's body runs once the body is entered: no
    break, continue, return or yield in it (nested functions and classes aside)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(
            child, ast.Break | ast.Continue | ast.Return | ast.Yield | ast.YieldFrom | ast.Await
        ):
            return False
        stack.extend(ast.iter_child_nodes(child))
    return True


def _reached(body, functions=None, displays=None):
    """The statements of `body` that run whenever it runs to its end: its own, the bodies
    of loops over something surely not empty, and of functions it defines and then calls
    (once each), provided none of those can leave early."""
    functions = dict(functions or {})
    displays = dict(displays or {})  # names bound to a list, tuple or dict display
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef) and not statement.decorator_list:
            functions[statement.name] = statement if _straight(statement) else None
        elif (
            isinstance(statement, ast.For)
            and _straight(statement)
            and _not_empty(statement.iter, displays)
        ):
            yield from _reached(statement.body, functions, displays)
        elif (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
            and functions.get(statement.value.func.id) is not None
        ):
            function = functions.pop(statement.value.func.id)
            yield from _reached(function.body, functions)
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        displays.pop(name.id, None)
                        functions.pop(name.id, None)
            if (
                len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and _not_empty(statement.value, {})
            ):
                displays[statement.targets[0].id] = statement.value


def _not_empty(node, displays) -> bool:
    """Whether an iterable surely yields something: a display with items, a range of
    literal bounds, a name bound to a display, and enumerate, zip, sorted ... of those."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return bool(node.elts) and not any(isinstance(e, ast.Starred) for e in node.elts)
    if isinstance(node, ast.Dict):
        return bool(node.keys) and None not in node.keys
    if isinstance(node, ast.Name):
        return node.id in displays
    if not isinstance(node, ast.Call) or node.keywords:
        return False
    if isinstance(node.func, ast.Attribute) and node.func.attr in ("items", "keys", "values"):
        return (
            not node.args
            and isinstance(node.func.value, ast.Name)
            and isinstance(displays.get(node.func.value.id), ast.Dict)
        )
    if not isinstance(node.func, ast.Name) or not node.args:
        return False
    if node.func.id == "range":
        try:
            return len(range(*(ast.literal_eval(a) for a in node.args))) > 0
        except (ValueError, TypeError, SyntaxError):
            return False
    if (
        node.func.id in ("enumerate", "sorted", "reversed", "list", "tuple")
        and len(node.args) == 1
        or node.func.id == "zip"
    ):
        return all(_not_empty(a, displays) for a in node.args)
    return False


def _scaled(call: ast.Call, node, text: Text, order, rng) -> Edit:
    """`expected` -> `(expected) * a + b`, with a and b drawn so that no value a test would
    use stays the same (the fixed point -b / (a - 1) is never a round number)."""
    while True:
        factor = rng.choice((1.37, 1.53, 1.71, 1.89, 2.13, 2.41))
        offset = rng.choice((0.29, 0.41, 0.61, 0.83, 1.07))
        add = rng.random() < 0.5
        fixed = (-offset if add else offset) / (factor - 1)
        if abs(fixed * 100 - round(fixed * 100)) > 0.01:
            break
    start, end = text.span(node)
    inner = text.of(node) if isinstance(node, ATOMIC) else f"({text.of(node)})"
    new = f"{inner} * {factor} {'+' if add else '-'} {offset}"

    def make(child):
        return ast.BinOp(
            left=ast.BinOp(left=child, op=ast.Mult(), right=ast.Constant(factor)),
            op=ast.Add() if add else ast.Sub(),
            right=ast.Constant(offset),
        )

    if node in call.args:
        return Edit(start, end, new, order[id(call)], _setter("args", call.args.index(node), make))
    keyword = next(k for k in call.keywords if k.value is node)
    return Edit(start, end, new, order[id(keyword)], _setter("value", None, make))


MAX_SCALED_TOLERANCE = 0.05  # a scaled value moves by 0.29 at least, where it moves least


class Text:
    """A cell's source, with ast positions (line, UTF-8 byte column) as string offsets."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, column: int) -> int:
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        return self.starts[line - 1] + len(text.encode()[:column].decode(errors="replace"))

    def span(self, node) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )

    def of(self, node) -> str:
        start, end = self.span(node)
        return self.source[start:end]


def _verified(source: str, changed: str, edit: Edit) -> bool:
    """Whether the text edit parses to exactly the intended change of the tree."""
    expected = ast.parse(source)
    edit.change(list(ast.walk(expected))[edit.node])
    got = _parse(changed)
    return got is not None and ast.dump(got) == ast.dump(expected)


def _setter(field: str, index: int | None, make: Callable[[ast.expr], ast.expr]):
    """A change that replaces the child `field` (item `index`) of a node by make(child)."""

    def change(parent):
        if index is None:
            setattr(parent, field, make(getattr(parent, field)))
        else:
            getattr(parent, field)[index] = make(getattr(parent, field)[index])

    return change


def _truth_sites(parent, field: str, text: Text, order, names, index: int | None = None):
    """Sites in an expression that was true when its assertion passed (the test of an
    assert, or one operand of a true `and`): each edit makes it false."""
    node = getattr(parent, field) if index is None else getattr(parent, field)[index]
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [
            site
            for i in range(len(node.values))
            for site in _truth_sites(node, "values", text, order, names, i)
        ]
    if isinstance(node, ast.Compare):
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            edits = []  # `== 9`: a digit of the expected number, which catches always-equal objects
            for side in (node.left, node.comparators[0]):
                literal = _array_literal(side, names)
                for number in _numbers_in(literal) if literal is not None else ():
                    edits += _number_edits(number, text, order, 0.0, 0.0)
            if edits:
                return [edits]
        return [_flip_edits(node, text, order)]
    start, end = text.span(node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = text.of(node.operand)
        if isinstance(parent, ast.BoolOp) and not isinstance(node.operand, ATOMIC):
            inner = f"({inner})"
        make = _setter(field, index, _operand_of_not)
        return [[Edit(start, end, inner, order[id(parent)], make)]]
    make = _setter(field, index, lambda n: ast.UnaryOp(op=ast.Not(), operand=n))
    inner = text.of(node) if isinstance(node, ATOMIC) else f"({text.of(node)})"
    return [[Edit(start, end, f"not {inner}", order[id(parent)], make)]]


def _flip_edits(node: ast.Compare, text: Text, order) -> list[Edit]:
    """Turn one operator of a comparison into its opposite (`<` into `>=`, `in` into
    `not in`): a true comparison becomes false."""
    edits = []
    operands = [node.left, *node.comparators]
    for i, op in enumerate(node.ops):
        start, end = text.span(operands[i])[1], text.span(operands[i + 1])[0]
        between = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), text.source[start:end])
        match = re.search(OPERATOR[type(op)], between)
        if not match:
            continue
        flipped = FLIPPED[type(op)]

        def change(compare, i=i, flipped=flipped):
            compare.ops[i] = flipped()

        edits.append(
            Edit(
                start + match.start(),
                start + match.end(),
                SPELLING[flipped],
                order[id(node)],
                change,
            )
        )
    return edits


def _operand_of_not(node: ast.expr) -> ast.expr:
    """`x` of `not x`: the child an edit that drops a `not` was made for."""
    if not isinstance(node, ast.UnaryOp):
        raise TypeError(f"the edit drops a `not`, but the node is {type(node).__name__}")
    return node.operand


def _literal_number(node, default: float | None) -> float | None:
    """A tolerance given as a literal number, the default when absent, None otherwise."""
    if node is None:
        return default
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return abs(float(value))


def _array_literal(node, names):
    """The literal inside `np.array([...])` and its kind, or the literal itself."""
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and not any(isinstance(a, ast.Starred) for a in node.args)
    ):
        if resolve(node.func, names) & set(ARRAY_MAKERS) and all(
            k.arg == "dtype" and resolve(k.value, names) & set(FLOAT_DTYPES) for k in node.keywords
        ):
            node = node.args[0]
        else:
            return None
    return node if _is_number_literal(node) else None


def _is_number_literal(node) -> bool:
    if isinstance(node, ast.List | ast.Tuple):
        return all(
            _is_number_literal(e) or (isinstance(e, ast.Constant) and e.value is None)
            for e in node.elts
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and (
            not isinstance(node.value, float)
            or node.value == node.value
            and abs(node.value) < 1e300
        )
    )


def _numbers_in(node, shape: bool = False) -> list[ast.Constant]:
    """The number constants of a literal (in a shape: its integers)."""
    if isinstance(node, ast.List | ast.Tuple):
        return [c for e in node.elts for c in _numbers_in(e, shape)]
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if not isinstance(node, ast.Constant) or node.value is None:
        return []
    if shape and (isinstance(node.value, bool) or not isinstance(node.value, int)):
        return []
    return [node]


def _number_edits(node: ast.Constant, text: Text, order, rtol: float, atol: float):
    """Every one-digit change of a number's literal that no honest value can pass: the new
    value differs by more than twice the tolerance (and by SMALLEST_CHANGE, relatively)."""
    written = text.of(node)
    start, end = text.span(node)
    old = node.value
    if not isinstance(old, int | float):  # bool too; what _numbers_in gives, nothing else
        raise TypeError(f"not a number literal: {written}")
    if isinstance(old, bool):
        candidates = [("False" if old else "True", not old)]
    else:
        match = NUMBER.fullmatch(written)
        if not match or not written or not written[0].isdigit() and written[0] != ".":
            return []
        mantissa_end = match.end(2) if match.group(2) else match.end(1)
        candidates = []
        for i in range(mantissa_end):
            if not written[i].isdigit():
                continue
            for digit in "0123456789":
                leading = i == 0 and match.group(1) and len(match.group(1).replace("_", "")) > 1
                if digit == written[i] or (leading and digit == "0"):
                    continue
                new = written[:i] + digit + written[i + 1 :]
                try:
                    value = ast.literal_eval(new)
                except (ValueError, SyntaxError):
                    continue
                candidates.append((new, value))
    edits = []
    for new, value in candidates:
        difference = abs(float(value) - float(old))
        size = max(abs(float(value)), abs(float(old)))
        if difference <= 2 * atol + rtol * 2 * size or difference < SMALLEST_CHANGE * size:
            continue

        def change(constant, value=value):
            constant.value = value

        edits.append(Edit(start, end, new, order[id(node)], change))
    return edits


def _kinds_edits(node, text: Text, order) -> list[Edit]:
    """assert_dtype_kind(x, "f", ...): ask for kinds the honest array does not have."""
    if not (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value
        and set(node.value) <= set(KINDS)
    ):
        return []
    start, end = text.span(node)
    edits = []
    for kind in sorted(set(KINDS) - set(node.value)):

        def change(constant, kind=kind):
            constant.value = kind

        edits.append(Edit(start, end, repr(kind), order[id(node)], change))
    return edits


# Run in the kernel around a test cell and its twin (grader.execution.worker): `NAME('save', slot)`
# keeps the variables and the states of the random-number generators (Python's, numpy's
# global one, torch's when imported), `NAME('restore', slot)` puts them back; so both runs
# start from the same state and the cells after see what a plain run leaves.
SNAPSHOT = """\
def {name}(op, slot, _kept={{}}):
    import random
    import sys
    names = globals()
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if op == "save":
        _kept[slot] = (
            {{key: value for key, value in names.items() if key != "{name}"}},
            random.getstate(),
            numpy.random.get_state() if numpy is not None else None,
            torch.get_rng_state() if torch is not None else None,
        )
        return
    kept, python_state, numpy_state, torch_state = _kept[slot]
    for key in [key for key in names if key != "{name}" and key not in kept]:
        del names[key]
    names.update(kept)
    random.setstate(python_state)
    if numpy is not None and numpy_state is not None:
        numpy.random.set_state(numpy_state)
    if torch is not None and torch_state is not None:
        torch.set_rng_state(torch_state)
"""


def snapshot_code(name: str) -> str:
    return SNAPSHOT.format(name=name)


def twin_cell(cell, twin: Twin):
    """A copy of the test cell that runs the twin's source."""
    copied = copy.deepcopy(cell)
    copied.source = twin.source
    return copied
