"""The optional compiled accelerator; everything else is in pyproject.toml.

`hybi._speedups` is built where a C compiler and Python's headers exist. Where the build
fails, setuptools warns and installs hybi without it: the pure-Python twins then run.
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hybi._speedups",
            sources=["src/hybi/_speedups.c"],
            optional=True,
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
        )
    ]
)
