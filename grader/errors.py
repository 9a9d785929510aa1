"""The one exception the command line turns into a one-line message."""


class GraderError(Exception):
    """A problem the instructor can fix; the message names it and says how."""
