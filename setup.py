"""Packaging detail pyproject.toml cannot express: ship ``erl_interop/src`` as package data.

The Erlang helper modules stay in one place, ``erl_interop/src`` (rebar3 and the tests
use them there); the built distribution carries them as the data-only package
``pyekka.testing.erl_interop``, which :func:`pyekka.testing.otp.interop_source_dir`
finds in an installed pyekka.
"""

from setuptools import find_packages, setup

INTEROP = "pyekka.testing.erl_interop"

setup(
    packages=[*find_packages(include=["pyekka", "pyekka.*"]), INTEROP],
    package_dir={INTEROP: "erl_interop/src"},
    package_data={INTEROP: ["*.erl", "*.app.src"]},
)
