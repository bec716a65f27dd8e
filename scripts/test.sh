#!/usr/bin/env bash
# Runs every test of VastHostAgent on a fresh Debian/Ubuntu machine.
#
#   scripts/test.sh
#
# 1. installs what the tests need from apt when missing (gcc, zlib, curl, tzdata, prometheus and promtool,
#    alertmanager and amtool, dockerd, busybox, lintian, the shell linter, systemd-analyze, useradd, setpriv;
#    Node.js and npm if absent);
# 2. builds the fake libnvidia-ml.so.1 with gcc;
# 3. builds the solution (warnings are errors) and publishes the agent NativeAOT (zero warnings allowed);
# 4. checks formatting: `dotnet format --verify-no-changes` (whitespace, sorted usings, code style);
# 5. runs `dotnet test` on every test project, against the NativeAOT binary we ship;
# 6. ends with one line: "N passed, N failed, N skipped", and exits non-zero on any failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_apt_packages gcc libc6-dev zlib1g-dev curl ca-certificates tzdata prometheus prometheus-alertmanager shellcheck docker.io busybox-static lintian systemd passwd util-linux
# Node.js and npm type-check the Grafana dashboards against @grafana/schema.
command -v npm >/dev/null 2>&1 || ensure_apt_packages nodejs npm
ensure_dotnet

# Private dockerds started by the tests live under /tmp/vha-dockerd-*; never leave one running.
reap_test_dockerds() {
    pkill -f -- '/tmp/vha-dockerd-' 2>/dev/null || true
}
trap reap_test_dockerds EXIT
reap_test_dockerds

log "building the fake NVML library"
build_fake_nvml

log "building the solution"
dotnet build VastHostAgent.sln -c Release -nologo -v quiet >/tmp/vasthost-build.log 2>&1 || {
    cat /tmp/vasthost-build.log >&2
    die "build failed"
}

log "publishing the agent (NativeAOT, linux-x64)"
AOT_DIR="$REPO_ROOT/artifacts/publish"
publish_agent "$AOT_DIR"
log "NativeAOT binary: $(du -h "$AOT_DIR/vast-host-agent" | cut -f1) at $AOT_DIR/vast-host-agent (0 warnings)"

passed=0
failed=0
skipped=0
status=0

log "checking formatting (dotnet format --verify-no-changes)"
if ! dotnet format VastHostAgent.sln --verify-no-changes --no-restore -v quiet >/tmp/vasthost-format.log 2>&1; then
    sort -u /tmp/vasthost-format.log >&2
    log "formatting differs from .editorconfig: run 'dotnet format VastHostAgent.sln' and commit the result"
    failed=$((failed + 1))
    status=1
fi
for project in tests/*/*.Tests.csproj; do
    log "testing $project"
    output="$(mktemp)"
    set +e
    AGENT_UNDER_TEST="$AOT_DIR/vast-host-agent" \
        dotnet test "$project" -c Release --no-build -nologo 2>&1 | tee "$output"
    rc="${PIPESTATUS[0]}"
    set -e
    summary="$(grep -E '(Passed|Failed)!  - Failed:' "$output" | tail -1 || true)"
    if [ -z "$summary" ]; then
        log "no test summary from $project (exit $rc)"
        failed=$((failed + 1))
        status=1
        continue
    fi
    f="$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$summary")"
    p="$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary")"
    s="$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        status=1
    fi
    rm -f "$output"
done

if [ "$passed" -eq 0 ]; then
    status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
