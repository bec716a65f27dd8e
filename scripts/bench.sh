#!/usr/bin/env bash
# Measures the agent's footprint and scrape speed next to Prometheus' node_exporter, on this machine, in
# one run, and writes the figures to docs/performance.md.
#
#   scripts/bench.sh [--quick] [--micro] [--binary PATH] [--out FILE]
#
# Starts the NativeAOT agent with 8 simulated GPUs (fake NVML), a private dockerd with 64 running C.<id>
# containers assigned to them and the Vast API emulator (10,000 market offers), plus prometheus-node-exporter
# (Debian) on another loopback port. For both: steady and peak RSS, CPU over 60 s at the default sampling
# interval (both scraped every 15 s, as Prometheus would), scrape latency p50/p99 with 1 and 50 concurrent
# clients for 10 s (wrk), response size. Then the agent alone: hot-path figures, API calls per hour in
# steady state, and how cost grows with 1/8/16 GPUs and 0/64/256 containers.
#   --quick   shorter windows (for trying changes; the figures are noisier)
#   --micro   also run the BenchmarkDotNet micro-benchmarks (short job)
# Needs root (a private dockerd). Run it after scripts/test.sh; it builds what it needs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

quick=0
micro=0
binary=""
out="$REPO_ROOT/docs/performance.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --micro) micro=1; shift ;;
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: the benchmark starts a private dockerd"

warmup=30 cpu_window=60 wrk_seconds=10 matrix_warmup=15 matrix_window=30 matrix_wrk=5
if [ "$quick" -eq 1 ]; then
    warmup=10 cpu_window=20 wrk_seconds=3 matrix_warmup=8 matrix_window=10 matrix_wrk=2
fi

ensure_apt_packages gcc libc6-dev zlib1g-dev curl ca-certificates docker.io busybox-static wrk prometheus-node-exporter
ensure_dotnet

work="$(mktemp -d /tmp/vha-bench-XXXXXX)"
pids=()
dockerd_pid=""
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$dockerd_pid" ]; then
        docker -H "unix://$work/docker.sock" ps -aq 2>/dev/null | xargs -r docker -H "unix://$work/docker.sock" rm -f >/dev/null 2>&1 || true
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- build ----------------------------------------------------------------------------------------
log "building the fake NVML library, the agent (NativeAOT), the Vast emulator and the benchmarks"
build_fake_nvml
if [ -z "$binary" ]; then
    publish_agent "$REPO_ROOT/artifacts/publish"
    binary="$REPO_ROOT/artifacts/publish/vast-host-agent"
fi
dotnet build tests/VastEmulator/VastEmulator.csproj -c Release -nologo -v quiet -o "$work/emulator" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "emulator build failed"; }
dotnet build tests/VastHostAgent.Benchmarks/VastHostAgent.Benchmarks.csproj -c Release -nologo -v quiet >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "benchmarks build failed"; }
nvml="$REPO_ROOT/tests/fake-nvml/build/libnvidia-ml.so.1"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
wait_http() {
    local url="$1"
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$url did not answer"
}

# wrk_latency URL CONNECTIONS SECONDS -> "p50_ms p99_ms requests_per_s"
wrk_latency() {
    local url="$1" connections="$2" seconds="$3" threads=1 output
    [ "$connections" -gt 1 ] && threads=2
    output="$(wrk -t "$threads" -c "$connections" -d "${seconds}s" --latency "$url" 2>&1)"
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
        END { printf "%.2f %.2f %.0f\n", p50, p99, rps }' <<<"$output"
}

# ---- private dockerd with C.<id> containers ------------------------------------------------------------
log "starting a private dockerd"
mkdir -p "$work/rootfs/bin"
dockerd --iptables=false --ip6tables=false --bridge=none -H "unix://$work/docker.sock" \
    --data-root "$work/docker-data" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
dk() { docker -H "unix://$work/docker.sock" "$@"; }
for _ in $(seq 1 200); do dk version >/dev/null 2>&1 && break; sleep 0.1; done
dk version >/dev/null 2>&1 || die "dockerd did not start (see $work/dockerd.log)"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh sleep; do ln -sf busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -c . | dk import - tiny:latest >/dev/null
containers=0
# ensure_containers N: C.40000 ... up to N running containers, instance i on GPU i % 8.
ensure_containers() {
    [ "$containers" -lt "$1" ] || return 0
    # shellcheck disable=SC2016 # expanded by the inner sh, once per container
    seq "$containers" "$(($1 - 1))" | xargs -P 4 -I{} sh -c \
        'docker -H "$0" run -d --name "C.$((40000 + {}))" --memory 512m --cpus 1 -e "NVIDIA_VISIBLE_DEVICES=$(({} % 8))" tiny:latest sleep 1000000 >/dev/null' \
        "unix://$work/docker.sock"
    containers="$1"
}

# ---- the Vast API emulator -------------------------------------------------------------------------------
emulator_port="$(free_port)"
"$work/emulator/VastEmulator" --port "$emulator_port" --offers 10000 --seed-rentals >"$work/emulator.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$emulator_port/_emulator/"
(umask 077 && printf 'vastemu-demo-key-0123456789abcdef0123456789abcdef\n' >"$work/vast-api-key")

# start_agent GPUS VAST(true|false) -> sets agent_pid, agent_port
start_agent() {
    local gpus="$1" vast="$2"
    agent_port="$(free_port)"
    mkdir -p "$work/state-$agent_port"
    cat >"$work/agent-$agent_port.json" <<EOF
{
  "agent": { "stateDirectory": "$work/state-$agent_port" },
  "metrics": { "listenAddress": "127.0.0.1:$agent_port" },
  "gpu": { "nvmlLibrary": "$nvml" },
  "host": { "dockerDataRoot": "$work/docker-data" },
  "docker": { "enabled": true, "endpoint": "unix://$work/docker.sock" },
  "vast": { "enabled": $vast, "baseUrl": "http://127.0.0.1:$emulator_port", "apiKeyFile": "$work/vast-api-key", "hostname": "rig-01" },
  "management": { "enabled": $vast, "dryRun": false }
}
EOF
    FAKE_NVML_GPUS="$gpus" FAKE_NVML_ANIMATE=1 "$binary" run --config "$work/agent-$agent_port.json" >"$work/agent-$agent_port.log" 2>&1 &
    agent_pid=$!
    pids+=("$agent_pid")
    wait_http "http://127.0.0.1:$agent_port/metrics"
}

# cpu_percent PID SECONDS [URL...]: CPU of PID over SECONDS, % of one core, scraping the URLs every 15 s.
cpu_percent() {
    local pid="$1" seconds="$2" start end elapsed=0
    shift 2
    start="$(cpu_ticks "$pid")"
    while [ "$elapsed" -lt "$seconds" ]; do
        local u
        for u in "$@"; do curl -fsS -o /dev/null "$u"; done
        local step=$((seconds - elapsed < 15 ? seconds - elapsed : 15))
        sleep "$step"
        elapsed=$((elapsed + step))
    done
    end="$(cpu_ticks "$pid")"
    awk -v t=$((end - start)) -v hz="$clk_tck" -v s="$seconds" 'BEGIN { printf "%.2f", 100 * t / hz / s }'
}

metric() { curl -fsS "$1" | awk -v m="$2" '$1 == m && !found { print $2; found = 1 }'; }

# ---- 1. side by side with node_exporter: 8 GPUs, 64 containers ----------------------------------------------
log "starting 64 containers"
ensure_containers 64
start_agent 8 true
node_port="$(free_port)"
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" >"$work/node-exporter.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
wait_http "http://127.0.0.1:$node_port/metrics"
agent_url="http://127.0.0.1:$agent_port/metrics"
node_url="http://127.0.0.1:$node_port/metrics"
node_version="$(prometheus-node-exporter --version 2>&1 | head -n 1 | awk '{ print $3 }')"

log "warming up for ${warmup}s"
sleep "$warmup"
# The first resync listed and inspected all 64 containers (the next, a minute later, only re-lists).
docker_resync="$(metric "http://127.0.0.1:$agent_port/metrics" 'vasthost_collector_duration_seconds{collector="docker"}')"
requests_before="$(curl -fsS "http://127.0.0.1:$emulator_port/_emulator/requests" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
log "CPU over ${cpu_window}s (both scraped every 15 s)"
cpu_agent_file="$work/cpu-agent"
cpu_percent "$agent_pid" "$cpu_window" "$agent_url" >"$cpu_agent_file" &
cpu_job=$!
cpu_node="$(cpu_percent "$node_pid" "$cpu_window" "$node_url")"
wait "$cpu_job"
cpu_agent="$(cat "$cpu_agent_file")"
requests_json="$(curl -fsS "http://127.0.0.1:$emulator_port/_emulator/requests")"
window_calls="$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(len(r) - int(sys.argv[2]))' "$requests_json" "$requests_before")"
window_mutations="$(python3 -c 'import json,sys; r=json.loads(sys.argv[1])[int(sys.argv[2]):]; print(sum(1 for x in r if x.get("mutation")))' "$requests_json" "$requests_before")"
rss_agent="$(status_kb "$agent_pid" VmRSS)"
rss_node="$(status_kb "$node_pid" VmRSS)"
size_agent="$(curl -fsS "$agent_url" | wc -c)"
size_node="$(curl -fsS "$node_url" | wc -c)"

log "scrape latency (wrk, ${wrk_seconds}s each)"
read -r a1_p50 a1_p99 _ <<<"$(wrk_latency "$agent_url" 1 "$wrk_seconds")"
read -r n1_p50 n1_p99 _ <<<"$(wrk_latency "$node_url" 1 "$wrk_seconds")"
read -r a50_p50 a50_p99 a50_rps <<<"$(wrk_latency "$agent_url" 50 "$wrk_seconds")"
read -r n50_p50 n50_p99 n50_rps <<<"$(wrk_latency "$node_url" 50 "$wrk_seconds")"
hwm_agent="$(status_kb "$agent_pid" VmHWM)"
hwm_node="$(status_kb "$node_pid" VmHWM)"

gpu_cycle="$(metric "$agent_url" 'vasthost_collector_duration_seconds{collector="gpu"}')"
containers_cycle="$(metric "$agent_url" 'vasthost_collector_duration_seconds{collector="containers"}')"
kill "$agent_pid" "$node_pid" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ms_of() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# ---- 2. hot paths in-process (JIT, fake library) and the steady-state API budget -------------------------
log "hot paths (tests/VastHostAgent.Benchmarks --figures)"
figures="$(VASTHOST_FAKE_NVML="$nvml" dotnet tests/VastHostAgent.Benchmarks/bin/Release/net10.0/VastHostAgent.Benchmarks.dll --figures)"
log "API calls per hour in steady state (the emulator's request log over 2 simulated hours)"
steady="$(dotnet test tests/VastHostAgent.Tests/VastHostAgent.Tests.csproj -c Release --no-build -nologo \
    --filter "FullyQualifiedName~SteadyStateTests" --logger "console;verbosity=detailed" 2>&1 | grep -E 'calls/hour' | sed 's/^ *//' || true)"
[ -n "$steady" ] || steady="(not measured: run scripts/test.sh first, it builds the test project in Release)"

# ---- 3. how cost grows ---------------------------------------------------------------------------------
matrix=""
for count in 64 256 0; do
    if [ "$containers" -gt "$count" ]; then
        dk ps -aq | xargs -r -P 4 -n 16 docker -H "unix://$work/docker.sock" rm -f >/dev/null
        containers=0
    fi
    log "scaling: $count containers"
    ensure_containers "$count"
    for gpus in 1 8 16; do
        start_agent "$gpus" false
        url="http://127.0.0.1:$agent_port/metrics"
        sleep "$matrix_warmup"
        cpu="$(cpu_percent "$agent_pid" "$matrix_window" "$url")"
        rss="$(status_kb "$agent_pid" VmRSS)"
        size="$(curl -fsS "$url" | wc -c)"
        read -r _ p99 _ <<<"$(wrk_latency "$url" 50 "$matrix_wrk")"
        cycle="$(metric "$url" 'vasthost_collector_duration_seconds{collector="gpu"}')"
        hwm="$(status_kb "$agent_pid" VmHWM)"
        matrix+="| $gpus | $count | $(mb "$rss") | $(mb "$hwm") | $cpu | $p99 | $size | $(ms_of "${cycle:-0}") |"$'\n'
        kill "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    done
done

micro_text=""
if [ "$micro" -eq 1 ]; then
    log "BenchmarkDotNet micro-benchmarks (short job)"
    micro_text="$(cd "$work" && VASTHOST_FAKE_NVML="$nvml" dotnet "$REPO_ROOT/tests/VastHostAgent.Benchmarks/bin/Release/net10.0/VastHostAgent.Benchmarks.dll" \
        --filter '*' --job short --inProcess 2>&1 | sed -n '/^| *Method/,/^$/p')"
fi

# ---- report ----------------------------------------------------------------------------------------------
cpu_model="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
mem_total="$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
agent_version="$("$binary" --version | head -n 1)"
verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; then echo "met"; else echo "**not met**"; fi; }
calls_per_hour="$(grep -oE 'total +[0-9.]+' <<<"$steady" | awk '{ print $2 }' || true)"
nvml_figure="$(awk '$1 == "nvml_sample_8_gpus" { print $2 / 1000 }' <<<"$figures")"
pricing_figure="$(awk '$1 == "pricing_decision_10000_offers" { print $2 / 1000 }' <<<"$figures")"

report="$(cat <<EOF
# Performance

Measured by \`scripts/bench.sh\`$([ "$quick" -eq 1 ] && echo " --quick (short windows: noisier)") on $(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC.
Machine: $cpu_model, $(nproc) cores, $mem_total, $(uname -r). Agent: $agent_version (NativeAOT, $(du -h "$binary" | cut -f1)).
node_exporter: prometheus-node-exporter $node_version (Debian), default collectors.

Both processes ran at the same time on this machine: the agent with 8 simulated GPUs (fake NVML), a private
dockerd with 64 running \`C.<id>\` containers on them, the Vast API emulator (10,000 offers) with listing
management on (in sync), its default 5 s sampling; node_exporter on another loopback port. Warm-up ${warmup} s; CPU
over ${cpu_window} s with both scraped every 15 s (from \`/proc/<pid>/stat\`, % of one core); scrape latency with
\`wrk\` for ${wrk_seconds} s per run; sizes uncompressed.

| | vast-host-agent | node_exporter | agent / node_exporter |
|---|---:|---:|---:|
| steady RSS (MB) | $(mb "$rss_agent") | $(mb "$rss_node") | $(ratio "$rss_agent" "$rss_node") |
| peak RSS, VmHWM after the load runs (MB) | $(mb "$hwm_agent") | $(mb "$hwm_node") | $(ratio "$hwm_agent" "$hwm_node") |
| CPU, % of one core | $cpu_agent | $cpu_node | $(ratio "$cpu_agent" "$cpu_node") |
| scrape p50 / p99, 1 client (ms) | $a1_p50 / $a1_p99 | $n1_p50 / $n1_p99 | $(ratio "$a1_p99" "$n1_p99") (p99) |
| scrape p50 / p99, 50 clients (ms) | $a50_p50 / $a50_p99 | $n50_p50 / $n50_p99 | $(ratio "$a50_p99" "$n50_p99") (p99) |
| scrapes per second, 50 clients | $a50_rps | $n50_rps | $(ratio "$a50_rps" "$n50_rps") |
| response size (bytes) | $size_agent | $size_node | $(ratio "$size_agent" "$size_node") |

## Agent only

| figure | value |
|---|---:|
| one 8-GPU sample cycle, NativeAOT agent (its \`vasthost_collector_duration_seconds{collector="gpu"}\`) | $(ms_of "${gpu_cycle:-0}") ms |
| one 8-GPU sample cycle, in-process through the fake library (median) | ${nvml_figure} ms |
| container stats of 64 containers (cgroup files, collector \`containers\`) | $(ms_of "${containers_cycle:-0}") ms |
| Docker inventory refresh, 64 containers (collector \`docker\`: list + inspect of all, at start) | $(ms_of "${docker_resync:-0}") ms |
| one pricing decision over a 10,000-offer market (median) | ${pricing_figure} ms |
| Vast API calls in the ${cpu_window} s window of the real run (mutations) | $window_calls ($window_mutations) |
| Vast API calls per hour in steady state (2 simulated hours, default intervals) | ${calls_per_hour:-n/a} |

Hot paths, in-process (JIT), median of many runs (\`tests/VastHostAgent.Benchmarks --figures\`):

\`\`\`
$figures
\`\`\`

Steady-state API calls by endpoint (\`SteadyStateTests\`: the agent's own loops on a simulated clock against
the emulator; no mutation once in sync):

\`\`\`
$steady
\`\`\`

## How cost grows

Agent alone (Vast off), warm-up ${matrix_warmup} s, CPU over ${matrix_window} s scraped every 15 s, p99 with 50 clients for ${matrix_wrk} s.

| GPUs | containers | RSS (MB) | peak RSS (MB) | CPU % | scrape p99 (ms) | response (bytes) | GPU sample (ms) |
|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s' "$matrix" | sort -t'|' -k3,3n -k2,2n)
## Targets

| target | figure | |
|---|---|---|
| steady RSS ≤ 1.5 × node_exporter's | $(ratio "$rss_agent" "$rss_node") × | $(verdict "$(ratio "$rss_agent" "$rss_node")" 1.5) |
| steady RSS ≤ 35 MB | $(mb "$rss_agent") MB | $(verdict "$(mb "$rss_agent")" 35) |
| CPU ≤ 0.5 % of one core (5 s sampling, 8 GPUs, 64 containers) | $cpu_agent % | $(verdict "$cpu_agent" 0.5) |
| scrape p99 ≤ node_exporter's at 50 clients | $a50_p99 ms vs $n50_p99 ms | $(verdict "$a50_p99" "$n50_p99") |
| 8-GPU sample cycle ≤ 1 ms (fake library) | $(ms_of "${gpu_cycle:-0}") ms (agent), ${nvml_figure} ms (in-process) | $(verdict "$(ms_of "${gpu_cycle:-0}")" 1) |
| pricing decision over 10,000 offers ≤ 5 ms | ${pricing_figure} ms | $(verdict "${pricing_figure:-99}" 5) |
| ≤ 30 Vast API calls per hour in steady state | ${calls_per_hour:-n/a} | $(verdict "${calls_per_hour:-999}" 30) |
| zero mutations when in sync | $window_mutations in the window; none in the steady-state run | $(verdict "$window_mutations" 0) |

A scrape never waits on NVML, Docker or the Vast API: it renders the last snapshot (cached for up to 1 s
per snapshot), which the samplers replace in the background (tested in \`GpuEndToEndTests\`).
$( [ -n "$micro_text" ] && printf '\n## BenchmarkDotNet (short job, in-process)\n\n%s\n' "$micro_text")
EOF
)"
# The analysis that goes with the figures (what was tried, what blocks a target) is kept by hand.
if [ -f "$REPO_ROOT/docs/performance-notes.md" ]; then
    report+=$'\n\n'"$(cat "$REPO_ROOT/docs/performance-notes.md")"
fi
printf '%s\n' "$report" >"$out"
printf '%s\n' "$report"
log "written to $out"
