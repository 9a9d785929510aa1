"""The verbs of `python -m grader`, one module each: build, collect, autograde, feedback, report
and the rest.
"""
