"""Checking a command's input: what each command raises for bad input, and the checks
they share. A leaf: it imports nothing of the project, so that every command, at any
layer, can stand on it."""


class BadInput(Exception):
    """Bad input to a command; the message names the problem in one line (exit 2)."""


def integer(value, what, minimum=None):
    """``value`` as an int (decimal, 0x.., 1_000), or BadInput naming ``what``."""
    try:
        n = int(str(value).replace("_", ""), 0)
    except ValueError:
        raise BadInput(f"{what} {value!r} is not an integer") from None
    if minimum is not None and n < minimum:
        raise BadInput(f"{what} must be at least {minimum}, got {n}")
    return n
