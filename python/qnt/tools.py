"""The qnt command-line tools (quant-opt, quant-run, quant-compile) from Python."""

import os
import subprocess
from pathlib import Path


class ToolError(RuntimeError):
    """A tool is missing or failed; the message names the step and has its stderr."""


def build_dir(path=None):
    """``path``, else $QNT_BUILD_DIR, else <repo>/build."""
    return Path(path or os.environ.get("QNT_BUILD_DIR",
                                       Path(__file__).resolve().parents[2] / "build"))


def tool(name, build=None):
    """The path of tool ``name`` in the build (ToolError if it is not there)."""
    path = build_dir(build) / "bin" / name
    if not path.exists():
        raise ToolError(f"{path} not found: build qnt first (or set QNT_BUILD_DIR)")
    return str(path)


def run(step, name, *args, build=None):
    """Runs tool ``name`` with ``args``; its stdout. A failure is a ToolError
    naming ``step`` with the tool's messages."""
    command = [tool(name, build), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise ToolError(f"{step} failed ({name} exited with {result.returncode}):\n"
                        f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout
