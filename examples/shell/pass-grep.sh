#!/usr/bin/env bash
# What `pass grep` does, for a whole password store, with ONE `cryptcount serve` coprocess and
# one unlock: no gpg process per entry, no gpg-agent, no plaintext on disk. For every entry
# where some term occurs: "entry<TAB>count<TAB>count..." (one count per term, in order), then
# "TOTAL<TAB>count...". Entries that cannot be decrypted go to stderr ("entry: code: message").
#
#   pass-grep.sh [-s STORE] [-g GNUPGHOME | -K KEYS_FILE] [-p PASSPHRASE_FILE] [-i] [-w] TERM...
#
# - STORE: $PASSWORD_STORE_DIR, else ~/.password-store. Every *.gpg file below it is an entry
#   (symbolic links followed, as pass follows them; .git skipped).
# - The secret keys: the GnuPG home (-g; default $GNUPGHOME, else ~/.gnupg), or exported secret
#   keys (-K, `gpg --export-secret-keys` output, armored or binary).
# - The passphrase of those keys: read from PASSPHRASE_FILE (-p; one trailing \n or \r\n stripped),
#   else asked for on the terminal. It never appears on a command line.
# Needs bash 4+, coreutils `base64`, and the cryptcount binary ($CRYPTCOUNT, else on PATH).
set -euo pipefail

me=${0##*/}
usage() {
    echo "usage: $me [-s STORE] [-g GNUPGHOME | -K KEYS_FILE] [-p PASSPHRASE_FILE] [-i] [-w] TERM..." >&2
    exit 2
}

store=${PASSWORD_STORE_DIR:-$HOME/.password-store}
home=${GNUPGHOME:-$HOME/.gnupg}
keys_file=
pass_file=
ignore_case=false
whole_word=false
while getopts 's:g:K:p:iwh' opt; do
    case $opt in
        s) store=$OPTARG ;;
        g) home=$OPTARG ;;
        K) keys_file=$OPTARG ;;
        p) pass_file=$OPTARG ;;
        i) ignore_case=true ;;
        w) whole_word=true ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# > 0)) || usage
[[ -d $store ]] || { echo "$me: no password store at $store" >&2; exit 2; }
while [[ $store == */ && $store != / ]]; do store=${store%/}; done  # names are relative to it

cryptcount=${CRYPTCOUNT:-cryptcount}
command -v "$cryptcount" >/dev/null || { echo "$me: $cryptcount not found (set CRYPTCOUNT)" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/coproc-lib.sh"
b64file() { printf '{"$bin":"%s"}' "$(base64 -w0 <"$1")"; }

# The passphrase, from a file or the terminal.
passphrase=
if [[ -n $pass_file ]]; then
    read_secret_file "$pass_file"
    passphrase=$file_secret
elif [[ -t 0 ]]; then
    IFS= read -r -s -p "Passphrase for the keys of the password store: " passphrase
    echo >&2
fi

# The entries as pass shows them (the name relative to the store, without .gpg), sorted by that
# name, byte by byte.
entries=()
paths=()
while IFS= read -r -d '' name; do
    entries+=("$name")
    paths+=("$store/$name.gpg")
done < <(find -L "$store" -name .git -prune -o -type f -name '*.gpg' -printf '%P\0' | sed -z 's/\.gpg$//' | LC_ALL=C sort -z)
((${#paths[@]} > 0)) || { echo "$me: no entries in $store" >&2; exit 0; }

files_json=
for p in "${paths[@]}"; do files_json+=${files_json:+,}$(b64str "$p"); done
terms_json=
for t in "$@"; do
    [[ -n $t ]] || { echo "$me: an empty term is not a search" >&2; exit 2; }
    terms_json+=${terms_json:+,}$(b64str "$t")
done

start_serve

# One unlock: the secret keys and their passphrase.
if [[ -n $keys_file ]]; then
    source_json="\"keys\":$(b64file "$keys_file")"
else
    source_json="\"gnupg_home\":$(b64str "$home")"
fi
pass_json=
[[ -n $passphrase ]] && pass_json=",\"passphrase\":$(b64str "$passphrase")"
send "{\"id\":\"unlock\",\"op\":\"unlock\",\"name\":\"store\",\"cipher\":\"openpgp\",\"secret\":{$source_json$pass_json}}"
unset passphrase pass_json
receive
rtype
[[ $type == ok ]] || { echo "$me: unlock failed: $(describe_error)" >&2; exit 1; }

send "{\"id\":1,\"op\":\"count\",\"key\":\"store\",\"ignore_case\":$ignore_case,\"whole_word\":$whole_word,\"ordered\":true,\"files\":[$files_json],\"terms\":[$terms_json]}"
status=0
while receive; do
    rtype
    case $type in
        file)
            [[ $line =~ $re_index ]] || continue
            entry=${entries[${BASH_REMATCH[1]}]}
            if [[ $line =~ $re_counts ]]; then
                counts=${BASH_REMATCH[1]}
                [[ $counts =~ [1-9] ]] && printf '%s\t%s\n' "$entry" "${counts//,/$'\t'}"
            else
                echo "$entry: $(describe_error)" >&2
                status=1
            fi
            ;;
        done)
            [[ $line =~ $re_counts ]] && printf 'TOTAL\t%s\n' "${BASH_REMATCH[1]//,/$'\t'}"
            break
            ;;
        error) echo "$me: count failed: $(describe_error)" >&2; exit 1 ;;
    esac
done

send '{"id":"bye","op":"shutdown"}'
receive
exec {to_serve}>&-
wait "$serve_pid"
exit $status
