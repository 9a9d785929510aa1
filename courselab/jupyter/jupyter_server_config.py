"""The student's JupyterLab: `python -m courselab` puts this folder first on
JUPYTER_CONFIG_PATH, so it wins over the environment's and the user's configuration.
labconfig/page_config.json switches off the matching parts of nbgrader's labextension.
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (traitlets provides get_config)

c.ServerApp.jpserver_extensions = {
    # The instructor's side of nbgrader. The assignment exchange and the course list need an
    # exchange folder that a student's machine does not have ("Error fetching courses!"),
    # and formgrader made a gradebook.db wherever the lab started. Instructors grade with
    # `make formgrader` (python -m grader formgrader) on the grading folder.
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.formgrader": False,
    # Validate stays: the course's extension answers the button instead of nbgrader's,
    # with the course's nbgrader_config.py and a summary (see courselab/validate.py).
    "nbgrader.server_extensions.validate_assignment": False,
    "courselab.validate": True,
}
# The root shows release/ and solutions/; notebooks open unmodified (courselab/contents.py).
c.ServerApp.contents_manager_class = "courselab.contents.StudentContentsManager"
