"""Helpers for testing against real Erlang/OTP: shared by pyekka's tests and its users.

* :mod:`pyekka.testing.otp` finds OTP runtimes, compiles the ``erl_interop`` modules
  and runs a VM that decodes and re-encodes terms on request.
* :mod:`pyekka.testing.strategies` has Hypothesis strategies for Erlang terms.
"""
