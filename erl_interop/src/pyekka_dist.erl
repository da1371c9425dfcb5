%% @doc A distribution carrier for epmd-less nodes: plain TCP distribution
%% (`inet_tcp_dist') listening on the port `pyekka_epmd:port/1' gives the
%% node's own name, the way ekka's `ekka_dist' does. Selected with
%% `-proto_dist pyekka'.
-module(pyekka_dist).

-export([listen/1, listen/2, select/1, accept/1, accept_connection/5,
         setup/5, close/1, address/0, is_node_name/1,
         setopts/2, getopts/2]).

-define(CARRIER, inet_tcp_dist).

listen(Name) ->
    set_port(Name),
    ?CARRIER:listen(Name).

listen(Name, Host) ->
    set_port(Name),
    ?CARRIER:listen(Name, Host).

select(Node) ->
    ?CARRIER:select(Node).

accept(Listen) ->
    ?CARRIER:accept(Listen).

accept_connection(AcceptPid, Socket, MyNode, Allowed, SetupTime) ->
    ?CARRIER:accept_connection(AcceptPid, Socket, MyNode, Allowed, SetupTime).

setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    ?CARRIER:setup(Node, Type, MyNode, LongOrShortNames, SetupTime).

close(Socket) ->
    ?CARRIER:close(Socket).

address() ->
    ?CARRIER:address().

is_node_name(Node) ->
    ?CARRIER:is_node_name(Node).

setopts(Listen, Options) ->
    ?CARRIER:setopts(Listen, Options).

getopts(Socket, Options) ->
    ?CARRIER:getopts(Socket, Options).

%% A remsh-style name (port 0) listens on any free port.
set_port(Name) ->
    case pyekka_epmd:port(Name) of
        0 -> ok;
        Port ->
            ok = application:set_env(kernel, inet_dist_listen_min, Port),
            ok = application:set_env(kernel, inet_dist_listen_max, Port)
    end.
