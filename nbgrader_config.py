"""nbgrader's configuration of the course; the course root is this folder.

`python -m grader` reads this file too (ASSIGNMENTS, the course id, the timeouts), so
nbgrader's own commands and the grader always agree.
"""

c = get_config()  # noqa: F821 (nbgrader and traitlets provide get_config)

# The five assignments, in the order of the lecture. One notebook each, named like its folder.
ASSIGNMENTS = [
    "01_perceptron",
    "02_networks",
    "03_deep_networks",
    "04_learning",
    "05_convolution",
]

c.CourseDirectory.course_id = "intro-to-deep-learning"
c.CourseDirectory.root = "."

# The student stub of every solution region names its exercise and function:
#     # YOUR CODE HERE
#     raise NotImplementedError("Exercise 1.2 (`perceptron`) is not answered yet")
# and every cell that fails while an exercise is unanswered is tagged `raises-exception`, so
# that Run All goes on to the end (grader/notebooks/stubs.py). Through this file, `make build` and a
# plain `nbgrader generate_assignment` make the same release.
from grader.notebooks.stubs import release_preprocessors  # noqa: E402

c.GenerateAssignment.preprocessors = release_preprocessors()
c.ExerciseStubs.stub = '# YOUR CODE HERE\nraise NotImplementedError("{what} is not answered yet")'
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Per-cell timeout while autograding: the slowest cell of a solution (training a small
# network on the 8x8 digits) takes a few seconds on a laptop; an endless loop is cut off.
c.Execute.timeout = 120
# The options of every kernel that nbgrader (autograde, Validate) and the grader start. The
# extension course.messages shows a failed test as its sentence, an unanswered exercise as
# one line, and a warning as a plain line on stdout instead of stderr (which would fail the
# cell); `import course` in a notebook's first cell installs the same. Errors stay errors.
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--InteractiveShellApp.extensions=course.messages",
]

# nbgrader scores a test cell 0 when it writes anything to stderr. These lines are noise a
# correct answer may produce (warnings raised before course.messages is loaded, progress
# bars, matplotlib's font cache), so autograde removes them before scoring (Validate does
# not). Errors are never stream output, so they still count.
STDERR_NOISE = [
    r"\w*Warning: ",  # warnings.warn from numpy, torch, matplotlib, the student's own code
    r"Matplotlib is building the font cache",
    r"\d+%\|",  # tqdm progress bars
    r"it/s\]|s/it\]",
]
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = "|".join(STDERR_NOISE)

# Deadlines. nbgrader keeps an assignment's due date in its gradebook (what
# `nbgrader db assignment add NAME --duedate=...` and formgrader set); the grader writes these
# there when it collects and reports. A date without a zone is UTC. A submission's time is its
# timestamp.txt (see the README: what collect takes it from); nbgrader adds a student's
# extension to the due date.
DUEDATES = {
    # "01_perceptron": "2026-11-27 09:00:00 Europe/Berlin",
}
# Late work: nbgrader's AssignLatePenalties asks this plugin for every late notebook's penalty
# (grader/workdir/late.py), when autograde grades it and again when report runs.
c.AssignLatePenalties.plugin_class = "grader.workdir.late.LatePolicy"
c.LatePolicy.penalty_per_day = 0.1  # a tenth of the score off for each day (24 h) started
c.LatePolicy.cutoff_days = 7  # more than 7 days late: the score is 0

# The Canvas assignment ids, for the columns of the Canvas grade upload (`01_perceptron (12345)`,
# the number in the assignment's Canvas URL); without one, Canvas matches the column by title.
CANVAS_ASSIGNMENT_IDS = {
    # "01_perceptron": 12345,
}
