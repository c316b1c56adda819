"""The `cryptcount` console command of the Python package: runs the native executable.

The platform wheel carries the executable as package data (``cryptcount/_bin/cryptcount``);
this launcher finds it like :class:`~cryptcount.Coprocess` does and replaces itself with it,
so arguments, stdin/stdout (frames), signals and the exit status are the executable's own.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, NoReturn, Optional

from ._transport import bundled_binary


def _path_lookup_skipping_self() -> Optional[str]:
    # This launcher is itself `cryptcount` on PATH (a venv's bin/): skip it, or it would run itself.
    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        found = shutil.which("cryptcount", path=entry or os.curdir)
        if found is not None and os.path.realpath(found) != me:
            return found
    return None


# Set for the program this launcher runs: if that is another venv's launcher (PATH can hold two),
# it must not go back to PATH, or the two would run each other forever.
_GUARD = "_CRYPTCOUNT_LAUNCHER"


def main(argv: Optional[List[str]] = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    binary = os.environ.get("CRYPTCOUNT_BIN") or bundled_binary()
    if binary is None and not os.environ.get(_GUARD):
        binary = _path_lookup_skipping_self()
        os.environ[_GUARD] = "1"
    if binary is None:
        sys.stderr.write(
            "cryptcount: this Python package does not carry the executable (install the platform "
            "wheel), and neither $CRYPTCOUNT_BIN nor PATH names one\n"
        )
        sys.exit(127)
    try:
        os.execv(binary, [binary, *args])
    except OSError as error:
        sys.stderr.write(f"cryptcount: cannot run {binary}: {error.strerror}\n")
        sys.exit(126)
