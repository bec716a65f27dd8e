#!/usr/bin/env bash
# Measures the agent's footprint and scrape speed next to Prometheus' node_exporter, on this machine, in
# one run, and writes the figures to docs/performance.md.
#
#   scripts/bench.sh [--quick] [--micro] [--controller-only] [--binary PATH] [--out FILE]
#
# Starts the NativeAOT agent with 8 simulated GPUs (fake NVML), a private dockerd with 64 running C.<id>
# containers assigned to them and the Vast API emulator (10,000 market offers), plus prometheus-node-exporter
# (Debian) on another loopback port. For both: steady and peak RSS, CPU over 60 s at the default sampling
# interval (both scraped every 15 s, as Prometheus would), scrape latency p50/p99 with 1 and 50 concurrent
# clients for 10 s (wrk), response size. Then the agent alone: hot-path figures, API calls per hour in
# steady state, and how cost grows with 1/8/16 GPUs and 0/64/256 containers.
# Last, the fleet controller (agent.role controller) over emulated accounts of 1, 100 and 1,000 machines
# (four GPU models, sizes 8/4/1) with its intervals divided by 6: calls per hour at default intervals by
# endpoint, RSS, CPU per reconcile cycle; and the rig role's RSS next to standalone (8 fake GPUs).
#   --quick            shorter windows (for trying changes; the figures are noisier)
#   --micro            also run the BenchmarkDotNet micro-benchmarks (short job)
#   --controller-only  only the fleet controller part (no root, no dockerd): replaces the section
#                      "Fleet controller (issue 14)" of the output file in place
# Needs root (a private dockerd) unless --controller-only. Run it after scripts/test.sh; it builds what it needs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

quick=0
micro=0
controller_only=0
binary=""
out="$REPO_ROOT/docs/performance.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --micro) micro=1; shift ;;
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --controller-only) controller_only=1; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ "$controller_only" -eq 1 ] || [ "$(id -u)" -eq 0 ] || die "run as root: the benchmark starts a private dockerd"

warmup=30 cpu_window=60 wrk_seconds=10 matrix_warmup=15 matrix_window=30 matrix_wrk=5 fleet_window=600
if [ "$quick" -eq 1 ]; then
    warmup=10 cpu_window=20 wrk_seconds=3 matrix_warmup=8 matrix_window=10 matrix_wrk=2 fleet_window=240
fi

if [ "$controller_only" -eq 1 ]; then
    ensure_apt_packages gcc libc6-dev zlib1g-dev curl ca-certificates python3
else
    ensure_apt_packages gcc libc6-dev zlib1g-dev curl ca-certificates python3 docker.io busybox-static wrk prometheus-node-exporter
fi
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
(umask 077 && printf 'vastemu-demo-key-0123456789abcdef0123456789abcdef\n' >"$work/vast-api-key")

# ---- build ----------------------------------------------------------------------------------------
log "building the fake NVML library, the agent (NativeAOT), the Vast emulator and the benchmarks"
build_fake_nvml
if [ -z "$binary" ]; then
    publish_agent "$REPO_ROOT/artifacts/publish"
    binary="$REPO_ROOT/artifacts/publish/vast-host-agent"
fi
dotnet build tests/VastEmulator/VastEmulator.csproj -c Release -nologo -v quiet -o "$work/emulator" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "emulator build failed"; }
if [ "$controller_only" -eq 0 ]; then
    dotnet build tests/VastHostAgent.Benchmarks/VastHostAgent.Benchmarks.csproj -c Release -nologo -v quiet >"$work/build.log" 2>&1 ||
        { cat "$work/build.log" >&2; die "benchmarks build failed"; }
fi
nvml="$REPO_ROOT/tests/fake-nvml/build/libnvidia-ml.so.1"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
thousands() { sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta' <<<"$1"; }
verdict() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; then echo "met"; else echo "**not met**"; fi; }
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

# ---- the fleet controller (issue 14) ------------------------------------------------------------------------
# One emulator per account size (--fleet N: four GPU models, sizes 8/4/1; 1,500 market offers) and one NativeAOT
# controller managing every machine of it (RTX 4090s priced from the market, the rest at the fixed price), all
# sizes at once. The controller's intervals are divided by fleet_speedup (reconcile and machines read every
# 50 s instead of 5 min, account every 5 min instead of 30, market every 10 min instead of 1 h), so one real
# minute is six minutes of a controller at default intervals: calls per hour at the default intervals = calls
# counted in the window × 3600 / (window × fleet_speedup). Per-endpoint spacing is scaled by 0.01 on both sides
# (vast.spacingScale, emulator --rate-limit-scale) so that 1,000 create_asks converge in a minute, not 33.
fleet_speedup=6
fleet_sizes=(1 100 1000)
declare -A fleet_emu fleet_port fleet_pid fleet_converged
fleet_section=""

fleet_requests() { curl -fsS "http://127.0.0.1:${fleet_emu[$1]}/_emulator/requests"; }
# fleet_decisions N: the controller's listing decisions so far (one per managed machine per reconcile cycle).
fleet_decisions() {
    curl -fsS "http://127.0.0.1:${fleet_port[$1]}/metrics" |
        awk 'index($1, "vasthost_management_decisions_total{kind=\"listing\"") == 1 { n += $2 } END { printf "%d\n", n }'
}

# start_fleet N: the emulator with an account of N machines and its controller.
start_fleet() {
    local n="$1" eport aport dir="$work/fleet-$1"
    eport="$(free_port)"
    "$work/emulator/VastEmulator" --port "$eport" --fleet "$n" --offers 1500 --rate-limit-scale 0.01 >"$work/fleet-emulator-$n.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$eport/_emulator/"
    fleet_emu[$n]="$eport"
    aport="$(free_port)"
    mkdir -p "$dir"
    cat >"$dir/agent.json" <<EOF
{
  "agent": { "role": "controller", "stateDirectory": "$dir" },
  "metrics": { "listenAddress": "127.0.0.1:$aport" },
  "gpu": { "enabled": false },
  "docker": { "enabled": false },
  "host": { "hwmon": false, "disk": false },
  "vast": { "enabled": true, "baseUrl": "http://127.0.0.1:$eport", "apiKeyFile": "$work/vast-api-key", "machineId": 0,
            "pollInterval": "00:00:50", "accountPollInterval": "00:05:00", "spacingScale": 0.01 },
  "management": { "enabled": true, "dryRun": false, "reconcileInterval": "00:00:50",
                  "listing": { "discountMax": 0.2 },
                  "pricing": { "market": { "refreshInterval": "00:10:00", "maxAge": "00:30:00" } } },
  "fleet": {
    "mutationBudgetPerHour": 5000,
    "lockDirectory": "$dir",
    "profiles": { "market": { "management": { "pricing": { "strategy": "market", "minChange": 0.5, "maxChangePerStep": 0.5,
                                                           "cooldown": "00:05:00", "market": { "minPeers": 3 } } } } },
    "machines": [ { "gpuModel": "RTX 4090", "profile": "market" }, { "gpuModel": "RTX 3090" },
                  { "gpuModel": "A100 SXM4" }, { "gpuModel": "H100 SXM" } ]
  }
}
EOF
    "$binary" run --config "$dir/agent.json" >"$dir/agent.log" 2>&1 &
    fleet_pid[$n]=$!
    fleet_port[$n]="$aport"
    pids+=("${fleet_pid[$n]}")
    wait_http "http://127.0.0.1:$aport/metrics"
}

# start_plain ROLE: the agent with 8 fake GPUs, Docker and Vast off, as ROLE (standalone or rig) -> plain_pid
start_plain() {
    local role="$1" port dir="$work/plain-$1" vast=""
    port="$(free_port)"
    mkdir -p "$dir"
    [ "$role" = rig ] || vast='"vast": { "enabled": false },'
    cat >"$dir/agent.json" <<EOF
{
  "agent": { "role": "$role", "stateDirectory": "$dir" },
  "metrics": { "listenAddress": "127.0.0.1:$port" },
  "gpu": { "nvmlLibrary": "$nvml" },
  $vast
  "docker": { "enabled": false }
}
EOF
    FAKE_NVML_GPUS=8 FAKE_NVML_ANIMATE=1 "$binary" run --config "$dir/agent.json" >"$dir/agent.log" 2>&1 &
    plain_pid=$!
    pids+=("$plain_pid")
    wait_http "http://127.0.0.1:$port/metrics"
}

fleet_bench() {
    local n
    log "fleet controller: accounts of ${fleet_sizes[*]} machines, intervals / $fleet_speedup"
    for n in "${fleet_sizes[@]}"; do start_fleet "$n"; done
    start_plain standalone
    local standalone_pid="$plain_pid"
    start_plain rig
    local rig_pid="$plain_pid"

    # Converged: every controller made changes and none for 70 s (more than a cycle, jitter included).
    declare -A last stable
    local start=$SECONDS all count
    for n in "${fleet_sizes[@]}"; do last[$n]=-1; stable[$n]=0; done
    while :; do
        all=1
        for n in "${fleet_sizes[@]}"; do
            kill -0 "${fleet_pid[$n]}" 2>/dev/null || { tail -n 30 "$work/fleet-$n/agent.log" >&2; die "the controller over $n machines exited"; }
            count="$(fleet_requests "$n" | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["mutation"] and r["applied"]))')"
            if [ "$count" -gt 0 ] && [ "$count" -eq "${last[$n]}" ]; then stable[$n]=$((stable[$n] + 10)); else stable[$n]=0; fi
            last[$n]="$count"
            [ "${stable[$n]}" -ge 70 ] || all=0
        done
        [ "$all" -eq 1 ] && break
        if [ $((SECONDS - start)) -ge 900 ]; then
            for n in "${fleet_sizes[@]}"; do tail -n 20 "$work/fleet-$n/agent.log" >&2; done
            die "the controllers did not converge in 15 min (changes so far: $(for n in "${fleet_sizes[@]}"; do printf '%s ' "$n:${last[$n]}"; done))"
        fi
        sleep 10
    done
    local converge_s=$((SECONDS - start))
    for n in "${fleet_sizes[@]}"; do fleet_converged[$n]="${last[$n]}"; done
    log "converged in ${converge_s}s ($(for n in "${fleet_sizes[@]}"; do printf '%s ' "$n:${fleet_converged[$n]}"; done)changes); steady window ${fleet_window}s"

    declare -A ticks_start decisions_start rss_start
    for n in "${fleet_sizes[@]}"; do
        curl -fsS -X DELETE -o /dev/null "http://127.0.0.1:${fleet_emu[$n]}/_emulator/requests"
        decisions_start[$n]="$(fleet_decisions "$n")"
        ticks_start[$n]="$(cpu_ticks "${fleet_pid[$n]}")"
        rss_start[$n]="$(status_kb "${fleet_pid[$n]}" VmRSS)"
    done
    # RSS of each controller every 60 s through the window (does it settle?)
    declare -A rss_series
    local waited=0 step
    while [ "$waited" -lt "$fleet_window" ]; do
        step=$((fleet_window - waited < 60 ? fleet_window - waited : 60))
        sleep "$step"
        waited=$((waited + step))
        for n in "${fleet_sizes[@]}"; do rss_series[$n]+="$(mb "$(status_kb "${fleet_pid[$n]}" VmRSS)") "; done
    done
    local series=""
    for n in "${fleet_sizes[@]}"; do series+="$(printf '%-16s' "$(thousands "$n") machine$([ "$n" -eq 1 ] || echo s):")$(mb "${rss_start[$n]}") ${rss_series[$n]}"$'\n'; done
    local rows="" endpoints="" targets="" ticks rss hwm summary calls cycles cpu_cycle http429 mutations
    for n in "${fleet_sizes[@]}"; do
        kill -0 "${fleet_pid[$n]}" 2>/dev/null || { tail -n 30 "$work/fleet-$n/agent.log" >&2; die "the controller over $n machines exited"; }
        ticks=$(($(cpu_ticks "${fleet_pid[$n]}") - ticks_start[$n]))
        cycles=$((($(fleet_decisions "$n") - decisions_start[$n]) / n))
        rss="$(status_kb "${fleet_pid[$n]}" VmRSS)"
        hwm="$(status_kb "${fleet_pid[$n]}" VmHWM)"
        # -> "calls_per_hour machine_reads 429s mutations" then "endpoint calls_per_hour" lines
        summary="$(fleet_requests "$n" | python3 -c '
import collections, json, sys
r = json.load(sys.stdin); scale = 3600 / (float(sys.argv[1]) * float(sys.argv[2]))
by = collections.Counter(x["endpoint"] for x in r)
print("%.1f %d %d %d" % (len(r) * scale, by["show_machines"], sum(1 for x in r if x["status"] == 429), sum(1 for x in r if x["mutation"])))
print(", ".join("%s %.1f" % (e, c * scale) for e, c in by.most_common()))' "$fleet_window" "$fleet_speedup")"
        read -r calls reads http429 mutations <<<"$(head -n 1 <<<"$summary")"
        endpoints="$(tail -n 1 <<<"$summary")"
        cpu_cycle="$(awk -v t="$ticks" -v hz="$clk_tck" -v c="$cycles" 'BEGIN { if (c > 0) printf "%.3f", t / hz / c; else print "n/a" }')"
        rows+="| $(thousands "$n") | ${fleet_converged[$n]} | $calls | $endpoints | $http429 | $mutations | $(mb "${rss_start[$n]}") → $(mb "$rss") | $(mb "$hwm") | $cycles ($reads) | $cpu_cycle |"$'\n'
        if [ "$n" -eq 1000 ]; then
            targets+="| ≤ 80 MB RSS at 1,000 machines | $(mb "$rss") MB (peak $(mb "$hwm") MB) | $(verdict "$(mb "$rss")" 80) |"$'\n'
            targets+="| ≤ 1 s CPU per cycle at 1,000 machines | $cpu_cycle s | $(verdict "$cpu_cycle" 1) |"$'\n'
        fi
        targets+="| ≤ 40 calls/hour in sync, $(thousands "$n") machine$([ "$n" -eq 1 ] || echo s) | $calls | $(verdict "$calls" 40) |"$'\n'
    done
    local rss_rig rss_standalone
    rss_rig="$(status_kb "$rig_pid" VmRSS)"
    rss_standalone="$(status_kb "$standalone_pid" VmRSS)"
    for n in "${fleet_sizes[@]}"; do kill "${fleet_pid[$n]}" 2>/dev/null || true; done
    kill "$rig_pid" "$standalone_pid" 2>/dev/null || true

    fleet_section="$(cat <<EOF
## Fleet controller (issue 14)

Measured by \`scripts/bench.sh$([ "$quick" -eq 1 ] && echo " --quick")$([ "$controller_only" -eq 1 ] && echo " --controller-only")\` on $(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC: the NativeAOT agent as
\`agent.role: controller\` managing every machine of an emulated account (\`VastEmulator --fleet N\`: four GPU
models, sizes 8/4/1 GPUs, 1,500 market offers; RTX 4090s priced from the market, the rest at the fixed price),
the three sizes at once on this machine, each against its own emulator. The controller's intervals are divided
by ${fleet_speedup}: reconcile and machines read every 50 s (default 5 min), account every 5 min (30 min), market
every 10 min (1 h), market-price cooldown 5 min (30 min). One real minute is thus ${fleet_speedup} minutes of a controller at the
default intervals, and **calls/hour are at the default intervals**: calls counted in the ${fleet_window} s window ×
3600 / (${fleet_window} s × ${fleet_speedup}). Per-endpoint spacing is scaled by 0.01 on both sides (\`vast.spacingScale\`,
emulator \`--rate-limit-scale 0.01\`) so that convergence (one \`create_asks\` per machine: \`listing.discountMax\`
0.2) takes ${converge_s} s, not ~33 min; in steady state calls are minutes apart and the spacing does not count.
The window starts once no controller has made a change for 70 s. A cycle is one reconcile of every machine
(counted from the controller's \`vasthost_management_decisions_total{kind="listing"}\`, one per machine per
cycle, read at the start and end of the window); machine reads are the \`GET /machines\` calls in the window
(the reconcile's, and the sampling loop's when the reconcile's read is older than \`vast.pollInterval\` − 5 s).
CPU per cycle = the controller's utime + stime over the window (\`/proc/<pid>/stat\`) ÷ cycles, market searches,
account reads and two scrapes of its /metrics included.

| machines | converged with (changes) | steady calls/hour | by endpoint (calls/hour) | 429s | mutations in steady state | RSS, window start → end (MB) | peak RSS (MB) | cycles in window (machine reads) | CPU per cycle (s) |
|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|
${rows}
Controller RSS (MB) at the start of the window and every 60 s after:

\`\`\`
${series}\`\`\`
$([ "$quick" -eq 1 ] && printf '\n(--quick: the %s s window is shorter than the 10 min market interval: market searches may be missing from the counts, and the account reads are 0 or 1 per interval.)\n' "$fleet_window")
Rig role next to standalone, same binary, 8 fake GPUs, Docker and Vast off, RSS after $((converge_s + fleet_window + 5)) s of running (the
whole fleet run): rig **$(mb "$rss_rig") MB**, standalone **$(mb "$rss_standalone") MB** (the rig role creates no Vast client,
reconcile or maintenance objects; the standalone figures with Docker and 64 containers are in the tables above).

| target | figure | |
|---|---|---|
${targets}
\`Fleet/FleetSteadyStateTests\` checks the same at real thresholds and default intervals on a simulated clock
(1,000 machines, until every machine is listed as configured plus 1 h, then 3 h of steady state; \`scripts/test.sh\`).
EOF
)"
}

if [ "$controller_only" -eq 1 ]; then
    fleet_bench
    # Replace the section in place (up to the next "## " heading), or add it before the notes.
    [ -f "$out" ] || : >"$out"
    python3 - "$out" "$fleet_section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2].rstrip("\n") + "\n"
text = open(path).read()
m = re.search(r"^## Fleet controller \(issue 14\)\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
if m:
    text = text[:m.start()] + section + ("\n" if m.end() < len(text) else "") + text[m.end():]
else:
    notes = re.search(r"^## Where the memory goes", text, flags=re.M)
    at = notes.start() if notes else len(text)
    text = text[:at] + section + "\n" + text[at:]
open(path, "w").write(text)
PY
    printf '%s\n' "$fleet_section"
    log "written to $out (section \"Fleet controller (issue 14)\")"
    exit 0
fi

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

fleet_bench

# ---- report ----------------------------------------------------------------------------------------------
cpu_model="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
mem_total="$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
agent_version="$("$binary" --version | head -n 1)"
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

$fleet_section
EOF
)"
# The analysis that goes with the figures (what was tried, what blocks a target) is kept by hand.
if [ -f "$REPO_ROOT/docs/performance-notes.md" ]; then
    report+=$'\n\n'"$(cat "$REPO_ROOT/docs/performance-notes.md")"
fi
printf '%s\n' "$report" >"$out"
printf '%s\n' "$report"
log "written to $out"
