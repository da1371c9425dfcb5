%% @doc The Erlang side of bench/dist_bench.py: message floods and rpc loops
%% timed inside a distributed OTP node.
%%
%% The benchmark controls its OTP nodes through `pyekka_ctl' (never through the
%% distribution it measures) and calls these functions there:
%%
%%   start_sink()              registers `pyekka_bench_sink': a process that
%%                             counts the messages it gets until a
%%                             `{pyekka_bench_done, From}' marker, then answers
%%                             `From ! {pyekka_bench_ack, Count}' and starts
%%                             counting again. A Python node runs the same sink.
%%   payload(Name)             the benchmark terms: `ping', `member', `bin_1k',
%%                             `bin_64k'.
%%   flood(Node, Payload, N)   sends Payload N times to `{pyekka_bench_sink, Node}'
%%                             then the done marker, waits for the ack and returns
%%                             the nanoseconds from the first send to the ack.
%%   rpc_latency(Node, Payload, N)
%%                             N sequential `rpc:call(Node, pyekka_bench_dist,
%%                             echo, [Payload])'; the nanoseconds of each round
%%                             trip, measured with `erlang:monotonic_time/0'.
%%   echo(Term)                returns Term (the function the rpc calls reach).
%%
%% A sink that counts a number other than N, or an echo that returns another
%% term, makes the call fail: a benchmark of lost messages is not a result.
-module(pyekka_bench_dist).

-export([start_sink/0, payload/1, flood/3, rpc_latency/3, echo/1]).

-define(SINK, pyekka_bench_sink).
-define(DONE, pyekka_bench_done).
-define(ACK, pyekka_bench_ack).
-define(ACK_TIMEOUT, 120000).
-define(RPC_TIMEOUT, 30000).

%% @doc Register the sink process (once per node; later calls do nothing).
-spec start_sink() -> pid().
start_sink() ->
    case whereis(?SINK) of
        undefined ->
            Pid = spawn(fun() -> sink(0) end),
            true = register(?SINK, Pid),
            Pid;
        Pid ->
            Pid
    end.

sink(Count) ->
    receive
        {?DONE, From} ->
            From ! {?ACK, Count},
            sink(0);
        _Payload ->
            sink(Count + 1)
    end.

%% @doc The benchmark payloads, the same terms in every direction.
-spec payload(ping | member | bin_1k | bin_64k) -> term().
payload(ping) ->
    {ping, 1};
payload(member) ->
    %% An ekka 0.8 #member{} record (the `ekka_member' term of the codec bench).
    Node = 'ekka1@127.0.0.1',
    Guid = <<0, 6, 10, 36, 24, 30, 64, 0, 161, 178, 195, 212, 229, 246, 0, 7>>,
    {member, Node, undefined, Guid, erlang:phash2({Node, Guid}, 4294967295),
     up, running, {1600, 123456, 789012}};
payload(bin_1k) ->
    bytes(1024);
payload(bin_64k) ->
    bytes(65536).

bytes(Size) ->
    << <<(I * 7 band 255)>> || I <- lists:seq(1, Size) >>.

%% @doc Send Payload N times to the sink on Node, then the done marker; the
%% nanoseconds from the first send until the sink's ack is back.
-spec flood(node(), term(), pos_integer()) -> non_neg_integer().
flood(Node, Payload, N) ->
    Dest = {?SINK, Node},
    T0 = erlang:monotonic_time(),
    ok = send_n(Dest, Payload, N),
    Dest ! {?DONE, self()},
    receive
        {?ACK, N} ->
            nanoseconds(erlang:monotonic_time() - T0);
        {?ACK, Count} ->
            error({messages_lost, N, Count})
    after ?ACK_TIMEOUT ->
            error({no_ack_from, Node})
    end.

send_n(_Dest, _Payload, 0) ->
    ok;
send_n(Dest, Payload, N) ->
    Dest ! Payload,
    send_n(Dest, Payload, N - 1).

%% @doc N sequential rpc:call round trips of echo(Payload) on Node, in
%% nanoseconds each (in call order).
-spec rpc_latency(node(), term(), pos_integer()) -> [non_neg_integer()].
rpc_latency(Node, Payload, N) ->
    rpc_loop(Node, Payload, N, []).

rpc_loop(_Node, _Payload, 0, Acc) ->
    lists:reverse(Acc);
rpc_loop(Node, Payload, N, Acc) ->
    T0 = erlang:monotonic_time(),
    Result = rpc:call(Node, ?MODULE, echo, [Payload], ?RPC_TIMEOUT),
    T1 = erlang:monotonic_time(),
    case Result =:= Payload of
        true -> rpc_loop(Node, Payload, N - 1, [nanoseconds(T1 - T0) | Acc]);
        false -> error({bad_echo, Node, Result})
    end.

%% @doc The function every rpc of the benchmark calls.
-spec echo(term()) -> term().
echo(Term) ->
    Term.

nanoseconds(Native) ->
    erlang:convert_time_unit(Native, native, nanosecond).
