#!/usr/bin/env bash
# Runs the agent on this machine with an embedded default configuration and serves /metrics.
#
#   scripts/demo.sh [--port N] [--gpus N] [--check]
#
# Without an NVIDIA driver, the agent loads the fake libnvidia-ml.so.1 from tests/fake-nvml with
# several simulated GPUs whose readings move over time, and (when dockerd can run here) starts a private
# dockerd with a few Vast-style C.<id> containers assigned to those GPUs, so the GPU ↔ instance mapping
# shows. With a driver, it reads the real GPUs and the host's Docker. Either way a Vast API emulator
# (tests/VastEmulator) plays console.vast.ai, so the machine and account metrics show too.
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

ensure_apt_packages gcc libc6-dev zlib1g-dev curl ca-certificates
ensure_dotnet

demo_dir="$(mktemp -d /tmp/vha-demo.XXXXXX)"
nvml_library="libnvidia-ml.so.1"
docker_endpoint=""
docker_enabled=true
dockerd_pid=""
simulated=0
if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1 ' && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    log "NVIDIA driver found: reading the real GPUs"
else
    log "no NVIDIA driver: simulating $gpus GPUs with the fake NVML library"
    build_fake_nvml
    nvml_library="$REPO_ROOT/tests/fake-nvml/build/libnvidia-ml.so.1"
    export FAKE_NVML_GPUS="$gpus" FAKE_NVML_ANIMATE=1 FAKE_NVML_STATE="$demo_dir/fake-nvml.state"
    printf 'gpus=%s\n' "$gpus" >"$FAKE_NVML_STATE"
    simulated=1
fi

docker_cli() { docker -H "$docker_endpoint" "$@"; }

# start_private_docker: a private dockerd (own socket and data root) with Vast-style instance containers.
start_private_docker() {
    [ "$(id -u)" -eq 0 ] || { log "not root: no private dockerd (containers are not simulated)"; return 1; }
    ( ensure_apt_packages docker.io busybox-static ) || { log "docker.io/busybox-static not installable: no containers"; return 1; }
    local dir="$demo_dir/docker"
    mkdir -p "$dir/rootfs/bin"
    docker_endpoint="unix://$dir/docker.sock"
    dockerd --iptables=false --ip6tables=false --bridge=none -H "$docker_endpoint" \
        --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" >"$dir/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 100); do
        docker_cli version >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || { log "dockerd cannot run here (see $dir/dockerd.log): no containers"; return 1; }
        sleep 0.1
    done
    docker_cli version >/dev/null 2>&1 || return 1
    cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
    for applet in sh sleep; do ln -sf busybox "$dir/rootfs/bin/$applet"; done
    tar -C "$dir/rootfs" -c . | docker_cli import - tiny:latest >/dev/null
    docker_cli run -d --name C.31001 --memory 2g --cpus 1 -e NVIDIA_VISIBLE_DEVICES=0,1 tiny:latest sleep infinity >/dev/null
    docker_cli run -d --name C.31002 --memory 1g --cpus 0.5 -e "NVIDIA_VISIBLE_DEVICES=GPU-00000000-fa4e-4000-8000-000000000002" tiny:latest sleep infinity >/dev/null
    docker_cli run -d --name vast-default-job tiny:latest sleep infinity >/dev/null
    # Their "CUDA processes": the fake NVML reports the containers' init PIDs on their GPUs.
    local p1 p2
    p1="$(docker_cli inspect -f '{{.State.Pid}}' C.31001)"
    p2="$(docker_cli inspect -f '{{.State.Pid}}' C.31002)"
    printf 'gpus=%s\ngpu.0.processes=%s:8589934592\ngpu.0.mem_used=9663676416\ngpu.1.processes=%s:6442450944\ngpu.1.mem_used=7516192768\ngpu.2.processes=%s:12884901888\ngpu.2.mem_used=13958643712\n' \
        "$gpus" "$p1" "$p1" "$p2" >"$FAKE_NVML_STATE"
    log "private dockerd with instances C.31001 (GPUs 0,1), C.31002 (GPU 2) and a host container"
}

if [ "$simulated" -eq 1 ] && [ "$gpus" -ge 3 ]; then
    start_private_docker || { docker_enabled=false; [ -n "$dockerd_pid" ] && kill "$dockerd_pid" 2>/dev/null; dockerd_pid=""; }
fi

log "building the agent and the Vast API emulator"
dotnet build agent/VastHostAgent.csproj -c Release -nologo -v quiet -o "$demo_dir/bin" >"$demo_dir/build.log" 2>&1 || {
    cat "$demo_dir/build.log" >&2
    die "build failed"
}
dotnet build tests/VastEmulator/VastEmulator.csproj -c Release -nologo -v quiet -o "$demo_dir/emulator" >"$demo_dir/build-emulator.log" 2>&1 || {
    cat "$demo_dir/build-emulator.log" >&2
    die "emulator build failed"
}

# The Vast API emulator (tests/VastEmulator) stands in for console.vast.ai: a demo account whose machine
# "rig-01" is listed with two rentals, in a market of 2000 offers. The agent reads it with a demo key.
emulator_port="$((port + 1000))"
# With simulated GPUs the emulator's machine has as many (at least 3, for its two seeded contracts), so the
# GPU-count truth in status agrees with Vast; on a real rig Vast's count may differ, and status says so.
emulator_gpus=8
if [ "$simulated" -eq 1 ] && [ "$gpus" -ge 3 ] && [ "$gpus" -le 16 ]; then
    emulator_gpus="$gpus"
fi
"$demo_dir/emulator/VastEmulator" --port "$emulator_port" --num-gpus "$emulator_gpus" --seed-rentals >"$demo_dir/emulator.log" 2>&1 &
emulator_pid=$!
api_key="vastemu-demo-key-0123456789abcdef0123456789abcdef"
(umask 077 && printf '%s\n' "$api_key" >"$demo_dir/vast-api-key")
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$emulator_port/_emulator/" >/dev/null 2>&1 && break
    kill -0 "$emulator_pid" 2>/dev/null || die "the Vast API emulator exited (see $demo_dir/emulator.log)"
    sleep 0.1
done

cat >"$demo_dir/agent.json" <<EOF
{
  "agent": { "sampleInterval": "00:00:05", "stateDirectory": "$demo_dir/state" },
  "metrics": { "listenAddress": "127.0.0.1:$port" },
  "gpu": { "nvmlLibrary": "$nvml_library" },
  "docker": { "enabled": $docker_enabled, "endpoint": "$docker_endpoint" },
  "vast": {
    "enabled": true,
    "baseUrl": "http://127.0.0.1:$emulator_port",
    "apiKeyFile": "$demo_dir/vast-api-key",
    "hostname": "rig-01"
  },
  "management": {
    "enabled": true,
    "dryRun": true,
    "pricing": { "strategy": "market", "floor": 0.25, "ceiling": 0.60, "market": { "percentile": 50 } },
    "minBid": { "mode": "powerCost", "powerCostFactor": 1.5 }
  },
  "economics": {
    "enabled": true,
    "pricePerKwh": 0.12,
    "schedule": [ { "days": "mon-fri", "from": "17:00", "to": "21:00", "pricePerKwh": 0.28 } ],
    "timeZone": "UTC",
    "overheadWatts": 150,
    "powerUsageEffectiveness": 1.05
  }
}
EOF

"$demo_dir/bin/vast-host-agent" run --config "$demo_dir/agent.json" &
agent_pid=$!
cleanup() {
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    if [ -n "$dockerd_pid" ]; then
        docker_cli rm -f C.31001 C.31002 C.31003 vast-default-job >/dev/null 2>&1 || true
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
    fi
    rm -rf "$demo_dir" 2>/dev/null || true
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
if [ -n "$dockerd_pid" ]; then
    for _ in $(seq 1 100); do
        curl -fsS "$url/metrics" -o "$demo_dir/metrics.txt" 2>/dev/null && grep -q '^vasthost_container_gpu_memory_used_bytes' "$demo_dir/metrics.txt" && break
        sleep 0.1
    done
    echo
    echo "Instances on GPUs (vasthost_gpu_assignment):"
    grep '^vasthost_gpu_assignment' "$demo_dir/metrics.txt" | sed 's/^/  /'
    echo
    "$demo_dir/bin/vast-host-agent" status --config "$demo_dir/agent.json" | sed 's/^/  /'

    # A short rental: C.31003 lives 2 s on GPU 3; the ledger records it from Docker's events.
    echo
    echo "\$ docker run --name C.31003 -e NVIDIA_VISIBLE_DEVICES=3 tiny:latest sleep 2   (a 2-second rental)"
    docker_cli run --name C.31003 -e NVIDIA_VISIBLE_DEVICES=3 tiny:latest sleep 2 >/dev/null
    for _ in $(seq 1 100); do
        "$demo_dir/bin/vast-host-agent" rentals --json --config "$demo_dir/agent.json" 2>/dev/null \
            | grep -oE '\{[^{}]*"instanceId":31003[^{}]*\}' | grep -q '"stoppedAt"' && break
        sleep 0.1
    done
    echo "\$ vast-host-agent rentals"
    "$demo_dir/bin/vast-host-agent" rentals --config "$demo_dir/agent.json" | sed 's/^/  /'
    "$demo_dir/bin/vast-host-agent" rentals --json --config "$demo_dir/agent.json" | grep -q '"instanceId":31003' \
        || die "the rental ledger did not record C.31003"
fi
for _ in $(seq 1 100); do
    curl -fsS "$url/metrics" -o "$demo_dir/metrics.txt" 2>/dev/null && grep -q '^vasthost_vast_up 1' "$demo_dir/metrics.txt" && break
    sleep 0.1
done
echo
echo "The machine on Vast (from the API emulator at http://127.0.0.1:$emulator_port):"
"$demo_dir/bin/vast-host-agent" machine --config "$demo_dir/agent.json" | sed 's/^/  /'
grep -E '^vasthost_vast_(up|machine_listed|listing_gpu_price_dollars_per_hour|machine_gpu_occupancy)' "$demo_dir/metrics.txt" | sed 's/^/  /'
grep -q '^vasthost_vast_up 1' "$demo_dir/metrics.txt" || die "the agent did not read the machine from the Vast API emulator"
for _ in $(seq 1 100); do
    curl -fsS "$url/metrics" -o "$demo_dir/metrics.txt" 2>/dev/null && grep -q '^vasthost_economics_margin_dollars_per_day' "$demo_dir/metrics.txt" && break
    sleep 0.1
done
echo
echo "What the rig earns after electricity (economics: 0.12 \$/kWh, 0.28 \$/kWh weekdays 17-21 UTC, 150 W overhead):"
"$demo_dir/bin/vast-host-agent" status --config "$demo_dir/agent.json" | grep -E '^(Power|Revenue):' | sed 's/^/  /'
grep -E '^vasthost_economics_(power_cost_dollars_per_(hour|day)|revenue_dollars_per_day|margin_dollars_per_(day|gpu_hour)|break_even_dollars_per_gpu_hour)' "$demo_dir/metrics.txt" | sed 's/^/  /'
grep -q '^vasthost_economics_margin_dollars_per_day' "$demo_dir/metrics.txt" || die "the agent did not work out the rig's margin"
echo
echo "Pricing, in dry-run (vast-host-agent plan: what the agent would change on Vast, and why):"
"$demo_dir/bin/vast-host-agent" plan --config "$demo_dir/agent.json" | sed 's/^/  /'

# Maintenance windows against the emulator's machine, whose two contracts run for another 30 days:
# 1. with the default conflictPolicy "defer", a window 3 h from now is moved past the contracts;
# 2. with "proceed" (here as an environment override), the offer end date is clamped to the window's
#    start and the renters are notified on Vast (dnotify); cancelling it calls cancel_maint.
# Each step is one live reconcile (apply --once --no-dry-run) while the daemon itself stays in dry-run.
agent_cli() { "$demo_dir/bin/vast-host-agent" "$@" --config "$demo_dir/agent.json" 2>/dev/null; }
window_start="$(date -u -d '+3 hours' +%Y-%m-%dT%H:00:00Z)"
echo
echo "\$ vast-host-agent maint schedule --at $window_start --duration 2h --category gpu --id gpu-swap"
agent_cli maint schedule --at "$window_start" --duration 2h --category gpu --id gpu-swap | sed 's/^/  /'
echo "\$ vast-host-agent apply --once --no-dry-run"
agent_cli apply --once --no-dry-run | grep -E '^(APPLY|Maintenance|  *applied)' | sed 's/^/  /'
echo "\$ vast-host-agent maint list"
agent_cli maint list | sed 's/^/  /'
echo "\$ vast-host-agent maint cancel gpu-swap && vast-host-agent apply --once --no-dry-run"
agent_cli maint cancel gpu-swap | sed 's/^/  /'
agent_cli apply --once --no-dry-run | grep -E '^(Maintenance|  *applied)' | sed 's/^/  /'
echo
echo "\$ vast-host-agent maint schedule --at $window_start --duration 2h --category gpu --id gpu-swap-2"
agent_cli maint schedule --at "$window_start" --duration 2h --category gpu --id gpu-swap-2 | head -1 | sed 's/^/  /'
echo "\$ VASTHOST_MAINTENANCE__CONFLICTPOLICY=proceed vast-host-agent apply --once --no-dry-run"
VASTHOST_MAINTENANCE__CONFLICTPOLICY=proceed agent_cli apply --once --no-dry-run | grep -E '^(APPLY|Maintenance|end date|  *applied)' | sed 's/^/  /'
echo "\$ VASTHOST_MAINTENANCE__CONFLICTPOLICY=proceed vast-host-agent apply --once --no-dry-run   (the next reconcile)"
VASTHOST_MAINTENANCE__CONFLICTPOLICY=proceed agent_cli apply --once --no-dry-run | grep -E '^(Maintenance|  *applied)' | sed 's/^/  /'
echo "\$ vast-host-agent machine | grep Maintenance"
agent_cli machine | grep -E '^Maintenance' | sed 's/^/  /'
echo "\$ vast-host-agent maint list"
agent_cli maint list | sed 's/^/  /'
echo "\$ vast-host-agent maint cancel gpu-swap-2 && vast-host-agent apply --once --no-dry-run"
agent_cli maint cancel gpu-swap-2 | sed 's/^/  /'
agent_cli apply --once --no-dry-run | grep -E '^(Maintenance|end date|  *applied)' | sed 's/^/  /'
agent_cli machine | grep -E '^Maintenance' | sed 's/^/  /'

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
