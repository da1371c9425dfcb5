%% @doc What pyekka's probe modules share: a request to a probe's registered state
%% process, and waiters parked in that process until enough recorded items match.
%%
%% A probe's state process keeps its recorded items newest first and a list of
%% waiters `{Ref, From, Select, N, Timer}'. `Select(Items)' picks, oldest first, the
%% items a waiter wants; the waiter gets `{Ref, Selected}' once there are at least N
%% of them, or `{Ref, {timeout, Selected}}' when its timer says `{expire, Ref}'.
-module(pyekka_probe_lib).

-export([request/3, add_waiter/7, notify/2, expire/3, tagged/2]).

%% @doc Send `{probe, self(), Ref, Req}' to the process registered as Name and wait
%% for `{Ref, Reply}'; `{error, not_started}' or `{error, timeout}' otherwise.
request(Name, Req, Timeout) ->
    case whereis(Name) of
        undefined ->
            {error, not_started};
        Pid ->
            Ref = make_ref(),
            Pid ! {probe, self(), Ref, Req},
            receive {Ref, Reply} -> Reply
            after Timeout -> {error, timeout}
            end
    end.

%% @doc Park a waiter (in the state process): its timer sends `{expire, Ref}' to
%% self() after Timeout ms; the waiter is answered at once if Items already suffice.
add_waiter(Ref, From, Select, N, Timeout, Items, Waiters) ->
    Timer = erlang:send_after(Timeout, self(), {expire, Ref}),
    notify(Items, [{Ref, From, Select, N, Timer} | Waiters]).

%% @doc Answer the waiters that Items satisfy; the others, still waiting.
notify(Items, Waiters) ->
    lists:filter(fun({Ref, From, Select, N, Timer}) ->
                         Selected = Select(Items),
                         case length(Selected) >= N of
                             true ->
                                 _ = erlang:cancel_timer(Timer),
                                 From ! {Ref, Selected},
                                 false;
                             false ->
                                 true
                         end
                 end, Waiters).

%% @doc The timer of waiter Ref fired: answer `{timeout, Selected}'; the others.
expire(Ref, Items, Waiters) ->
    case lists:keytake(Ref, 1, Waiters) of
        {value, {Ref, From, Select, _N, _Timer}, Left} ->
            From ! {Ref, {timeout, Select(Items)}},
            Left;
        false ->
            Waiters
    end.

%% @doc The tuples of Items (newest first) whose first element is Tag, oldest first.
tagged(Tag, Items) ->
    [C || C <- lists:reverse(Items), is_tuple(C), tuple_size(C) >= 1, element(1, C) =:= Tag].
