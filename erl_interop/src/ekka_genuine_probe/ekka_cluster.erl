%% @doc Stand-in for genuine ekka's `ekka_cluster:heal/1': records the call (action
%% and calling node) in `pyekka_genuine_probe' and answers ok. In a directory of its
%% own: only the VMs of pyekka's autoheal tests load it.
-module(ekka_cluster).

-export([heal/1]).

%% @doc Record heal(shutdown | reboot); ok.
heal(Action) when Action =:= shutdown; Action =:= reboot ->
    pyekka_genuine_probe:heal(Action).
