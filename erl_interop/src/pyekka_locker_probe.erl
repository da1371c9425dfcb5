%% @doc The Erlang side of pyekka's locker tests: lock clients that choose their
%% nodes and call them as ekka 0.8.1.9 clients do (pyekka's spec, section 10.2),
%% with the VM's own `erlang:phash2/2' for the ring, and owners that hammer
%% resources for the stress test while a checker process watches them.
%%
%% Members are given as `#member{}' 8-tuples
%% `{member, Node, Addr, Guid, Hash, Status, Mnesia, LTime}'; the probe
%% recomputes every hash itself from `{Node, Guid}' and ignores the `Hash'
%% field, so its node choice is an independent check of pyekka's.
%%
%% The lock servers it calls are `ekka_locker:acquire_lock/3' and
%% `release_lock/2' on each node: pyekka nodes, or VMs that loaded the test
%% server in `ekka_locker_probe/'.
-module(pyekka_locker_probe).

-export([hash/2, lock_nodes/3, lock_obj/1]).
-export([acquire/5, release/4, merge/1]).
-export([owner/0, run/2, stop_owner/1, wait_down/2]).
-export([hammer/1]).

-define(RANGE, 4294967295).
-define(MULTICALL_TIMEOUT, 30000).
-define(CHECKER_TIMEOUT, 10000).

%% -- node choice ------------------------------------------------------------

%% @doc A member's ring position: `phash2({Node, Guid}, 2^32 - 1)'.
hash(Node, Guid) ->
    erlang:phash2({Node, Guid}, ?RANGE).

%% @doc The nodes a lock of `Type' on `Resource' involves among `Members'.
lock_nodes(local, _Resource, _Members) ->
    [node()];
lock_nodes(leader, _Resource, Members) ->
    %% The smallest guid of every member, whatever its status.
    Guids = [{Guid, Node} || {member, Node, _, Guid, _, _, _, _} <- Members],
    [{_, Leader} | _] = lists:sort(Guids),
    [Leader];
lock_nodes(quorum, Resource, Members) ->
    ring_nodes(Resource, ring(Members));
lock_nodes(all, _Resource, Members) ->
    lists:usort([Node || {member, Node, _, _, _, up, _, _} <- Members]).

%% Up members as {Hash, Node}, in node order first, then stably by hash.
ring(Members) ->
    ByNode = lists:usort([{Node, Guid} || {member, Node, _, Guid, _, up, _, _} <- Members]),
    lists:keysort(1, [{hash(Node, Guid), Node} || {Node, Guid} <- ByNode]).

ring_nodes(Resource, Ring) ->
    Size = length(Ring),
    Count = min(min(Size div 2 + 1, 3), Size),
    case Count >= Size of
        true ->
            [Node || {_, Node} <- Ring];
        false ->
            Point = erlang:phash2(Resource, ?RANGE),
            {After, Before} = lists:partition(fun({H, _}) -> Point =< H end, Ring),
            [Node || {_, Node} <- lists:sublist(After ++ Before, Count)]
    end.

%% @doc The request a client builds: it is owned by the calling process.
lock_obj(Resource) ->
    {lock, Resource, self(), 0, erlang:system_time(millisecond)}.

%% -- acquire and release ------------------------------------------------------

%% @doc Take a lock for the calling process: `{Bool, [Node | {Node, Result}]}'.
acquire(Name, Resource, local, Piggyback, _Members) ->
    ekka_locker:acquire_lock(Name, lock_obj(Resource), Piggyback);
acquire(Name, Resource, leader, Piggyback, Members) ->
    [Leader] = lock_nodes(leader, Resource, Members),
    one(Leader, rpc:call(Leader, ekka_locker, acquire_lock, [Name, lock_obj(Resource), Piggyback]));
acquire(Name, Resource, Type, Piggyback, Members) ->
    Nodes = lock_nodes(Type, Resource, Members),
    Lock = lock_obj(Resource),
    Args = [Name, Lock, Piggyback],
    {Replies, _Unreachable} =
        rpc:multicall(Nodes, ekka_locker, acquire_lock, Args, ?MULTICALL_TIMEOUT),
    case merge(Replies) of
        {true, _} = Granted ->
            Granted;
        {false, _} = Refused ->
            _ = rpc:multicall(Nodes, ekka_locker, release_lock, [Name, Lock], ?MULTICALL_TIMEOUT),
            Refused
    end.

%% @doc Release a lock of the calling process.
release(Name, Resource, local, _Members) ->
    ekka_locker:release_lock(Name, lock_obj(Resource));
release(Name, Resource, leader, Members) ->
    [Leader] = lock_nodes(leader, Resource, Members),
    one(Leader, rpc:call(Leader, ekka_locker, release_lock, [Name, lock_obj(Resource)]));
release(Name, Resource, Type, Members) ->
    Nodes = lock_nodes(Type, Resource, Members),
    Args = [Name, lock_obj(Resource)],
    {Replies, _Unreachable} =
        rpc:multicall(Nodes, ekka_locker, release_lock, Args, ?MULTICALL_TIMEOUT),
    merge(Replies).

one(Node, {badrpc, _} = Error) -> {false, [{Node, Error}]};
one(_Node, Reply) -> Reply.

%% @doc Merge multicall replies: `{true, All}' when every node granted, else
%% `{false, Refusing}'; lists are joined newest reply first. Like ekka 0.8.1.9,
%% a reply of any other shape is an error (`{malformed_lock_reply, Reply}').
merge(Replies) ->
    merge(Replies, [], []).

merge([], Granted, []) -> {true, lists:append(Granted)};
merge([], _Granted, Refused) -> {false, lists:append(Refused)};
merge([{true, L} | Rest], Granted, Refused) when is_list(L) -> merge(Rest, [L | Granted], Refused);
merge([{false, L} | Rest], Granted, Refused) when is_list(L) -> merge(Rest, Granted, [L | Refused]);
merge([Other | _], _, _) -> error({malformed_lock_reply, Other}).

%% -- long-lived owners ----------------------------------------------------------

%% @doc A process that runs funs for the test (so one pid owns several calls).
owner() ->
    spawn(fun owner_loop/0).

owner_loop() ->
    receive
        {run, From, Tag, Fun} ->
            From ! {Tag, try {ok, Fun()} catch C:R -> {C, R} end},
            owner_loop();
        stop ->
            ok
    end.

%% @doc Run `Fun' in the owner process: `{ok, Value}' or `{Class, Reason}'.
run(Owner, Fun) ->
    MRef = monitor(process, Owner),
    Owner ! {run, self(), MRef, Fun},
    receive
        {MRef, Result} ->
            erlang:demonitor(MRef, [flush]),
            Result;
        {'DOWN', MRef, process, Owner, Why} ->
            {'DOWN', Why}
    end.

stop_owner(Owner) ->
    Owner ! stop,
    ok.

%% @doc Wait until `Pid' ends: its exit reason, or `timeout'.
wait_down(Pid, Timeout) ->
    MRef = monitor(process, Pid),
    receive
        {'DOWN', MRef, process, Pid, Why} -> Why
    after Timeout ->
        erlang:demonitor(MRef, [flush]),
        timeout
    end.

%% -- the stress test's owners ----------------------------------------------------

%% @doc Run `owners' processes for `duration' ms (longer, up to `max_duration'
%% ms, while none of them has been granted a lock yet); each repeatedly takes a
%% `type' lock on one of `resources' (chosen at random), and while it holds it
%% tells the checker `{enter, Resource, self()}' then `{exit, Resource, self()}'
%% (gen_server calls to `checker', a `{Name, Node}'), then releases it; after a
%% refusal it waits up to `backoff' ms (random) before trying again.
%% Returns `#{granted => G, refused => R, errors => [Error]}'.
hammer(#{name := Name, type := Type, resources := Resources, members := Members,
         owners := N, duration := Ms, max_duration := MaxMs, checker := Checker,
         backoff := Backoff}) ->
    Now = erlang:monotonic_time(millisecond),
    Granted = counters:new(1, []),
    Job = {Name, Type, list_to_tuple(Resources), Members, Checker, Backoff,
           {Now + Ms, Now + MaxMs, Granted}},
    Owners = [spawn_monitor(fun() -> exit({stats, hammer_loop(Job, 0, 0)}) end)
              || _ <- lists:seq(1, N)],
    collect(Owners, #{granted => 0, refused => 0, errors => []}).

collect([], Acc) ->
    Acc;
collect([{Pid, MRef} | Rest], Acc = #{granted := G, refused := R, errors := E}) ->
    receive
        {'DOWN', MRef, process, Pid, {stats, {G1, R1}}} ->
            collect(Rest, Acc#{granted := G + G1, refused := R + R1});
        {'DOWN', MRef, process, Pid, Why} ->
            collect(Rest, Acc#{errors := [Why | E]})
    end.

hammer_loop(Job = {Name, Type, Resources, Members, Checker, Backoff, Until}, G, R) ->
    case is_over(Until) of
        true ->
            {G, R};
        false ->
            Resource = element(rand:uniform(tuple_size(Resources)), Resources),
            case acquire(Name, Resource, Type, undefined, Members) of
                {true, _} ->
                    ok = gen_server:call(Checker, {enter, Resource, self()}, ?CHECKER_TIMEOUT),
                    ok = gen_server:call(Checker, {exit, Resource, self()}, ?CHECKER_TIMEOUT),
                    {true, _} = release(Name, Resource, Type, Members),
                    counters:add(element(3, Until), 1, 1),
                    hammer_loop(Job, G + 1, R);
                {false, _} ->
                    timer:sleep(rand:uniform(Backoff + 1) - 1),
                    hammer_loop(Job, G, R + 1)
            end
    end.

is_over({Soft, Hard, Granted}) ->
    Now = erlang:monotonic_time(millisecond),
    Now >= Hard orelse (Now >= Soft andalso counters:get(Granted, 1) > 0).
