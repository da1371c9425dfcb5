%% @doc An EPMD replacement for epmd-less distribution, following ekka's
%% documented port rule (pyekka spec, section 12.2): no daemon, and every
%% node's distribution port is computed from its name.
%%
%%   port(Name) = 0                                    if Name starts with "remsh"
%%              = BasePort + (TrailingDigits rem 60000) otherwise
%%
%% BasePort is the kernel parameter `inet_dist_base_port' (default 4370);
%% TrailingDigits the integer at the end of the part of the name before the
%% `@' (0 if there is none). Every peer is reported with distribution
%% version 5, as ekka does. Use with `pyekka_dist':
%%
%%   erl -proto_dist pyekka -start_epmd false -epmd_module pyekka_epmd ...
-module(pyekka_epmd).

-export([start_link/0, register_node/2, register_node/3,
         port_please/2, port_please/3, names/0, names/1,
         port/1, base_port/0]).

-define(DEFAULT_BASE_PORT, 4370).
-define(OFFSET_MODULO, 60000).
-define(DIST_VERSION, 5).

%% No process is needed: the supervisor of the distribution ignores us.
start_link() ->
    ignore.

%% There is nobody to register with; the creation is random in 1..3.
register_node(Name, Port) ->
    register_node(Name, Port, inet_tcp).

register_node(_Name, _Port, _Driver) ->
    {ok, rand:uniform(3)}.

port_please(Name, Ip) ->
    port_please(Name, Ip, infinity).

port_please(Name, _Ip, _Timeout) ->
    case port(Name) of
        0 -> noport;
        Port -> {port, Port, ?DIST_VERSION}
    end.

names() ->
    {error, address}.

names(_Host) ->
    {error, address}.

%% @doc The distribution port of a node name (an atom or a string, with or
%% without the host part).
port(Name) when is_atom(Name) ->
    port(atom_to_list(Name));
port("remsh" ++ _) ->
    0;
port(Name) when is_list(Name) ->
    Short = lists:takewhile(fun(C) -> C =/= $@ end, Name),
    Digits = lists:reverse(lists:takewhile(fun is_digit/1, lists:reverse(Short))),
    Offset = case Digits of
                 [] -> 0;
                 _ -> list_to_integer(Digits) rem ?OFFSET_MODULO
             end,
    base_port() + Offset.

base_port() ->
    case application:get_env(kernel, inet_dist_base_port) of
        {ok, Port} when is_integer(Port) -> Port;
        _ -> ?DEFAULT_BASE_PORT
    end.

is_digit(C) ->
    C >= $0 andalso C =< $9.
