"""How long a submission may run when nobody says otherwise: the grader's default timeouts.

The per-cell timeout of real grading is nbgrader's `c.Execute.timeout` in the course's
nbgrader_config.py, which nbgrader's own commands read too; CELL_TIMEOUT_S stands in only
for a course whose configuration sets none.
"""

from __future__ import annotations

CELL_TIMEOUT_S = 120
# A whole notebook's wall time (each solution runs in under 60 s): what one submission that
# keeps every cell just under the cell timeout can cost a run.
NOTEBOOK_TIMEOUT_S = 900
# The demo's synthetic class: the longest cell of the course runs in about 4 s, and ivy's
# endless loop waits this long.
DEMO_CELL_TIMEOUT_S = 10
