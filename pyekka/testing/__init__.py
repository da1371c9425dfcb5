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
* :mod:`pyekka.testing.network` connects, cuts and restores links between pyekka and
  OTP nodes; :mod:`pyekka.testing.wait` waits for conditions with readable failures.
* :mod:`pyekka.testing.netns` builds labs of network namespaces (hosts with addresses
  of their own on a private bridge) and runs commands and sockets inside them.
* :mod:`pyekka.testing.plugin` is the pytest plugin (entry point ``pyekka``) that
  turns these into fixtures for any test suite (see ``docs/testing.md``); it and its
  ``plugin_*`` modules (the fixtures by theme) are the only modules here that import
  pytest.
"""
