"""The nnc Python package: `pip install ./python` from nnc's source tree.

The package is pure Python (ctypes over libnnc.so, and numpy); nothing is
compiled at install time. It bundles the libnnc.so of a build: $NNC_LIBRARY
if set, else ../build/libnnc.so (what scripts/build.sh makes). Without one
it installs alone and looks for libnnc.so when imported (docs/python.md).
"""
import ctypes
import os
import re
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def built_library():
    path = os.environ.get("NNC_LIBRARY") or os.path.join(HERE, "..", "build", "libnnc.so")
    return os.path.realpath(path) if os.path.exists(path) else None


def nnc_version():
    """The bundled library's nnc_version(), else project(nnc VERSION ...) in the
    source tree's CMakeLists.txt (the one place the version is written)."""
    lib = built_library()
    if lib:
        nnc_version = ctypes.CDLL(lib).nnc_version
        nnc_version.restype = ctypes.c_char_p
        return nnc_version().decode()
    cmakelists = os.path.join(HERE, "..", "CMakeLists.txt")
    if not os.path.exists(cmakelists):
        raise SystemExit("nnc's version: no libnnc.so to bundle (set NNC_LIBRARY) and no %s" % cmakelists)
    with open(cmakelists) as f:
        return re.search(r"project\(nnc VERSION ([0-9.]+)", f.read()).group(1)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        lib = built_library()
        target = os.path.join(self.build_lib, "nnc", "libnnc.so")
        if lib:
            self.announce("bundling %s" % lib, level=2)
            shutil.copyfile(lib, target)
            os.chmod(target, 0o755)
        else:
            self.warn("no libnnc.so to bundle (build nnc first, or set NNC_LIBRARY); "
                      "the package will look for an installed one")


setup(
    name="nnc",
    version=nnc_version(),
    description="nnc, a compiler for neural networks, from numpy",
    packages=["nnc"],
    python_requires=">=3.10",  # (fit() relies on where 3.10 checks for signals)
    install_requires=["numpy"],
    cmdclass={"build_py": BuildWithLibrary},
    zip_safe=False,
)
