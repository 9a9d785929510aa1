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

# The student stub of every solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Per-cell timeout while autograding: the slowest cell of a solution (training a small
# network on the 8x8 digits) takes a few seconds on a laptop; an endless loop is cut off.
c.Execute.timeout = 120
# Progress bars would land on stderr; the grader also sets TQDM_DISABLE=1 when it executes.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]

# nbgrader scores a test cell 0 when it writes anything to stderr. These lines are noise a
# correct answer may produce (library warnings, progress bars, matplotlib's font cache),
# so they are removed before scoring. Errors are never stream output, so they still count.
STDERR_NOISE = [
    r"\w*Warning: ",  # warnings.warn from numpy, torch, matplotlib, the student's own code
    r"Matplotlib is building the font cache",
    r"\d+%\|",  # tqdm progress bars
    r"it/s\]|s/it\]",
]
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = "|".join(STDERR_NOISE)
