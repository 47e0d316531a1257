"""The ``turk`` command line: thin commands over library calls (see :mod:`turk.cli.main`)."""

__all__: list[str] = []  # the API is the command line; turk.cli.main.entry runs it
