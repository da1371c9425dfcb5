%% @doc Stand-in for genuine ekka's `ekka_mnesia' cluster functions, answering what
%% `pyekka_genuine_probe' holds (see there). In a directory of its own: only the VMs
%% of pyekka's autoheal tests load it.
-module(ekka_mnesia).

-export([cluster_view/0, cluster_nodes/1]).

%% @doc The view set with pyekka_genuine_probe:set_view/1: {Running, Stopped}.
cluster_view() -> pyekka_genuine_probe:view().

%% @doc The db nodes given to pyekka_genuine_probe:start/2.
cluster_nodes(all) -> pyekka_genuine_probe:db_nodes().
