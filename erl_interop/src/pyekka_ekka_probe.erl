%% @doc A stand-in for ekka 0.8's `ekka_membership', to check what a pyekka node
%% sends to, and answers, a genuine ekka node -- without ekka itself.
%%
%% `start()' registers a process as `ekka_membership' that keeps every cast and call
%% it receives. With `start(#{auto_pong => true})' it also answers each
%% `{ping, Member}' with `{pong, ProbeMember}', as ekka_membership does.
%% The probe's own member record is built as ekka 0.8.1.9 builds it: the 8-tuple
%% `{member, Node, undefined, Guid, Hash, up, running, LTime}' with a 16-byte guid
%% `<<MicroSecs:64, Id:48, Seq:16>>' and `Hash = erlang:phash2({Node, Guid},
%% 4294967295)'.
%%
%% Waiting never polls: `wait_casts/3' parks the caller until enough casts with that
%% tag arrived, or its timeout passes.
-module(pyekka_ekka_probe).

-export([start/0, start/1, stop/0]).
-export([casts/0, calls/0, wait_casts/3, clear/0]).
-export([member/0, ping/1, pong/1, cast/2, check_member/1]).

-define(NAME, ekka_membership).
-define(HASH_RANGE, 4294967295).

%% -- API ------------------------------------------------------------------------

%% @doc Start the probe with the default options (no automatic pong).
start() -> start(#{}).

%% @doc Start the probe, registered as ekka_membership; ok.
start(Opts) ->
    Parent = self(),
    Ref = make_ref(),
    Pid = spawn(fun() -> init(Parent, Ref, Opts) end),
    receive {Ref, Result} -> Result
    after 5000 -> exit(Pid, kill), {error, timeout}
    end.

%% @doc Stop the probe.
stop() ->
    case whereis(?NAME) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.

%% @doc Every cast received so far, oldest first (the messages inside `$gen_cast').
casts() -> request(casts).

%% @doc Every call request received so far, oldest first.
calls() -> request(calls).

%% @doc Forget the casts and calls received so far.
clear() -> request(clear).

%% @doc Wait until at least N casts tagged Tag (a tuple's first element) arrived:
%% all casts with that tag, oldest first, or {timeout, ThoseSoFar} after TimeoutMs.
wait_casts(Tag, N, TimeoutMs) ->
    request({wait, Tag, N, TimeoutMs}, TimeoutMs + 5000).

%% @doc The probe's own member record.
member() -> request(member).

%% @doc Cast {ping, member()} to ekka_membership on Node.
ping(Node) -> cast(Node, {ping, member()}).

%% @doc Cast {pong, member()} to ekka_membership on Node.
pong(Node) -> cast(Node, {pong, member()}).

%% @doc gen_server:cast Msg to ekka_membership on Node.
cast(Node, Msg) -> gen_server:cast({?NAME, Node}, Msg).

%% @doc What the VM itself says of a term that should be a 0.8 member record.
check_member(M) when is_tuple(M), tuple_size(M) =:= 8, element(1, M) =:= member ->
    {member, Node, Addr, Guid, Hash, Status, Mnesia, LTime} = M,
    #{record => true,
      node_is_atom => is_atom(Node),
      addr => Addr,
      guid_size => guid_size(Guid),
      hash_by_vm => hash_of(Node, Guid),
      hash_matches => Hash =:= hash_of(Node, Guid),
      status => Status,
      mnesia => Mnesia,
      ltime_ok => is_timestamp(LTime)};
check_member(_) ->
    #{record => false}.

%% -- the process ---------------------------------------------------------------

-record(st, {casts = [], calls = [], waiters = [], member, auto_pong = false}).

init(Parent, Ref, Opts) ->
    case catch register(?NAME, self()) of
        true ->
            Guid = new_guid(),
            Member = {member, node(), undefined, Guid, hash_of(node(), Guid), up, running,
                      erlang:timestamp()},
            Parent ! {Ref, ok},
            loop(#st{member = Member, auto_pong = maps:get(auto_pong, Opts, false)});
        _ ->
            Parent ! {Ref, {error, already_registered}}
    end.

loop(St) ->
    receive
        {'$gen_cast', Msg} ->
            maybe_pong(Msg, St),
            Casts = [Msg | St#st.casts],
            loop(St#st{casts = Casts, waiters = pyekka_probe_lib:notify(Casts, St#st.waiters)});
        {'$gen_call', From, Req} ->
            gen_server:reply(From, ignore),
            loop(St#st{calls = [Req | St#st.calls]});
        {probe, From, Ref, Req} ->
            loop(handle(Req, From, Ref, St));
        {expire, Ref} ->
            loop(St#st{waiters = pyekka_probe_lib:expire(Ref, St#st.casts, St#st.waiters)});
        _Other ->
            loop(St)
    end.

handle(casts, From, Ref, St) ->
    From ! {Ref, lists:reverse(St#st.casts)}, St;
handle(calls, From, Ref, St) ->
    From ! {Ref, lists:reverse(St#st.calls)}, St;
handle(clear, From, Ref, St) ->
    From ! {Ref, ok}, St#st{casts = [], calls = []};
handle(member, From, Ref, St) ->
    From ! {Ref, St#st.member}, St;
handle({wait, Tag, N, Timeout}, From, Ref, St = #st{casts = Casts, waiters = Waiters}) ->
    Select = fun(Items) -> pyekka_probe_lib:tagged(Tag, Items) end,
    St#st{waiters = pyekka_probe_lib:add_waiter(Ref, From, Select, N, Timeout, Casts, Waiters)}.

maybe_pong({ping, {member, Node, _, _, _, _, _, _}}, #st{auto_pong = true, member = M}) ->
    gen_server:cast({?NAME, Node}, {pong, M});
maybe_pong(_, _) ->
    ok.


%% -- helpers ---------------------------------------------------------------------

request(Req) -> request(Req, 5000).

request(Req, Timeout) -> pyekka_probe_lib:request(?NAME, Req, Timeout).

new_guid() ->
    Micros = erlang:system_time(microsecond),
    Id = erlang:phash2({node(), self(), make_ref()}, 1 bsl 32) bsl 16,
    <<Micros:64, Id:48, 0:16>>.

hash_of(Node, Guid) -> erlang:phash2({Node, Guid}, ?HASH_RANGE).

guid_size(Guid) when is_binary(Guid) -> byte_size(Guid);
guid_size(_) -> not_a_binary.

is_timestamp({A, B, C}) -> is_integer(A) andalso is_integer(B) andalso is_integer(C);
is_timestamp(_) -> false.
