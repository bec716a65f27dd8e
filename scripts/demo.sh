#!/usr/bin/env bash
# Runs the agent on this machine with an embedded default configuration and serves /metrics.
#
#   scripts/demo.sh [--port N] [--gpus N] [--check]
#
# Without an NVIDIA driver, the agent loads the fake libnvidia-ml.so.1 from tests/fake-nvml with
# several simulated GPUs whose readings move over time. With a driver, it reads the real GPUs.
# --check: start, verify the metrics pass `promtool check metrics` (when installed), print a summary, stop.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

port=9470
gpus=4
check=0
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --gpus) gpus="$2"; shift 2 ;;
        --check) check=1; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done

ensure_apt_packages gcc libc6-dev curl ca-certificates
ensure_dotnet

demo_dir="$(mktemp -d /tmp/vast-host-agent-demo.XXXXXX)"
nvml_library="libnvidia-ml.so.1"
if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1 ' && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    log "NVIDIA driver found: reading the real GPUs"
else
    log "no NVIDIA driver: simulating $gpus GPUs with the fake NVML library"
    build_fake_nvml
    nvml_library="$REPO_ROOT/tests/fake-nvml/build/libnvidia-ml.so.1"
    export FAKE_NVML_GPUS="$gpus" FAKE_NVML_ANIMATE=1
fi

log "building the agent"
dotnet build agent/VastHostAgent.csproj -c Release -nologo -v quiet -o "$demo_dir/bin" >"$demo_dir/build.log" 2>&1 || {
    cat "$demo_dir/build.log" >&2
    die "build failed"
}

cat >"$demo_dir/agent.json" <<EOF
{
  "agent": { "sampleInterval": "00:00:05", "stateDirectory": "$demo_dir/state" },
  "metrics": { "listenAddress": "127.0.0.1:$port" },
  "gpu": { "nvmlLibrary": "$nvml_library" }
}
EOF

"$demo_dir/bin/vast-host-agent" run --config "$demo_dir/agent.json" &
agent_pid=$!
cleanup() {
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    rm -rf "$demo_dir"
}
trap cleanup EXIT INT TERM

url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS "$url/metrics" -o "$demo_dir/metrics.txt" 2>/dev/null && grep -q '^vasthost_collector_up{collector="gpu"}' "$demo_dir/metrics.txt" && break
    kill -0 "$agent_pid" 2>/dev/null || die "the agent exited (see its log above)"
    sleep 0.1
done
[ -s "$demo_dir/metrics.txt" ] || die "the agent did not answer on $url"

echo
echo "vast-host-agent is serving:"
echo "  metrics: $url/metrics   ($(grep -c '^[a-zA-Z]' "$demo_dir/metrics.txt") series)"
echo "  health:  $url/healthz"
echo
echo "GPU temperatures right now:"
grep '^vasthost_gpu_temperature_celsius' "$demo_dir/metrics.txt" | sed 's/^/  /'
if command -v promtool >/dev/null 2>&1; then
    if promtool check metrics <"$demo_dir/metrics.txt"; then
        echo "promtool check metrics: no findings"
    else
        die "promtool check metrics reported problems"
    fi
fi

if [ "$check" -eq 1 ]; then
    exit 0
fi
echo
echo "Try: curl -s $url/metrics | grep vasthost_gpu_utilization_ratio"
echo "Press Ctrl+C to stop."
wait "$agent_pid"
