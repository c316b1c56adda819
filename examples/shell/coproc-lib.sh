# Shared by coproc-search.sh and pass-grep.sh (sourced, not run): `cryptcount serve` as a bash
# coprocess behind `frame`/`unframe`, and the few response fields the scripts read.
# Source it early (it only defines things), then call start_serve with $cryptcount set.

# Bytes as a JSON value that keeps them exactly: {"$str":"<base64>"} is a MessagePack str with
# these bytes, whatever they are (so names and terms need no JSON escaping, and need not be UTF-8).
b64str() { printf '{"$str":"%s"}' "$(printf '%s' "$1" | base64 -w0)"; }

start_serve() {
    coproc SERVE { "$cryptcount" frame | "$cryptcount" serve | "$cryptcount" unframe; }
    # Copies: bash unsets SERVE when the coprocess exits, and we still want clean error paths.
    to_serve=${SERVE[1]}
    from_serve=${SERVE[0]}
    serve_pid=$SERVE_PID
}

# Reads a secret file into $file_secret by the secret-file rule of `cryptcount count` and
# `encrypt`: its bytes less exactly one trailing line ending, \n or \r\n (read -d '' keeps every
# byte up to a NUL, and a secret cannot hold one).
read_secret_file() {
    file_secret=
    if [[ -d $1 || ! -r $1 ]]; then
        echo "${0##*/}: cannot read the secret file $1" >&2
        exit 2
    fi
    IFS= read -r -d '' file_secret <"$1" || true
    if [[ $file_secret == *$'\n' ]]; then
        file_secret=${file_secret%$'\n'}
        file_secret=${file_secret%$'\r'}
    fi
}

send() { printf '%s\n' "$1" >&"$to_serve"; }

# Reads one response line into $line; fails if the coprocess has gone.
receive() {
    if ! IFS= read -r line <&"$from_serve"; then
        echo "${0##*/}: cryptcount serve stopped unexpectedly" >&2
        exit 1
    fi
}

# Fields of a response line. Only keys the server writes are matched; an unescaped '"'
# followed by ':' only ends an object key, so string contents (paths) cannot fool these.
re_type='"type":"([a-z_]+)"'
re_code='"code":"([a-z_]+)"'
re_message='"message":"(([^"\\]|\\.)*)"'
re_index='"index":([0-9]+)'
re_counts='"counts":\[([0-9,]*)\]'
rtype() { if [[ $line =~ $re_type ]]; then type=${BASH_REMATCH[1]}; else type=; fi; }
describe_error() {
    local code=? message=
    [[ $line =~ $re_code ]] && code=${BASH_REMATCH[1]}
    [[ $line =~ $re_message ]] && message=${BASH_REMATCH[1]}
    printf '%s: %s' "$code" "${message//\\\"/\"}"   # the usual JSON escape in messages: \" -> "
}
