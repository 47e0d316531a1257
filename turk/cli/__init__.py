"""The ``turk`` command line: thin commands over library calls (see :mod:`turk.cli.main`)."""
