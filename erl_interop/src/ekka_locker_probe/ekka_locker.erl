%% @doc A small lock server for pyekka's interop tests, written for pyekka from
%% its ekka wire reference (spec sections 3.3 and 10.1); it is not ekka's code.
%%
%% It is named `ekka_locker' only because that module name is the RPC surface
%% every lock client calls: `acquire_lock/2,3' and `release_lock/2', for any
%% locker name. It serves nothing else: no lease, no owner monitoring, no client
%% API (pyekka_locker_probe is the client). It lives apart from the other
%% erl_interop modules so that only the VMs of the locker tests load it.
%%
%% A locker `Name' is a public named ETS table of lock records
%% `{lock, Resource, Owner, 1, Created}' keyed by resource, owned by a process
%% registered as `Name'; without that table every request is granted and
%% nothing is stored, as a node whose locker does not run answers.
-module(ekka_locker).

-export([start/1, stop/1, entries/1]).
-export([acquire_lock/2, acquire_lock/3, release_lock/2]).

%% @doc Start the locker `Name': `{ok, Pid}' (the table owner).
start(Name) when is_atom(Name) ->
    Caller = self(),
    Tag = make_ref(),
    {Pid, MRef} = spawn_monitor(fun() -> table_owner(Name, Caller, Tag) end),
    receive
        {Tag, ready} ->
            erlang:demonitor(MRef, [flush]),
            {ok, Pid};
        {'DOWN', MRef, process, Pid, Why} ->
            {error, Why}
    end.

table_owner(Name, Caller, Tag) ->
    true = register(Name, self()),
    Name = ets:new(Name, [named_table, public, set, {keypos, 2}]),
    Caller ! {Tag, ready},
    receive stop -> ok end.

%% @doc Stop the locker `Name' (its table goes with its owner).
stop(Name) ->
    case whereis(Name) of
        undefined ->
            ok;
        Pid ->
            MRef = monitor(process, Pid),
            Pid ! stop,
            receive {'DOWN', MRef, process, Pid, _} -> ok end
    end.

%% @doc Every stored lock record of the locker `Name' (`[]' if it does not run).
entries(Name) ->
    try ets:tab2list(Name) catch error:badarg -> [] end.

%% @doc Take `Resource' for `Owner': `true' if it was free or is already
%% `Owner''s, `false' if another owner holds it.
acquire_lock(Name, {lock, Resource, Owner, _Counter, Created}) ->
    try
        take(Name, {lock, Resource, Owner, 1, Created})
    catch
        error:badarg -> true
    end.

take(Name, Entry = {lock, Resource, Owner, _, _}) ->
    case ets:insert_new(Name, Entry) of
        true ->
            true;
        false ->
            case ets:lookup(Name, Resource) of
                [{lock, _, Holder, _, _}] -> Holder =:= Owner;
                [] -> take(Name, Entry)
            end
    end.

%% @doc `{Granted, [Node]}', or `{Granted, [{Node, apply(M, F, A)}]}' when a
%% piggyback `{M, F, A}' is given (applied whatever the decision).
acquire_lock(Name, Lock, Piggyback) ->
    Granted = acquire_lock(Name, Lock),
    {Granted, [piggyback(Piggyback)]}.

piggyback(undefined) -> node();
piggyback({M, F, A}) -> {node(), apply(M, F, A)}.

%% @doc `{Released, [Node]}': `true' if `Owner' held it (now deleted) or nobody
%% did, `false' if another owner holds it.
release_lock(Name, {lock, Resource, Owner, _Counter, _Created}) ->
    Released =
        try ets:lookup(Name, Resource) of
            [] -> true;
            [Held = {lock, _, Owner, _, _}] -> ets:delete_object(Name, Held);
            [_OtherOwner] -> false
        catch
            error:badarg -> true
        end,
    {Released, [node()]}.
