"""pyekka: a Python node that speaks the Erlang distribution protocol and ekka's clustering."""

__version__ = "0.1.0"
