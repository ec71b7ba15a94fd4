"""Checking a command's input: what each command raises for bad input, and the checks
they share. A leaf: it imports nothing of the project, so that every command, at any
layer, can stand on it."""


import tempfile
from pathlib import Path


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


def seeds(text, what="--seeds"):
    """``3``, ``1,5,9``, ``1-4`` (and mixes) as a list of seeds, or BadInput."""
    out = []
    for part in str(text).split(","):
        first, dash, last = part.strip().partition("-")
        if dash and first:
            a, b = integer(first, what, 0), integer(last, what, 0)
            if b < a or b - a > 10_000:
                raise BadInput(f"{what} range {part!r} is empty or too long")
            out += range(a, b + 1)
        else:
            out.append(integer(part, what))
    return out


def writable_file(path, what):
    """Check before any work that ``path`` can be written, by opening it for appending
    (its folder is made now; a file that was not there is removed again): permission
    bits do not tell root, or a read-only file system, or /proc."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{what} {path!r} is a folder, not a file")
    existed = p.exists()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "a"):
            pass
    except OSError as e:
        raise BadInput(f"{what} {path!r} cannot be written: {e.strerror}") from None
    if not existed:
        p.unlink()


def writable_dir(path, what):
    """Check before any work that files can be made in the folder ``path`` (made now)."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise BadInput(f"{what} {path!r} is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        raise BadInput(f"{what} {path!r} cannot be written: {e.strerror}") from None
