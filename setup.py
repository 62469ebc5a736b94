"""Builds the Cython extensions in ext/ into the logtrain package."""
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("logtrain._syslog", ["ext/syslog.pyx"]),
    Extension("logtrain._serialize", ["ext/serialize.pyx"]),
    Extension("logtrain._tail", ["ext/tail.pyx"]),
    Extension("logtrain._sd", ["ext/sd.pyx"]),
    Extension("logtrain._framing", ["ext/framing.pyx"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=["ext"],
        compiler_directives={"boundscheck": False, "wraparound": False},
    ),
)
