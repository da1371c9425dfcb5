"""Helpers for testing against real Erlang/OTP: shared by pyekka's tests and its users.

* :mod:`pyekka.testing.otp` finds OTP runtimes, compiles the ``erl_interop`` modules
  and runs a VM that decodes and re-encodes terms on request.
* :mod:`pyekka.testing.otp_node` runs live distributed OTP nodes controlled outside
  the distribution under test (and gives the ``erl`` arguments of epmd-less ones).
* :mod:`pyekka.testing.epmd` runs OTP's epmd or the embedded one, and OTP nodes
  registered with either.
* :mod:`pyekka.testing.processes` runs child processes in sessions of their own
  (waiting for output lines, always killed) and finds free ports.
* :mod:`pyekka.testing.router` records what a process runtime sends to other nodes.
* :mod:`pyekka.testing.strategies` has Hypothesis strategies for Erlang terms.

None of these import pytest; ``tests/conftest.py`` turns them into fixtures.
"""
