%% @doc Makes a plain OTP node answer, for autoheal, as a genuine ekka 0.8.1.9 node
%% would -- without ekka and without mnesia (written for pyekka from its ekka wire
%% reference, spec sections 7, 8 and 14; it is not ekka's code).
%%
%% `start(View, Nodes)' starts a state process registered as `pyekka_genuine_probe'
%% that answers for the stand-in modules of `ekka_genuine_probe/' (a directory of its
%% own, on the code path of these tests' VMs only):
%%
%%   `ekka_node:is_running(App)'   -> `true' for `ekka'
%%   `ekka_mnesia:cluster_view()'  -> View (`{Running, Stopped}'), set_view/1 changes it
%%   `ekka_mnesia:cluster_nodes(all)' -> Nodes
%%   `ekka_cluster:heal(Action)'   -> `ok', recorded as `{Action, CallerNode}'
%%
%% (`CallerNode' is the node of the rpc's group leader, i.e. the calling node).
%% `heals/0' and `wait_heals/2' read the recorded heal rpcs, oldest first.
-module(pyekka_genuine_probe).

-export([start/2, stop/0, set_view/1, heals/0, wait_heals/2]).
-export([view/0, db_nodes/0, heal/1]).

-define(NAME, ?MODULE).

%% -- API --------------------------------------------------------------------------

%% @doc Start the state process; ok.
start(View, Nodes) ->
    Parent = self(),
    Ref = make_ref(),
    Pid = spawn(fun() ->
                        case catch register(?NAME, self()) of
                            true -> Parent ! {Ref, ok}, loop(View, Nodes, [], []);
                            _ -> Parent ! {Ref, {error, already_registered}}
                        end
                end),
    receive {Ref, Result} -> Result
    after 5000 -> exit(Pid, kill), {error, timeout}
    end.

%% @doc Stop the state process (the stand-in modules fail without it).
stop() ->
    case whereis(?NAME) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.

%% @doc What ekka_mnesia:cluster_view() answers from now on.
set_view(View) -> request({set_view, View}, 5000).

%% @doc Every heal rpc received so far: [{Action, CallerNode}], oldest first.
heals() -> request(heals, 5000).

%% @doc At least N heal rpcs, oldest first; {timeout, SoFar} after TimeoutMs.
wait_heals(N, TimeoutMs) -> request({wait, N, TimeoutMs}, TimeoutMs + 5000).

%% -- called by the stand-in modules ------------------------------------------------

%% @private
view() -> request(view, 5000).

%% @private
db_nodes() -> request(nodes, 5000).

%% @private
heal(Action) -> request({heal, Action, node(group_leader())}, 5000).

%% -- the state process --------------------------------------------------------------

loop(View, Nodes, Heals, Waiters) ->
    receive
        {probe, From, Ref, view} ->
            From ! {Ref, View},
            loop(View, Nodes, Heals, Waiters);
        {probe, From, Ref, nodes} ->
            From ! {Ref, Nodes},
            loop(View, Nodes, Heals, Waiters);
        {probe, From, Ref, {set_view, New}} ->
            From ! {Ref, ok},
            loop(New, Nodes, Heals, Waiters);
        {probe, From, Ref, heals} ->
            From ! {Ref, lists:reverse(Heals)},
            loop(View, Nodes, Heals, Waiters);
        {probe, From, Ref, {heal, Action, Caller}} ->
            From ! {Ref, ok},
            All = [{Action, Caller} | Heals],
            loop(View, Nodes, All, pyekka_probe_lib:notify(All, Waiters));
        {probe, From, Ref, {wait, N, Timeout}} ->
            Select = fun lists:reverse/1,
            loop(View, Nodes, Heals,
                 pyekka_probe_lib:add_waiter(Ref, From, Select, N, Timeout, Heals, Waiters));
        {expire, Ref} ->
            loop(View, Nodes, Heals, pyekka_probe_lib:expire(Ref, Heals, Waiters));
        _ ->
            loop(View, Nodes, Heals, Waiters)
    end.


%% -- helpers ---------------------------------------------------------------------------

request(Req, Timeout) -> pyekka_probe_lib:request(?NAME, Req, Timeout).
