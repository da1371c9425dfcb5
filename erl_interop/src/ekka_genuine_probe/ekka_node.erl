%% @doc Stand-in for genuine ekka's `ekka_node:is_running/1', for the OTP nodes that
%% play genuine ekka nodes in pyekka's autoheal tests (with `pyekka_genuine_probe').
%% In a directory of its own: only the VMs of those tests load it.
-module(ekka_node).

-export([is_running/1]).

%% @doc `true' for ekka, which these nodes pretend to run.
is_running(ekka) -> true;
is_running(_) -> false.
