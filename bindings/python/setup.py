"""Build step of the iscc-vdb Python package.

The package calls libiscc_vdb through its C ABI with ctypes. Building the
package builds that library with cargo (release profile, library only) from
the repository this directory lives in, and copies it and its header
``iscc_vdb.h`` into the package, so the wheel carries everything it needs and
nothing is installed system-wide. ``ISCC_VDB_LIB`` (a path to an already
built ``libiscc_vdb.so``) skips the cargo build; the test script uses it to
reuse the library the Rust tests just built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class BuildWithLibrary(build_py):
    """build_py, then the Rust library and the header into the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "iscc_vdb"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library(), target / "libiscc_vdb.so")
        shutil.copyfile(REPO / "include" / "iscc_vdb.h", target / "iscc_vdb.h")


def library() -> Path:
    """The shared library: ISCC_VDB_LIB, or a fresh cargo release build."""
    given = os.environ.get("ISCC_VDB_LIB")
    if given:
        path = Path(given)
        if not path.is_file():
            raise SystemExit(f"ISCC_VDB_LIB={given}: no such file")
        return path
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(
            f"{REPO}: not the iscc-vdb repository (no Cargo.toml); "
            "build from a checkout or set ISCC_VDB_LIB"
        )
    if shutil.which("cargo") is None:
        raise SystemExit("cargo not found: install Rust (https://rustup.rs) to build libiscc_vdb")
    subprocess.run(
        [
            "cargo",
            "build",
            "--release",
            "--lib",
            "--locked",
            "--no-default-features",
            "--features",
            "milvus",
            "--manifest-path",
            str(REPO / "Cargo.toml"),
        ],
        check=True,
    )
    return REPO / "target" / "release" / "libiscc_vdb.so"


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
