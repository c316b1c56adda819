"""Hatchling hooks: with $CRYPTCOUNT_WHEEL_BINARY set, the wheel carries that executable.

The executable goes in as package data (``cryptcount/_bin/cryptcount``, mode 0755, where
``cryptcount._transport.bundled_binary`` looks), the wheel is tagged for this platform
(``py3-none-linux_x86_64``: the executable needs no particular Python, but this OS and CPU;
``auditwheel repair`` then narrows it to the manylinux glibc floor it really needs and bundles
any shared library outside that policy), and a ``cryptcount`` console command is added. Without
the variable, the wheel is the pure-Python driver (``py3-none-any``) and adds no command, so a
``cryptcount`` on PATH is not shadowed.
"""

from __future__ import annotations

import os
import sysconfig
from typing import Any, Dict

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

ENV = "CRYPTCOUNT_WHEEL_BINARY"


def _binary() -> str | None:
    path = os.environ.get(ENV)
    if not path:
        return None
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(f"${ENV}={path!r} is not an executable file (run `make dist` first)")
    return os.path.abspath(path)


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: Dict[str, Any]) -> None:
        if _binary() is not None:
            metadata["scripts"] = {"cryptcount": "cryptcount._cli:main"}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: Dict[str, Any]) -> None:
        binary = _binary()
        if self.target_name != "wheel" or binary is None:
            return
        platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{platform}"
        build_data["force_include"][binary] = "cryptcount/_bin/cryptcount"
        # The executable loads librnp (OpenPGP) with dlopen, from this library next to it when
        # present: its dependency on librnp makes `auditwheel repair` bundle librnp and Botan.
        anchor = os.path.join(os.path.dirname(binary), "libcryptcount-rnp.so")
        if os.path.isfile(anchor):
            build_data["force_include"][anchor] = "cryptcount/_bin/libcryptcount-rnp.so"
