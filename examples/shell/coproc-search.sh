#!/usr/bin/env bash
# Search encrypted files for terms read from stdin, one term per line, with ONE long-lived
# `cryptcount serve` coprocess. For each term: "term<TAB>path<TAB>count" for every file where
# the count is above zero, then "term<TAB>TOTAL<TAB>n". Files that cannot be read are reported
# on stderr ("path: code: message"), left out of the total, and make the exit status 1.
#
#   coproc-search.sh [-c CIPHER] [-k SECRET_FILE] [-i] [-w] [-e] FILE...
#
# With -e every line read is a regular expression (counted as `rg --count-matches -e LINE`); a
# pattern the server refuses (bad syntax, or one that matches the empty string) is reported on
# stderr and the search goes on with the next line.
#
# The coprocess is a pipeline `cryptcount frame | cryptcount serve | cryptcount unframe`: we
# write one JSON line per request and read JSON lines back. Both helpers flush whenever their
# input would block, so a request line in gives its responses out without buffering stalls.
# The secret is read from SECRET_FILE here in bash (less one trailing \n or \r\n, the rule of
# `cryptcount count` and `encrypt`) and written into the pipe; it never appears on a command line.
# Needs bash 4+, coreutils `base64` and the cryptcount binary ($CRYPTCOUNT, else on PATH).
set -euo pipefail

usage() {
    echo "usage: ${0##*/} [-c CIPHER] [-k SECRET_FILE] [-i] [-w] [-e] FILE..." >&2
    exit 2
}

cipher=plain
keyfile=
ignore_case=false
whole_word=false
regex=false
while getopts 'c:k:iweh' opt; do
    case $opt in
        c) cipher=$OPTARG ;;
        k) keyfile=$OPTARG ;;
        i) ignore_case=true ;;
        w) whole_word=true ;;
        e) regex=true ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# > 0)) || usage
[[ $cipher =~ ^[A-Za-z0-9_-]+$ ]] || { echo "${0##*/}: bad cipher name: $cipher" >&2; exit 2; }
if [[ $cipher != plain && $cipher != auto && -z $keyfile ]]; then
    echo "${0##*/}: cipher $cipher needs -k SECRET_FILE" >&2
    exit 2
fi

cryptcount=${CRYPTCOUNT:-cryptcount}
command -v "$cryptcount" >/dev/null || { echo "${0##*/}: $cryptcount not found (set CRYPTCOUNT)" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/coproc-lib.sh"

paths=("$@")
files_json=
for p in "${paths[@]}"; do
    files_json+=${files_json:+,}$(b64str "$p")
done

start_serve

request_error() {
    echo "${0##*/}: $1 failed: $(describe_error)" >&2
    exit 1
}

# The secret as a key of cipher $1, as `cryptcount count` takes a secret file: for age, identity
# text (AGE-SECRET-KEY- lines) or else a passphrase; for openpgp, a PGP PRIVATE KEY BLOCK or else
# a passphrase.
secret_json() {
    case $1 in
    age) [[ $secret == *AGE-SECRET-KEY-* ]] && b64str "$secret" || printf '{"passphrase":%s}' "$(b64str "$secret")" ;;
    openpgp) [[ $secret == *"-----BEGIN PGP PRIVATE KEY BLOCK-----"* ]] && printf '{"keys":%s}' "$(b64str "$secret")" || b64str "$secret" ;;
    *) b64str "$secret" ;;
    esac
}

key_json=
if [[ $cipher != plain && -n $keyfile ]]; then
    read_secret_file "$keyfile"
    secret=$file_secret
    [[ -n $secret ]] || { echo "${0##*/}: $keyfile holds no secret" >&2; exit 2; }
    if [[ $cipher == auto ]]; then
        # As `cryptcount count --cipher auto`: the secret is unlocked as a key of every format
        # auto recognises that it can be a key of (an age identity is no Fernet key...), and
        # each file is decrypted with the one of its kind.
        keys=
        for kind in age fernet openssl openpgp; do
            send "{\"id\":\"unlock-$kind\",\"op\":\"unlock\",\"name\":\"search-$kind\",\"cipher\":\"$kind\",\"secret\":$(secret_json "$kind")}"
            receive
            rtype
            if [[ $type == ok ]]; then
                keys+=${keys:+,}\"search-$kind\"
            elif ! [[ $line =~ $re_code && ${BASH_REMATCH[1]} == bad_secret ]]; then
                request_error "unlock as $kind"
            fi
        done
        unset secret
        key_json="\"cipher\":\"auto\",\"keys\":[$keys]"
    else
        send "{\"id\":\"unlock\",\"op\":\"unlock\",\"name\":\"search\",\"cipher\":\"$cipher\",\"secret\":$(secret_json "$cipher")}"
        unset secret
        receive
        rtype
        [[ $type == ok ]] || request_error unlock
        key_json='"key":"search"'
    fi
elif [[ $cipher == auto ]]; then
    key_json='"cipher":"auto","keys":[]'
else
    key_json='"cipher":"plain"'
fi

id=0
failed=0
while IFS= read -r term || [[ -n $term ]]; do
    term=${term%$'\r'}              # terms from a file with CRLF line ends
    [[ -n $term ]] || continue # an empty term is not a search
    id=$((id + 1))
    send "{\"id\":$id,\"op\":\"count\",$key_json,\"ignore_case\":$ignore_case,\"whole_word\":$whole_word,\"regex\":$regex,\"ordered\":true,\"files\":[$files_json],\"terms\":[$(b64str "$term")]}"
    while receive; do
        rtype
        case $type in
            file)
                [[ $line =~ $re_index ]] || continue
                path=${paths[${BASH_REMATCH[1]}]}
                if [[ $line =~ $re_counts ]]; then
                    if ((BASH_REMATCH[1] > 0)); then
                        printf '%s\t%s\t%s\n' "$term" "$path" "${BASH_REMATCH[1]}"
                    fi
                else
                    echo "$path: $(describe_error)" >&2
                    failed=1
                fi
                ;;
            done)
                total=0
                if [[ $line =~ $re_counts ]]; then total=${BASH_REMATCH[1]}; fi
                printf '%s\tTOTAL\t%s\n' "$term" "$total"
                break
                ;;
            error)
                # A refused pattern or term (a typo, a term over --max-term-bytes) is the
                # user's, not a broken coprocess: say so, go on with the next line.
                if [[ $line =~ $re_code && ${BASH_REMATCH[1]} == bad_request ]]; then
                    echo "${0##*/}: $([[ $regex == true ]] && echo pattern || echo term) '$term': $(describe_error)" >&2
                    break
                fi
                request_error "count for '$term'"
                ;;
        esac
    done
done

send '{"id":"bye","op":"shutdown"}'
receive
exec {to_serve}>&-
wait "$serve_pid"
exit "$failed"
