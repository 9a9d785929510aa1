"""Notebook utilities: reading cells, the course's notebook conventions, release stubs and
inert HTML.
"""
