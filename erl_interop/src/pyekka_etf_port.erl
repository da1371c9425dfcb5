%% @doc A port program that lets Python ask a live VM to decode and encode terms.
%%
%% Start it with
%%   erl -noinput -pa EBIN -s pyekka_etf_port main
%% Standard input and output then carry frames with a 4-byte big-endian length
%% (`{packet, 4}`). Each request frame is the external term format of one command;
%% each reply frame is the external term format (minor version 2) of
%% `{ok, Value}' or `{error, Reason}'. Commands (`Bin' is a full external term,
%% starting with the version byte 131):
%%
%%   ping                          -> {ok, pong}
%%   system_info                   -> {ok, #{otp_release, erts_version, ...}}
%%   {roundtrip, Bin}              -> {ok, term_to_binary(binary_to_term(Bin),
%%                                                        [{minor_version, 2}])}
%%   {roundtrip_opts, Bin, Opts}   -> {ok, term_to_binary(binary_to_term(Bin), Opts)}
%%   {decode, Bin}                 -> {ok, {binary_to_term(Bin), BytesUsed}}
%%   {equal, Bin1, Bin2}           -> {ok, T1 =:= T2}
%%   {compare, Bin1, Bin2}         -> {ok, -1 | 0 | 1} (term order; 0 means ==)
%%   {phash2, Bin}                 -> {ok, erlang:phash2(T)}
%%   {phash2, Bin, Range}          -> {ok, erlang:phash2(T, Range)}
%%   {eval, String}                -> {ok, Value of the Erlang expressions}
%%
%% A term the VM refuses to decode gives `{error, badarg}'. The VM halts when its
%% standard input closes, so it never outlives the program that started it.
%% Anything the VM would print (logger reports, io:format in an eval) goes to
%% standard error, never into the framed standard output.
-module(pyekka_etf_port).

-export([main/0]).

-define(REPLY_OPTS, [{minor_version, 2}]).

%% @doc Entry point for `-s pyekka_etf_port main': serve in a new process and return,
%% so that the VM's start-up sequence goes on.
-spec main() -> ok.
main() ->
    log_to_stderr(),
    _ = spawn(fun serve/0),
    ok.

log_to_stderr() ->
    _ = logger:remove_handler(default),
    _ = logger:add_handler(default, logger_std_h, #{config => #{type => standard_error}}),
    ok.

serve() ->
    process_flag(trap_exit, true),
    group_leader(whereis(standard_error), self()),
    try
        Port = open_port({fd, 0, 1}, [{packet, 4}, binary, eof]),
        loop(Port)
    catch
        Class:Reason:Stack ->
            logger:error("pyekka_etf_port crashed: ~p:~p ~p", [Class, Reason, Stack]),
            erlang:halt(3)
    end.

loop(Port) ->
    receive
        {Port, {data, Request}} ->
            Reply = handle_request(Request),
            Port ! {self(), {command, term_to_binary(Reply, ?REPLY_OPTS)}},
            loop(Port);
        {Port, eof} ->
            erlang:halt(0);
        {'EXIT', Port, _Reason} ->
            erlang:halt(0);
        _Other ->
            loop(Port)
    end.

handle_request(Request) ->
    case safe_decode(Request) of
        {ok, Command} ->
            try
                {ok, run(Command)}
            catch
                error:badarg -> {error, badarg};
                throw:{pyekka_error, Reason} -> {error, Reason};
                Class:Reason -> {error, {Class, Reason}}
            end;
        error ->
            {error, bad_request}
    end.

safe_decode(Bin) ->
    try
        {ok, binary_to_term(Bin)}
    catch
        error:badarg -> error
    end.

run(ping) ->
    pong;
run(system_info) ->
    #{
        otp_release => list_to_binary(erlang:system_info(otp_release)),
        erts_version => list_to_binary(erlang:system_info(version)),
        wordsize => erlang:system_info(wordsize),
        root_dir => unicode:characters_to_binary(code:root_dir())
    };
run({roundtrip, Bin}) when is_binary(Bin) ->
    term_to_binary(binary_to_term(Bin), ?REPLY_OPTS);
run({roundtrip_opts, Bin, Opts}) when is_binary(Bin), is_list(Opts) ->
    term_to_binary(binary_to_term(Bin), Opts);
run({decode, Bin}) when is_binary(Bin) ->
    binary_to_term(Bin, [used]);
run({equal, Bin1, Bin2}) when is_binary(Bin1), is_binary(Bin2) ->
    binary_to_term(Bin1) =:= binary_to_term(Bin2);
run({compare, Bin1, Bin2}) when is_binary(Bin1), is_binary(Bin2) ->
    order(binary_to_term(Bin1), binary_to_term(Bin2));
run({phash2, Bin}) when is_binary(Bin) ->
    erlang:phash2(binary_to_term(Bin));
run({phash2, Bin, Range}) when is_binary(Bin) ->
    erlang:phash2(binary_to_term(Bin), Range);
run({eval, Text}) when is_binary(Text); is_list(Text) ->
    eval(unicode:characters_to_list(Text));
run(Command) ->
    throw({pyekka_error, {unknown_command, Command}}).

order(A, B) when A < B -> -1;
order(A, B) when A == B -> 0;
order(_, _) -> 1.

eval(Text) ->
    Source = ensure_final_dot(Text),
    case erl_scan:string(Source) of
        {ok, Tokens, _} ->
            case erl_parse:parse_exprs(Tokens) of
                {ok, Exprs} ->
                    {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
                    Value;
                {error, {_, Module, Message}} ->
                    throw({pyekka_error, {parse_error, format_error(Module, Message)}})
            end;
        {error, {_, Module, Message}, _} ->
            throw({pyekka_error, {scan_error, format_error(Module, Message)}})
    end.

format_error(Module, Message) ->
    unicode:characters_to_binary(Module:format_error(Message)).

ensure_final_dot(Text) ->
    case lists:reverse(string:trim(Text, trailing)) of
        [$. | _] -> Text;
        _ -> Text ++ "."
    end.
