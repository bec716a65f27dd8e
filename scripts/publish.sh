#!/usr/bin/env bash
# Publishes the agent as a NativeAOT binary for linux-x64 and fails on any trim/AOT warning.
#
#   scripts/publish.sh [OUTDIR]      (default: artifacts/publish)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_apt_packages gcc libc6-dev zlib1g-dev
ensure_dotnet
outdir="${1:-$REPO_ROOT/artifacts/publish}"
publish_agent "$outdir"
echo "$outdir/vast-host-agent ($(du -h "$outdir/vast-host-agent" | cut -f1), 0 warnings)"
