"""Instructor tooling on top of nbgrader: build the course, grade submissions, report.

Importing it changes nothing outside it; an entry point prepares its process with
grader.process.setup_process().
"""
