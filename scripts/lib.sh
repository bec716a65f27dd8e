#!/usr/bin/env bash
# Shared helpers for the scripts in this folder: prerequisite checks and apt installs.
# Sourced, not run.

# shellcheck disable=SC2034  # REPO_ROOT is used by the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing packages needs root: run as root or install sudo"
    fi
}

# ensure_apt_packages PKG... : installs the Debian/Ubuntu packages that are not installed yet.
ensure_apt_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages (${missing[*]}) and no apt-get: install them with your package manager"
    log "installing with apt: ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vasthost-apt.log 2>&1; then
        as_root apt-get update >/tmp/vasthost-apt-update.log 2>&1 || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vasthost-apt.log 2>&1 ||
            die "apt-get install ${missing[*]} failed (see /tmp/vasthost-apt.log)"
    fi
}

# ensure_dotnet: the .NET 10 SDK cannot come from Debian's archive; say how to get it.
ensure_dotnet() {
    if ! command -v dotnet >/dev/null 2>&1; then
        die "the .NET 10 SDK is required and not installed: see https://learn.microsoft.com/dotnet/core/install/linux (e.g. 'sudo apt-get install dotnet-sdk-10.0' on Ubuntu 24.04+, or the dotnet-install.sh script), then run this again"
    fi
    local major
    major="$(dotnet --version 2>/dev/null | cut -d. -f1)"
    if [ -z "$major" ] || [ "$major" -lt 10 ]; then
        die "the .NET 10 SDK is required (found '$(dotnet --version 2>/dev/null || echo none)'): see https://learn.microsoft.com/dotnet/core/install/linux"
    fi
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# build_fake_nvml: builds the fake libnvidia-ml.so.1 (and its legacy-driver variant) with gcc,
# from every .c file in tests/fake-nvml.
build_fake_nvml() {
    local src=("$REPO_ROOT"/tests/fake-nvml/*.c)
    local out="$REPO_ROOT/tests/fake-nvml/build"
    mkdir -p "$out/legacy"
    gcc -O2 -shared -fPIC -Wall -Wextra -Werror -Wl,-soname,libnvidia-ml.so.1 \
        -o "$out/libnvidia-ml.so.1" "${src[@]}" -lm -lpthread
    gcc -O2 -shared -fPIC -Wall -Wextra -Werror -DFAKE_NVML_LEGACY -Wl,-soname,libnvidia-ml.so.1 \
        -o "$out/legacy/libnvidia-ml.so.1" "${src[@]}" -lm -lpthread
}

# publish_agent OUTDIR: NativeAOT publish for linux-x64; fails on any warning.
publish_agent() {
    local outdir="$1"
    local logfile
    logfile="$(mktemp)"
    local revision
    revision="$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    if ! dotnet publish "$REPO_ROOT/agent/VastHostAgent.csproj" -c Release -r linux-x64 \
        -p:SourceRevisionId="$revision" -o "$outdir" -nologo >"$logfile" 2>&1; then
        cat "$logfile" >&2
        die "NativeAOT publish failed"
    fi
    if grep -E "warning [A-Z]+[0-9]+" "$logfile" >&2; then
        die "NativeAOT publish produced warnings (listed above); the agent must publish with zero trim/AOT warnings"
    fi
    rm -f "$logfile" "$outdir"/*.xml
}
