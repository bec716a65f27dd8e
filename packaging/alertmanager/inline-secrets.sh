#!/usr/bin/env bash
# Writes an Alertmanager configuration for Alertmanager older than 0.28 (Debian 12 ships 0.25), which
# cannot read every secret from a file, from one that does:
#
#   inline-secrets.sh SOURCE DEST
#
# Each `bot_token_file: PATH`, `webhook_url_file: PATH` and `url_file: PATH` line of SOURCE becomes
# `bot_token: "..."`, `webhook_url: "..."` and `url: "..."` with PATH's content (one line; surrounding
# whitespace removed); every other line is copied as it is. DEST holds the secrets: it is written with
# mode 0640 (group prometheus, when run as root and that group exists), replacing DEST at once.
# Run it again after each change to SOURCE or to a secret file. Exit status 1 when a file is missing or
# empty (DEST is then left as it was).
set -euo pipefail

if [ $# -ne 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
source_file="$1"
dest="$2"
[ -r "$source_file" ] || { echo "inline-secrets.sh: cannot read $source_file" >&2; exit 1; }

tmp="$(mktemp "$(dirname "$dest")/.inline-secrets.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
chmod 0640 "$tmp"

pattern='^([[:space:]]*(- )?)(bot_token|webhook_url|url)_file:[[:space:]]*("([^"]*)"|'"'"'([^'"'"']*)'"'"'|([^[:space:]#]+))[[:space:]]*(#.*)?$'
count=0
while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ $pattern ]]; then
        prefix="${BASH_REMATCH[1]}"
        key="${BASH_REMATCH[3]}"
        path="${BASH_REMATCH[5]}${BASH_REMATCH[6]}${BASH_REMATCH[7]}"
        if [ ! -r "$path" ]; then
            echo "inline-secrets.sh: ${key}_file $path: no such file (or not readable)" >&2
            exit 1
        fi
        value="$(tr -d '\r' <"$path" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | sed -n '/./{p;q;}')"
        if [ -z "$value" ]; then
            echo "inline-secrets.sh: ${key}_file $path is empty" >&2
            exit 1
        fi
        # A YAML double-quoted string: backslashes and double quotes escaped.
        value="${value//\\/\\\\}"
        value="${value//\"/\\\"}"
        printf '%s%s: "%s"\n' "$prefix" "$key" "$value" >>"$tmp"
        count=$((count + 1))
    else
        printf '%s\n' "$line" >>"$tmp"
    fi
done <"$source_file"

if [ "$(id -u)" -eq 0 ] && getent group prometheus >/dev/null 2>&1; then
    chgrp prometheus "$tmp"
fi
mv -f "$tmp" "$dest"
trap - EXIT
echo "inline-secrets.sh: wrote $dest ($count secret(s) inlined, mode 0640)" >&2
