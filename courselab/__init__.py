"""The student's JupyterLab of the course: `python -m courselab` (`make lab`).

    __main__.py   starts JupyterLab on the course folder with the configuration in jupyter/
    jupyter/      a Jupyter configuration folder (put first on JUPYTER_CONFIG_PATH): nbgrader's
                  Validate stays, the instructor's parts of nbgrader (assignment exchange,
                  course list, formgrader, create assignment) are switched off
    validate.py   the server side of Validate: the course's configuration, a summary
    check.py      what Validate runs: the notebook executed and scored as the grader does it
    contents.py   the lab's file view: release/ and solutions/, opened without changes

It ships in the student bundle beside `course`; nothing here knows an answer or a hidden test.
"""
