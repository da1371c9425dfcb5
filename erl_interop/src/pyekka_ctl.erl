%% @doc Remote control of a test VM through its standard input and output,
%% independent of the distribution under test.
%%
%% Start with `erl -noshell -pa EBIN -s pyekka_ctl main'. Each request is one
%% line on standard input: `Id Hex', where Hex is the UTF-8 text of Erlang
%% expressions (as io_lib:format("~.16b") would write each byte, two hex
%% digits per byte). The expressions are evaluated in a new process, so
%% requests may block and overlap; the answer is the line
%% `PYEKKA_CTL Id Hex' where Hex encodes term_to_binary({ok, Value}) or
%% term_to_binary({error, {Class, Reason}}). The line `PYEKKA_CTL ready' is
%% printed once at start; the VM halts when standard input closes.
%%
%% Helpers for the expressions: collectors (registered processes that keep
%% every message they get), and the warnings and errors logged by the VM.
-module(pyekka_ctl).

-export([main/0, eval/1]).
-export([collector/1, collected/1, wait_messages/3]).
-export([log_events/0, log/2, adding_handler/1, removing_handler/1]).

-define(TAB, pyekka_ctl_log).

main() ->
    logger:add_handler(?MODULE, ?MODULE, #{level => warning}),
    io:format("PYEKKA_CTL ready~n"),
    loop().

loop() ->
    case io:get_line('') of
        eof -> halt();
        {error, _} -> halt();
        Line ->
            case string:split(string:trim(Line), " ") of
                [Id, Hex] ->
                    spawn(fun() -> answer(Id, eval(unhex(Hex))) end);
                _ ->
                    ok
            end,
            loop()
    end.

answer(Id, Result) ->
    io:format("PYEKKA_CTL ~s ~s~n", [Id, hex(term_to_binary(Result))]).

%% @doc Evaluate Erlang expressions given as text: {ok, Value} or
%% {error, {Class, Reason}}.
eval(Text) ->
    try
        {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Text)),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
        {ok, Value}
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.

hex(Bin) ->
    << <<(hexdigit(N bsr 4)), (hexdigit(N band 15))>> || <<N>> <= Bin >>.

hexdigit(N) when N < 10 -> $0 + N;
hexdigit(N) -> $a + N - 10.

unhex(Hex) ->
    << <<(list_to_integer([A, B], 16))>> || <<A, B>> <= list_to_binary(Hex) >>.

%% -- collectors --------------------------------------------------------------

%% @doc Register a process Name that keeps every message it receives.
collector(Name) ->
    Pid = spawn(fun() -> collect([]) end),
    true = register(Name, Pid),
    Pid.

collect(Acc) ->
    receive
        {'$pyekka_ctl_get', From, Ref} ->
            From ! {Ref, lists:reverse(Acc)},
            collect(Acc);
        Msg ->
            collect([Msg | Acc])
    end.

%% @doc The messages a collector got so far, oldest first.
collected(Name) ->
    Ref = make_ref(),
    Name ! {'$pyekka_ctl_get', self(), Ref},
    receive {Ref, Msgs} -> Msgs end.

%% @doc Wait (polling every 10 ms) until collector Name holds at least N
%% messages; all of them, or {timeout, Msgs} after Timeout ms.
wait_messages(Name, N, Timeout) ->
    Msgs = collected(Name),
    if
        length(Msgs) >= N -> Msgs;
        Timeout =< 0 -> {timeout, Msgs};
        true ->
            receive after 10 -> ok end,
            wait_messages(Name, N, Timeout - 10)
    end.

%% -- captured log events -------------------------------------------------------

%% @doc Every warning or error logged since start: [{Level, Text}].
log_events() ->
    case ets:info(?TAB) of
        undefined -> [];
        _ -> [Event || {_, Event} <- lists:sort(ets:tab2list(?TAB))]
    end.

%% logger handler callbacks
adding_handler(Config) ->
    Self = self(),
    Owner = spawn(fun() ->
                          ets:new(?TAB, [named_table, public, ordered_set]),
                          Self ! {?TAB, ready},
                          receive stop -> ok end
                  end),
    receive {?TAB, ready} -> ok end,
    {ok, Config#{owner => Owner}}.

removing_handler(#{owner := Owner}) ->
    Owner ! stop,
    ok.

log(#{level := Level} = Event, _Config) ->
    Text = try
               unicode:characters_to_binary(
                 logger_formatter:format(Event, #{single_line => true,
                                                  template => [msg]}))
           catch _:_ -> <<"(unformattable)">>
           end,
    ets:insert(?TAB, {erlang:unique_integer([monotonic]), {Level, Text}}).
