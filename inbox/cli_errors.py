"""The error every `inbox` command raises for bad input: printed as one line, exit 2.

In a module of its own so that `python -m inbox.cli` (where the running copy of inbox.cli is
`__main__`) and the command modules share one class.
"""


class CommandError(Exception):
    """A problem with the command's input, said in one line."""
