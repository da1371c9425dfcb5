%% @doc Times the VM's own external term codec for bench/codec_bench.py.
%%
%% Start it with
%%   erl -noinput -pa EBIN -s pyekka_bench_codec main
%% Standard input and output then carry frames with a 4-byte big-endian length
%% (`{packet, 4}'). Requests and replies are short ASCII texts, words separated by
%% spaces, so that the Python side can interleave the VM's timing loops with its own:
%%
%%   info             -> ok Release ErtsVersion
%%   load File        -> ok Count Same1 ... SameN
%%       File holds the benchmark terms as `<<Len:32, Etf:Len/binary>>' records
%%       (canonical external format, with the version byte 131). Each is decoded
%%       once and kept; SameI is `true' when term_to_binary(T, [{minor_version, 2}])
%%       gives back exactly the record's bytes, else `false'.
%%   time I enc N     -> ok Micros: `timer:tc' of N calls of
%%                       term_to_binary(T, [{minor_version, 2}]) on term I (0-based)
%%   time I dec N     -> ok Micros: the same for binary_to_term(Etf) on record I
%%
%% Anything else, or a failure, gives `error Reason'. The VM halts when its
%% standard input closes, so it never outlives the program that started it.
-module(pyekka_bench_codec).

-export([main/0]).

-define(OPTS, [{minor_version, 2}]).

%% @doc Entry point for `-s pyekka_bench_codec main': serve in a new process and
%% return, so that the VM's start-up sequence goes on.
-spec main() -> ok.
main() ->
    _ = spawn(fun serve/0),
    ok.

serve() ->
    process_flag(trap_exit, true),
    group_leader(whereis(standard_error), self()),
    try
        Port = open_port({fd, 0, 1}, [{packet, 4}, binary, eof]),
        loop(Port, {})
    catch
        Class:Reason ->
            io:format(standard_error, "pyekka_bench_codec: ~p:~0p~n", [Class, Reason]),
            erlang:halt(3)
    end.

loop(Port, Items) ->
    receive
        {Port, {data, Request}} ->
            {Reply, Items1} = handle(string:lexemes(binary_to_list(Request), " "), Items),
            Port ! {self(), {command, Reply}},
            loop(Port, Items1);
        {Port, eof} ->
            erlang:halt(0);
        {'EXIT', Port, _Reason} ->
            erlang:halt(0);
        _Other ->
            loop(Port, Items)
    end.

handle(Words, Items) ->
    try request(Words, Items) of
        {Reply, Items1} -> {["ok" | [[$\s | W] || W <- Reply]], Items1}
    catch
        Class:Reason ->
            Text = io_lib:format("error ~p:~0p", [Class, Reason]),
            {unicode:characters_to_binary(Text), Items}
    end.

request(["info"], Items) ->
    {[erlang:system_info(otp_release), erlang:system_info(version)], Items};
request(["load", File], _Items) ->
    {ok, Bin} = file:read_file(File),
    Loaded = [{Etf, binary_to_term(Etf)} || Etf <- records(Bin)],
    Same = [atom_to_list(term_to_binary(T, ?OPTS) =:= Etf) || {Etf, T} <- Loaded],
    {[integer_to_list(length(Loaded)) | Same], list_to_tuple(Loaded)};
request(["time", Index, Op, Count], Items) ->
    {Etf, Term} = element(list_to_integer(Index) + 1, Items),
    Fun =
        case Op of
            "enc" -> fun() -> term_to_binary(Term, ?OPTS) end;
            "dec" -> fun() -> binary_to_term(Etf) end
        end,
    N = list_to_integer(Count),
    garbage_collect(),
    {Micros, ok} = timer:tc(fun() -> repeat(N, Fun) end),
    {[integer_to_list(Micros)], Items}.

repeat(0, _Fun) ->
    ok;
repeat(N, Fun) ->
    _ = Fun(),
    repeat(N - 1, Fun).

records(<<>>) ->
    [];
records(<<Len:32, Etf:Len/binary, Rest/binary>>) ->
    [Etf | records(Rest)].
