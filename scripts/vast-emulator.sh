#!/usr/bin/env bash
# Starts the Vast.ai host API emulator (tests/VastEmulator) on 127.0.0.1, in the foreground; Ctrl+C stops it.
#
#   scripts/vast-emulator.sh [--port N] [emulator options...]
#
# Defaults: port 18080, seed 42, one 8x RTX 4090 machine "rig-01", 2000 market offers, rate limits on.
# It prints the base URL and the demo API key. Every other option goes to the emulator, e.g.
#   --seed N --api-key KEY --hostname NAME --machines N --offers N --duplicates 0.05 --no-rate-limit --verbose
# (--help lists them all). The emulator always binds the loopback interface only.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

port=18080
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --port)
            [ $# -ge 2 ] || die "--port needs a value"
            port="$2"
            shift 2
            ;;
        -h|--help)
            sed -n '2,9p' "$0"
            args+=("--help")
            shift
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done
case "$port" in
    ''|*[!0-9]*) die "--port must be a number (0 = any free port)" ;;
esac

ensure_dotnet
build_log="$(mktemp /tmp/vast-emulator-build.XXXXXX)"
log "building the emulator"
if ! dotnet build tests/VastEmulator/VastEmulator.csproj -c Release -nologo -v quiet >"$build_log" 2>&1; then
    cat "$build_log" >&2
    rm -f "$build_log"
    die "building tests/VastEmulator failed"
fi
rm -f "$build_log"
exec dotnet tests/VastEmulator/bin/Release/net10.0/VastEmulator.dll --port "$port" ${args[@]+"${args[@]}"}
