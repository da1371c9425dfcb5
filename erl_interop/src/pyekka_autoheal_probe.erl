%% @doc Plays the genuine ekka 0.8.1.9 side of node monitoring and autoheal against
%% pyekka nodes, without ekka itself (written for pyekka from its ekka wire
%% reference, spec sections 6 and 8; it is not ekka's code).
%%
%% `start()' registers a process as `ekka_node_monitor' that keeps every cast it
%% receives (`casts/0', `wait_casts/3'), so that pyekka's answers to this node
%% (`{confirm, Target, up | down}') can be checked here, in the VM.
%%
%% As a genuine *leader* (`leader_heal/1'): `rpc:multicall' of
%% `ekka_mnesia:cluster_view/0' over the db nodes with ekka's 30 s timeout; the
%% split view (usort, then more running nodes first, the leader's own view first
%% among equal lengths); the coordinator (the oldest member, by guid, among the
%% first view's running nodes, from the members a node of that view lists); the cast
%% `{heal_partition, SplitView}' to `ekka_node_monitor' on it.
%%
%% As a genuine node whose `leader()' is a pyekka node: `confirm_partition/1' does,
%% from the registered recorder process itself, what a genuine node monitor's
%% `confirm_partition' does (rpc `ekka_node:is_running(Leader, ekka)', and only on
%% `true' the cast `{report_partition, node()}'); `monitor_is_running/1' makes that
%% rpc alone.
%%
%% As a genuine *reporter* or *peer*: `report_partition/1', `heal_partition/2',
%% `heal_cluster/3' (ekka 0.8.1.14's order), `suspect/2', `heartbeat/1',
%% `cast/2' (any term, for malformed casts), `partitions/1' and `call/2'.
-module(pyekka_autoheal_probe).

-export([start/0, stop/0, casts/0, wait_casts/3]).
-export([cluster_views/1, check_view/1, check_confirm/1, split_view/2, coordinator/2]).
-export([leader_heal/1, confirm_partition/1, monitor_is_running/1]).
-export([report_partition/1, heal_partition/2, heal_cluster/3, suspect/2, heartbeat/1]).
-export([cast/2, call/2, partitions/1]).

-define(NAME, ekka_node_monitor).
-define(VIEW_TIMEOUT, 30000).

%% -- the recording ekka_node_monitor ------------------------------------------------

%% @doc Register the recorder as ekka_node_monitor; ok.
start() ->
    Parent = self(),
    Ref = make_ref(),
    Pid = spawn(fun() ->
                        case catch register(?NAME, self()) of
                            true -> Parent ! {Ref, ok}, loop([], []);
                            _ -> Parent ! {Ref, {error, already_registered}}
                        end
                end),
    receive {Ref, Result} -> Result
    after 5000 -> exit(Pid, kill), {error, timeout}
    end.

%% @doc Stop the recorder.
stop() ->
    case whereis(?NAME) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.

%% @doc Every cast received so far, oldest first.
casts() -> request(casts, 5000).

%% @doc At least N casts tagged Tag, oldest first; {timeout, SoFar} after TimeoutMs.
wait_casts(Tag, N, TimeoutMs) -> request({wait, Tag, N, TimeoutMs}, TimeoutMs + 5000).

loop(Casts, Waiters) ->
    receive
        {'$gen_cast', Msg} ->
            All = [Msg | Casts],
            loop(All, pyekka_probe_lib:notify(All, Waiters));
        {'$gen_call', From, _Req} ->
            gen_server:reply(From, ignore),
            loop(Casts, Waiters);
        {probe, From, Ref, {is_running, Node}} ->
            From ! {Ref, rpc:call(Node, ekka_node, is_running, [ekka])},
            loop(Casts, Waiters);
        {probe, From, Ref, {confirm_partition, Leader}} ->
            Result = case rpc:call(Leader, ekka_node, is_running, [ekka]) of
                         true -> gen_server:cast({?NAME, Leader}, {report_partition, node()}),
                                 reported;
                         Other -> {not_reported, Other}
                     end,
            From ! {Ref, Result},
            loop(Casts, Waiters);
        {probe, From, Ref, casts} ->
            From ! {Ref, lists:reverse(Casts)},
            loop(Casts, Waiters);
        {probe, From, Ref, {wait, Tag, N, Timeout}} ->
            Select = fun(Items) -> pyekka_probe_lib:tagged(Tag, Items) end,
            loop(Casts, pyekka_probe_lib:add_waiter(Ref, From, Select, N, Timeout, Casts, Waiters));
        {expire, Ref} ->
            loop(Casts, pyekka_probe_lib:expire(Ref, Casts, Waiters));
        _ ->
            loop(Casts, Waiters)
    end.


request(Req, Timeout) -> pyekka_probe_lib:request(?NAME, Req, Timeout).

%% @doc rpc:call(Node, ekka_node, is_running, [ekka]) made by the registered
%% ekka_node_monitor recorder.
monitor_is_running(Node) -> request({is_running, Node}, 30000).

%% @doc A genuine node monitor's confirm_partition towards Leader, made by the
%% registered recorder: reported, or {not_reported, IsRunningAnswer}.
confirm_partition(Leader) -> request({confirm_partition, Leader}, 30000).

%% -- checks made by the VM itself -------------------------------------------------

%% @doc Whether V is a well-formed cluster_view() answer: {Running, Stopped}, two
%% sorted lists of atoms without a node in both.
check_view({Running, Stopped}) when is_list(Running), is_list(Stopped) ->
    lists:all(fun is_atom/1, Running ++ Stopped)
        andalso lists:sort(Running) =:= Running
        andalso lists:sort(Stopped) =:= Stopped
        andalso [N || N <- Running, lists:member(N, Stopped)] =:= [];
check_view(_) ->
    false.

%% @doc Whether C is a well-formed {confirm, Target, up | down} cast about Target.
check_confirm({confirm, Target, Status}) ->
    is_atom(Target) andalso (Status =:= up orelse Status =:= down);
check_confirm(_) ->
    false.

%% -- the genuine leader -------------------------------------------------------------

%% @doc rpc:multicall of ekka_mnesia:cluster_view() over Nodes: {Views, BadNodes}.
cluster_views(Nodes) ->
    rpc:multicall(Nodes, ekka_mnesia, cluster_view, [], ?VIEW_TIMEOUT).

%% @doc The split view a leader named Leader builds from Views.
split_view(Views, Leader) ->
    Before = fun({Running1, _}, {Running2, _}) ->
                     L1 = length(Running1),
                     L2 = length(Running2),
                     L1 > L2 orelse (L1 =:= L2 andalso lists:member(Leader, Running1))
             end,
    lists:sort(Before, lists:usort(Views)).

%% @doc The oldest (smallest guid, term order) of the 0.8 member records Members
%% whose node is in Nodes, in Nodes' order; ties go to the last one, as a strict
%% ordering fun in lists:sort/2 leaves them.
coordinator(Nodes, Members) ->
    Known = [M || N <- Nodes, M <- Members, element(2, M) =:= N],
    Older = fun(A, B) -> element(4, A) < element(4, B) end,
    case lists:sort(Older, Known) of
        [First | _] -> element(2, First);
        [] -> undefined
    end.

%% @doc What a genuine leader does once its delay has passed: views, split view,
%% coordinator, cast. {ok, SplitView, Coordinator, Views}, or {bad_nodes, BadNodes}.
leader_heal(DbNodes) ->
    case cluster_views(DbNodes) of
        {Views, []} ->
            SplitView = split_view(Views, node()),
            [{Running, _} | _] = SplitView,
            Members = rpc:call(hd(Running), ekka_membership, members, [], 10000),
            Coordinator = coordinator(Running, Members),
            heal_partition(Coordinator, SplitView),
            {ok, SplitView, Coordinator, Views};
        {_Views, BadNodes} ->
            {bad_nodes, BadNodes}
    end.

%% -- casts and calls to a node monitor ------------------------------------------------

%% @doc Report a partition seen by this node to Leader's node monitor.
report_partition(Leader) -> cast(Leader, {report_partition, node()}).

%% @doc Order Coordinator to heal SplitView (ekka 0.8.1.9).
heal_partition(Coordinator, SplitView) -> cast(Coordinator, {heal_partition, SplitView}).

%% @doc Order Coordinator to reboot Minority (ekka 0.8.1.14+).
heal_cluster(Coordinator, Minority, SplitView) ->
    cast(Coordinator, {heal_cluster, Minority, SplitView}).

%% @doc Ask Node to ping Target and confirm to this node's ekka_node_monitor.
suspect(Node, Target) -> cast(Node, {suspect, node(), Target}).

%% @doc A heartbeat from this node.
heartbeat(Node) -> cast(Node, {heartbeat, node()}).

%% @doc gen_server:cast Msg to ekka_node_monitor on Node.
cast(Node, Msg) -> gen_server:cast({?NAME, Node}, Msg).

%% @doc gen_server:call Req to ekka_node_monitor on Node (5 s).
call(Node, Req) -> gen_server:call({?NAME, Node}, Req, 5000).

%% @doc ekka_node_monitor:partitions() of Node.
partitions(Node) -> call(Node, partitions).
