#!/usr/bin/env bash
# Compares the agent's GPU readings with nvidia-smi on a machine with an NVIDIA driver.
#
#   scripts/gpu-smoke.sh [PATH_TO_AGENT_BINARY]     (default: artifacts/publish/vast-host-agent)
#
# Runs `vast-host-agent metrics` (one sample through the real NVML) and `nvidia-smi --query-gpu=...`,
# then checks per GPU: count, names, UUIDs and memory total exactly; temperature within 3 °C;
# power within 15 % (or 5 W at idle). Prints a table and exits non-zero on any mismatch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
agent="${1:-$here/artifacts/publish/vast-host-agent}"
[ -x "$agent" ] || { echo "error: agent binary not found at $agent (build it with: scripts/publish.sh)" >&2; exit 1; }
command -v nvidia-smi >/dev/null 2>&1 || { echo "error: nvidia-smi not found: this check needs an NVIDIA driver" >&2; exit 1; }

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# Readings close together in time: agent first, then nvidia-smi.
cat >"$workdir/agent.json" <<EOF
{ "host": { "hwmon": false, "disk": false } }
EOF
"$agent" metrics --config "$workdir/agent.json" >"$workdir/metrics.txt"
nvidia-smi --query-gpu=index,uuid,name,memory.total,temperature.gpu,power.draw \
    --format=csv,noheader,nounits >"$workdir/smi.csv"

echo "agent:      $("$agent" --version) ($agent)"
echo "driver:     $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
echo "nvml_up:    $(awk '/^vasthost_nvml_up /{print $2}' "$workdir/metrics.txt")"
echo

# value NAME UUID: the sample of NAME whose uuid label is UUID.
value() {
    awk -v name="$1" -v uuid="$2" '
        index($0, name "{") == 1 && index($0, "uuid=\"" uuid "\"") > 0 { print $NF; exit }' "$workdir/metrics.txt"
}
info_label() {
    awk -v uuid="$1" -v label="$2" '
        index($0, "vasthost_gpu_info{") == 1 && index($0, "uuid=\"" uuid "\"") > 0 {
            s = $0; i = index(s, label "=\""); s = substr(s, i + length(label) + 2); print substr(s, 1, index(s, "\"") - 1); exit }' "$workdir/metrics.txt"
}

failures=0
fail() { echo "MISMATCH: $*"; failures=$((failures + 1)); }

agent_count="$(grep -c '^vasthost_gpu_info{' "$workdir/metrics.txt" || true)"
smi_count="$(grep -c . "$workdir/smi.csv" || true)"
printf '%-5s %-42s %-28s %-22s %-14s %-16s\n' gpu uuid name "memory MiB smi/agent" "temp smi/agent" "power W smi/agent"
[ "$agent_count" = "$smi_count" ] || fail "GPU count: nvidia-smi $smi_count, agent $agent_count"

while IFS=',' read -r index uuid name mem temp power; do
    index="$(echo "$index" | xargs)"; uuid="$(echo "$uuid" | xargs)"; name="$(echo "$name" | xargs)"
    mem="$(echo "$mem" | xargs)"; temp="$(echo "$temp" | xargs)"; power="$(echo "$power" | xargs)"
    a_name="$(info_label "$uuid" name)"
    a_index="$(info_label "$uuid" gpu)"
    a_mem_bytes="$(value vasthost_gpu_memory_total_bytes "$uuid")"
    a_temp="$(value vasthost_gpu_temperature_celsius "$uuid")"
    a_power="$(value vasthost_gpu_power_usage_watts "$uuid")"
    a_mem="$(awk -v b="${a_mem_bytes:-0}" 'BEGIN { printf "%d", b / 1048576 }')"
    printf '%-5s %-42s %-28s %-22s %-14s %-16s\n' "$index" "$uuid" "$name" "$mem/$a_mem" "$temp/${a_temp:-absent}" "$power/${a_power:-absent}"

    [ -n "$a_name" ] || { fail "GPU $uuid: not in the agent's output"; continue; }
    [ "$a_index" = "$index" ] || fail "GPU $uuid: index nvidia-smi $index, agent $a_index"
    [ "$a_name" = "$name" ] || fail "GPU $uuid: name nvidia-smi '$name', agent '$a_name'"
    [ "$a_mem" = "$mem" ] || fail "GPU $uuid: memory total nvidia-smi $mem MiB, agent $a_mem MiB"
    if [[ "$temp" =~ ^[0-9]+$ ]]; then
        awk -v a="${a_temp:-nan}" -v b="$temp" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a == a + 0 && d <= 3) }' ||
            fail "GPU $uuid: temperature nvidia-smi $temp °C, agent ${a_temp:-absent}"
    fi
    if [[ "$power" =~ ^[0-9.]+$ ]]; then
        awk -v a="${a_power:-nan}" -v b="$power" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a == a + 0 && (d <= 0.15 * b || d <= 5)) }' ||
            fail "GPU $uuid: power nvidia-smi $power W, agent ${a_power:-absent} W"
    fi
done <"$workdir/smi.csv"

echo
echo "series in one scrape: $(grep -c '^[a-zA-Z]' "$workdir/metrics.txt")"
echo "NVML errors: $(grep '^vasthost_nvml_errors_total' "$workdir/metrics.txt" | tr '\n' ' ' || true)"
if [ "$failures" -gt 0 ]; then
    echo "gpu-smoke: $failures mismatch(es)"
    exit 1
fi
echo "gpu-smoke: OK ($smi_count GPU(s) match nvidia-smi)"
