#!/usr/bin/env bash
# vast-host-agent installer: one command on a rig, idempotent (a re-run upgrades in place).
#
#   sudo ./install.sh --api-key-file PATH [--listen ADDR]   install or upgrade, enable and start
#   sudo ./install.sh --role rig [--listen ADDR]            a fleet's rig: telemetry only, no API key
#   sudo ./install.sh --listen 0.0.0.0:9470 --web-config F  /metrics over TLS / basic auth (node_exporter's file)
#   sudo ./install.sh --role controller --api-key-file PATH a fleet's controller (one per account)
#   sudo ./install.sh --dry-run ...                         print what would be done, change nothing
#   sudo ./install.sh --uninstall                           remove it; keep configuration, key and state
#   sudo ./install.sh --uninstall --purge                   remove configuration, key, state and user too
#
# Run it from the release tarball (the binary is next to it in bin/) or from a checkout with the
# .NET 10 SDK (it builds the binary with scripts/publish.sh). On Debian/Ubuntu the .deb is the
# alternative; do not mix the two.
set -euo pipefail

readonly SERVICE=vast-host-agent
readonly SERVICE_USER=vast-host-agent
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

usage() {
    cat <<'EOF'
Usage: sudo ./install.sh [options]

Installs vast-host-agent as a systemd service (binary in /usr/local/bin, unit in /etc/systemd/system,
configuration in /etc/vast-host-agent, state in /var/lib/vast-host-agent), enables and starts it.

Options:
  --role ROLE          standalone (default): telemetry and the Vast side of this one machine.
                       rig: one rig of a fleet; telemetry only, holds no API key and makes no Vast
                       call (the unit has no credential); its Prometheus feeds the controller.
                       controller: the Vast side of every machine of the account, rig health read
                       from Prometheus (fleet section of agent.json); needs the API key.
                       Written only into a new configuration (agent.role); an existing one must say
                       the same role. See README.md, "One rig" and "Fleet".
  --api-key-file PATH  Your Vast API key (a file holding only the key). Stored as a root-only 0600
                       credential (/etc/vast-host-agent/credentials/vast-api-key) that systemd hands
                       to the service (LoadCredential=). Required for --role controller (unless a
                       key is already stored), refused for --role rig. Standalone without it serves
                       local telemetry only; a re-run with it adds or replaces the key.
  --listen ADDR        Metrics endpoint, host:port (default 127.0.0.1:9470). Written only into a new
                       configuration: an existing /etc/vast-host-agent/agent.json is never changed.
  --web-config FILE    A web configuration in the Prometheus exporter-toolkit format (the file
                       node_exporter's --web.config.file takes): TLS certificate and key, client
                       certificates, basic_auth_users with bcrypt hashes, response headers. Copied
                       to /etc/vast-host-agent/web-config.yml (0640, readable by the service); the
                       files it names must be absolute paths the service user can read. A new
                       configuration gets metrics.webConfigFile; an existing one is told to add it.
                       Use it whenever --listen is beyond loopback. See README.md, "Exposing /metrics".
  --binary PATH        Install this vast-host-agent binary instead of the tarball's (or building one).
  --dry-run            Print every step, change nothing.
  --uninstall          Stop, disable and remove the service, binary and shared files. Configuration,
                       API key, state (/var/lib/vast-host-agent) and the service user are kept.
  --purge              With --uninstall: remove configuration, key, state and the service user too.
  --no-start           Install and enable, but do not (re)start (image builds).
  --root DIR           Install into DIR instead of / (tests, image builds). Checks look inside DIR.
  -h, --help           This help.

Management of the Vast listing starts in dry-run: read `vast-host-agent plan` and the journal, then
set "management": { "dryRun": false } in /etc/vast-host-agent/agent.json.
EOF
}

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
say() { printf '==> %s\n' "$*"; }

original_args="$*"
root="/"
role=""
api_key_file=""
listen=""
web_config=""
binary=""
dry_run=0
uninstall=0
purge=0
start=1

while [ $# -gt 0 ]; do
    case "$1" in
        --role) [ $# -ge 2 ] || die "--role needs standalone, rig or controller"; role="$2"; shift 2 ;;
        --role=*) role="${1#*=}"; shift ;;
        --api-key-file) [ $# -ge 2 ] || die "--api-key-file needs a path"; api_key_file="$2"; shift 2 ;;
        --api-key-file=*) api_key_file="${1#*=}"; shift ;;
        --listen) [ $# -ge 2 ] || die "--listen needs host:port"; listen="$2"; shift 2 ;;
        --listen=*) listen="${1#*=}"; shift ;;
        --web-config) [ $# -ge 2 ] || die "--web-config needs a path"; web_config="$2"; shift 2 ;;
        --web-config=*) web_config="${1#*=}"; shift ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
        --binary=*) binary="${1#*=}"; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; root="$2"; shift 2 ;;
        --root=*) root="${1#*=}"; shift ;;
        --dry-run) dry_run=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge goes with --uninstall"
case "$role" in
    ""|standalone|rig|controller) ;;
    *) printf "install.sh: error: --role '%s': expected standalone, rig or controller\n" "$role" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs a system service): sudo $0 $original_args"
[ -d "$root" ] || die "--root $root is not a directory"
root="$(cd "$root" && pwd)"
# P is the prefix of every installed path ("" for a real install).
P="${root%/}"

readonly BIN="$P/usr/local/bin/$SERVICE"
readonly UNIT="$P/etc/systemd/system/$SERVICE.service"
readonly CONF_DIR="$P/etc/$SERVICE"
readonly CONF="$CONF_DIR/agent.json"
readonly CRED_DIR="$CONF_DIR/credentials"
readonly CRED="$CRED_DIR/vast-api-key"
readonly WEB_CONF="$CONF_DIR/web-config.yml"
readonly SHARE="$P/usr/local/share/$SERVICE"
readonly STATE="$P/var/lib/$SERVICE"

# ---- checks (all before any change) -------------------------------------------------------------

[ -d "$P/run/systemd/system" ] ||
    die "systemd is not running on this machine (no $P/run/systemd/system); the agent installs as a systemd service. Without systemd, run it directly: $SERVICE run --config PATH"

# Runs a command, or prints it under --dry-run.
act() {
    if [ "$dry_run" -eq 1 ]; then
        printf 'would run: %s\n' "$*"
    else
        "$@"
    fi
}

# Writes stdin to FILE with MODE (atomically: a temporary file renamed over it), or prints under --dry-run.
write_file() {
    local file="$1" mode="$2" tmp
    if [ "$dry_run" -eq 1 ]; then
        printf 'would write: %s (mode %s)\n' "$file" "$mode"
        cat >/dev/null
        return
    fi
    tmp="$(mktemp "$file.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$file"
}

# Numeric uid/gid of the service user inside the target root (the host's NSS does not see --root).
id_in_root() { awk -F: -v n="$2" '$1 == n { print $3 }' "$P/etc/$1"; }
user_exists() { [ -f "$P/etc/passwd" ] && [ -n "$(id_in_root passwd "$SERVICE_USER")" ]; }
prefix_args=()
[ -z "$P" ] || prefix_args=(--prefix "$root")

systemctl_quiet() { systemctl "$@" >/dev/null 2>&1; }

# ---- uninstall ----------------------------------------------------------------------------------

if [ "$uninstall" -eq 1 ]; then
    say "stopping and disabling $SERVICE"
    if [ -f "$UNIT" ]; then
        act systemctl disable --now "$SERVICE.service" || warn "could not stop or disable $SERVICE (continuing)"
    fi
    act rm -f "$UNIT" "$BIN"
    act rm -rf "$SHARE"
    act systemctl daemon-reload || warn "systemctl daemon-reload failed"
    if [ "$purge" -eq 1 ]; then
        say "purging configuration, API key, state and the $SERVICE_USER user"
        act rm -rf "$CONF_DIR" "$STATE"
        if user_exists; then
            act userdel "${prefix_args[@]}" "$SERVICE_USER" || warn "could not remove user $SERVICE_USER"
        fi
        if [ -f "$P/etc/group" ] && [ -n "$(id_in_root group "$SERVICE_USER")" ]; then
            act groupdel "${prefix_args[@]}" "$SERVICE_USER" || warn "could not remove group $SERVICE_USER"
        fi
        say "$SERVICE purged"
    else
        say "$SERVICE removed; kept: $CONF_DIR (configuration and API key), $STATE (state), user $SERVICE_USER. Remove them with --uninstall --purge"
    fi
    exit 0
fi

# ---- install checks -----------------------------------------------------------------------------

if [ -f "$P/lib/systemd/system/$SERVICE.service" ] || [ -f "$P/usr/lib/systemd/system/$SERVICE.service" ]; then
    die "$SERVICE is installed from the .deb package: upgrade it with apt/dpkg, or remove it (apt remove $SERVICE) before using install.sh"
fi

# The role: --role, else the existing configuration's agent.role, else standalone. The configuration is
# never rewritten, so a --role that contradicts it stops here instead of installing a unit that does not fit.
if [ -f "$CONF" ]; then
    configured_role="$(sed -n 's/^[[:space:]]*"role"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$CONF" | head -n 1 | tr '[:upper:]' '[:lower:]')"
    configured_role="${configured_role:-standalone}"
    case "$configured_role" in
        standalone|rig|controller) ;;
        *) die "$CONF: agent.role '$configured_role' is not standalone, rig or controller" ;;
    esac
    if [ -n "$role" ] && [ "$role" != "$configured_role" ]; then
        die "--role $role, but $CONF says role $configured_role (it is never rewritten): set \"role\": \"$role\" in its \"agent\" section (a rig has no \"vast\" section), or move it away to get a new one, then re-run"
    fi
    role="$configured_role"
fi
role="${role:-standalone}"

# A rig's unit has no credential at all (it holds no key); standalone and controller get the key.
unit_src="$SCRIPT_DIR/packaging/systemd/$SERVICE.service"
[ "$role" = rig ] && unit_src="$SCRIPT_DIR/packaging/systemd/$SERVICE-rig.service"
[ -f "$unit_src" ] || die "$unit_src is missing: run install.sh from the release tarball or a checkout"

if [ "$role" = rig ] && [ -n "$api_key_file" ]; then
    die "--role rig holds no Vast API key (the controller does the Vast side): drop --api-key-file"
fi
if [ "$role" = controller ] && [ -z "$api_key_file" ] && [ ! -s "$CRED" ]; then
    die "--role controller needs the Vast API key of the account: --api-key-file PATH"
fi

if [ -n "$api_key_file" ]; then
    if [ ! -f "$api_key_file" ] || [ ! -r "$api_key_file" ]; then
        die "--api-key-file $api_key_file: no such readable file"
    fi
    key_words="$(tr -s '[:space:]' '\n' <"$api_key_file" | grep -c . || true)"
    [ "$key_words" -eq 1 ] || die "--api-key-file $api_key_file does not hold one API key (empty, or several words)"
fi

if [ -n "$listen" ]; then
    if ! [[ "$listen" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.*+-]+):([0-9]{1,5})$ ]] || [ "${BASH_REMATCH[2]}" -lt 1 ] || [ "${BASH_REMATCH[2]}" -gt 65535 ]; then
        die "--listen '$listen': expected host:port, e.g. 127.0.0.1:9470 or 0.0.0.0:9470"
    fi
    if [ -f "$CONF" ] && ! grep -q "\"$listen\"" "$CONF"; then
        warn "$CONF exists and is kept as it is: --listen $listen is not applied (edit metrics.listenAddress there)"
    fi
fi

if [ -n "$web_config" ]; then
    if [ ! -f "$web_config" ] || [ ! -r "$web_config" ]; then
        die "--web-config $web_config: no such readable file"
    fi
    # The toolkit reads relative paths from the file's own directory, which changes when it is copied.
    relative="$(awk '/^[[:space:]]*(cert_file|key_file|client_ca_file)[[:space:]]*:/ {
        v = $0; sub(/^[^:]*:[[:space:]]*/, "", v); gsub(/["'"'"']/, "", v)
        if (v != "" && v !~ /^\//) { sub(/:.*/, "", $1); print $1 ": " v; exit } }' "$web_config")"
    [ -z "$relative" ] || die "--web-config $web_config: $relative is a relative path; give the certificate files as absolute paths (the file is copied to $WEB_CONF)"
    # Users carry bcrypt hashes; a password in clear here would sit in /etc (the agent refuses it too).
    plain="$(awk '/^basic_auth_users:/ { b = 1; next } /^[^[:space:]#]/ { b = 0 }
        b && /^[[:space:]]+[^#[:space:]]/ { v = $0; sub(/^[^:]*:[[:space:]]*/, "", v); gsub(/["'"'"'[:space:]]/, "", v)
        if (v !~ /^[$]2[abxy]?[$]/) { sub(/:.*/, "", $1); print $1; exit } }' "$web_config")"
    [ -z "$plain" ] || die "--web-config $web_config: basic_auth_users.$plain is not a bcrypt hash: store hashes (htpasswd -nBC 10 \"\" | tr -d ':\\n'), never passwords"
    if [ -f "$CONF" ] && ! grep -q '"webConfigFile"' "$CONF"; then
        warn "$CONF exists and is kept as it is: add \"webConfigFile\": \"/etc/$SERVICE/web-config.yml\" to its \"metrics\" section to use the web configuration"
    fi
fi

# The address the service will listen on: a new configuration's, else the existing one's, else the default.
effective_listen="${listen:-127.0.0.1:9470}"
if [ -f "$CONF" ]; then
    configured="$(sed -n 's/^[[:space:]]*"listenAddress"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$CONF" | head -n 1)"
    effective_listen="${configured:-127.0.0.1:9470}"
fi
port="${effective_listen##*:}"
# Where a local client reaches it: a wildcard address means this machine's loopback.
local_host="${effective_listen%:*}"
case "$local_host" in 0.0.0.0|"*"|+) local_host=127.0.0.1 ;; "[::]") local_host="[::1]" ;; esac
tcp_host="${local_host#[}"; tcp_host="${tcp_host%]}"
if ! systemctl_quiet is-active "$SERVICE.service" && (exec 3<>"/dev/tcp/$tcp_host/$port") 2>/dev/null; then
    die "port $port is in use by another program ($effective_listen): stop it, or pass --listen with a free port (or change metrics.listenAddress in $CONF)"
fi

if [ "$role" != controller ] && [ ! -e "$P/proc/driver/nvidia/version" ]; then
    warn "no NVIDIA driver found ($P/proc/driver/nvidia/version is missing): the agent installs and runs, and reports vasthost_nvml_up 0 until the driver is loaded"
fi

# The binary: --binary, else the tarball's, else build one in a checkout.
if [ -z "$binary" ]; then
    if [ -x "$SCRIPT_DIR/bin/$SERVICE" ]; then
        binary="$SCRIPT_DIR/bin/$SERVICE"
    elif [ -f "$SCRIPT_DIR/agent/VastHostAgent.csproj" ]; then
        say "building the agent (NativeAOT) with scripts/publish.sh"
        if [ "$dry_run" -eq 1 ]; then
            printf 'would run: %s\n' "$SCRIPT_DIR/scripts/publish.sh"
            binary="$SCRIPT_DIR/artifacts/publish/$SERVICE"
        else
            "$SCRIPT_DIR/scripts/publish.sh" >&2 || die "building the agent failed (it needs the .NET 10 SDK; or use the release tarball)"
            binary="$SCRIPT_DIR/artifacts/publish/$SERVICE"
        fi
    else
        die "no binary: expected $SCRIPT_DIR/bin/$SERVICE (release tarball) or a checkout to build from; or pass --binary PATH"
    fi
fi
if [ "$dry_run" -eq 0 ]; then
    [ -x "$binary" ] || die "$binary is not an executable"
    version="$("$binary" --version 2>/dev/null | head -n 1)" || die "$binary --version failed: is it a vast-host-agent binary for this machine?"
else
    version="$("$binary" --version 2>/dev/null | head -n 1 || echo "(not built yet)")"
fi

# The endpoint's scheme and credentials, for the hint at the end.
scheme=http
curl_auth=""
web_in_use="$web_config"
[ -n "$web_in_use" ] || { [ -f "$WEB_CONF" ] && [ -f "$CONF" ] && grep -q '"webConfigFile"' "$CONF" && web_in_use="$WEB_CONF"; } || true
if [ -n "$web_in_use" ] && [ -r "$web_in_use" ]; then
    grep -q '^tls_server_config:' "$web_in_use" && scheme=https
    grep -q '^basic_auth_users:' "$web_in_use" && curl_auth=" -u USER"
    [ "$scheme" = https ] && curl_auth=" --cacert CA.pem$curl_auth"
fi

# ---- install ------------------------------------------------------------------------------------

upgrade=0
[ -f "$BIN" ] && upgrade=1
say "$([ "$upgrade" -eq 1 ] && echo upgrading || echo installing) $SERVICE $version ($role) into ${root}"

# Service user (system account, no login, no home) with read access to the Docker socket.
if user_exists; then
    say "user $SERVICE_USER exists"
else
    act useradd "${prefix_args[@]}" --system --user-group --no-create-home --home-dir "/var/lib/$SERVICE" \
        --shell /usr/sbin/nologin --comment "vast-host-agent service" "$SERVICE_USER"
fi
if [ "$role" = controller ]; then
    : # the controller reads Vast and Prometheus, not containers: no docker group
elif [ -f "$P/etc/group" ] && grep -q '^docker:' "$P/etc/group"; then
    if ! awk -F: '$1 == "docker" { print $4 }' "$P/etc/group" | tr ',' '\n' | grep -qx "$SERVICE_USER"; then
        act usermod "${prefix_args[@]}" --append --groups docker "$SERVICE_USER"
    fi
else
    warn "no docker group: the agent cannot read containers until Docker is installed and $SERVICE_USER is added to the docker group (then re-run install.sh)"
fi

act rm -rf "$SHARE"
act install -d -m 0755 "$P/usr/local/bin" "$P/etc/systemd/system" "$SHARE" "$CONF_DIR"
[ "$role" = rig ] || act install -d -m 0700 "$CRED_DIR"
act install -m 0755 "$binary" "$BIN"

# The unit, pointed at /usr/local/bin (the .deb uses /usr/bin).
sed "s#^ExecStart=/usr/bin/#ExecStart=/usr/local/bin/#; s#^Documentation=.*#Documentation=file:///usr/local/share/$SERVICE/README.md#" \
    "$unit_src" | write_file "$UNIT" 0644

# Shared files: example configuration, dashboards, alert rules, Alertmanager configuration, docs.
for item in packaging/config/agent.example.json packaging/grafana packaging/prometheus packaging/alertmanager README.md docs/metrics.md; do
    if [ -e "$SCRIPT_DIR/$item" ]; then
        act cp -R "$SCRIPT_DIR/$item" "$SHARE/"
    fi
done
act chmod -R u=rwX,go=rX "$SHARE"

# The API key: a root-only credential; systemd hands it to the service, the CLI (as root) reads the file.
if [ "$role" = rig ]; then
    if [ -s "$CRED" ]; then
        warn "$CRED holds an API key from an earlier install; a rig never reads it: remove it (rm $CRED)"
    fi
elif [ -n "$api_key_file" ]; then
    tr -d '[:space:]' <"$api_key_file" | write_file "$CRED" 0600
    act chown 0:0 "$CRED"
    say "API key stored in $CRED (mode 0600, root)"
elif [ ! -f "$CRED" ]; then
    # Empty until a key is added: systemd's LoadCredential= needs the file to exist.
    write_file "$CRED" 0600 </dev/null
    act chown 0:0 "$CRED"
fi

gid="$(id_in_root group "$SERVICE_USER" 2>/dev/null || true)"

# The web configuration: replaced by each --web-config (a renewal of users or certificate paths).
web_line=""
if [ -n "$web_config" ]; then
    write_file "$WEB_CONF" 0640 <"$web_config"
    if [ -n "$gid" ]; then act chown "0:$gid" "$WEB_CONF"; else act chmod 0644 "$WEB_CONF"; fi
    say "web configuration stored in $WEB_CONF"
    web_line=",
    // TLS, client certificates, basic auth and headers for this endpoint (the exporter-toolkit format).
    \"webConfigFile\": \"/etc/$SERVICE/web-config.yml\""
fi

# The configuration: written only when absent, never overwritten on upgrade.
if [ -f "$CONF" ]; then
    say "keeping $CONF"
else
    case "$role" in
        rig)
            write_file "$CONF" 0640 <<EOF
// vast-host-agent configuration, written by install.sh (never overwritten by a later install).
// Every option, with its default and what it does: /usr/local/share/$SERVICE/agent.example.json
// Check it with: sudo $SERVICE doctor --config /etc/$SERVICE/agent.json
{
  "agent": {
    // One rig of a fleet: telemetry only. It holds no Vast API key and makes no Vast call (no vast
    // section); the controller manages the listing and reads this rig's health from Prometheus.
    "role": "rig"
  },
  "metrics": {
    // The fleet's Prometheus scrapes this address: expose it to Prometheus only (firewall, VPN).
    "listenAddress": "${listen:-127.0.0.1:9470}"$web_line
  }
}
EOF
            say "wrote $CONF (role rig: telemetry only, no API key)"
            ;;
        controller)
            write_file "$CONF" 0640 <<EOF
// vast-host-agent configuration, written by install.sh (never overwritten by a later install).
// Every option, with its default and what it does: /usr/local/share/$SERVICE/agent.example.json;
// the fleet section (machines, profiles) is described in /usr/local/share/$SERVICE/README.md, "Fleet".
// Check it with: sudo $SERVICE doctor --config /etc/$SERVICE/agent.json
{
  "agent": {
    // The fleet's controller: the Vast side of every machine of the account (one per account).
    "role": "controller"
  },
  "metrics": {
    "listenAddress": "${listen:-127.0.0.1:9470}"$web_line
  },
  // No GPUs or renters' containers here: the rigs' agents read those.
  "gpu": {
    "enabled": false
  },
  "docker": {
    "enabled": false
  },
  "vast": {
    "enabled": true,
    // The service gets the key as the systemd credential "vast-api-key"; the CLI (as root) reads this file.
    "apiKeyFile": "/etc/$SERVICE/credentials/vast-api-key"
  },
  "management": {
    // The defaults for every managed machine (fleet.profiles override them key by key).
    "enabled": true,
    // New installs decide and journal every change without making it: read \`$SERVICE plan\`, then set false.
    "dryRun": true
  },
  "fleet": {
    // The Prometheus that scrapes every rig agent: rig health for the fault guard.
    "prometheus": {
      "url": "http://127.0.0.1:9090"
    },
    // Which machines are managed, with which profile; machines no entry selects are read-only.
    // Entries: { "ids": [...], "hostname": "rig-4090-*", "gpuModel": "RTX 4090", "profile": "NAME" }.
    "machines": []
  }
}
EOF
            say "wrote $CONF (role controller, management in dry-run, every machine read-only until fleet.machines selects it)"
            ;;
        *)
            vast_enabled=false
            { [ -n "$api_key_file" ] || [ -s "$CRED" ]; } && vast_enabled=true
            write_file "$CONF" 0640 <<EOF
// vast-host-agent configuration, written by install.sh (never overwritten by a later install).
// Every option, with its default and what it does: /usr/local/share/$SERVICE/agent.example.json
// Check it with: sudo $SERVICE doctor --config /etc/$SERVICE/agent.json
{
  "metrics": {
    "listenAddress": "${listen:-127.0.0.1:9470}"$web_line
  },
  "vast": {
    "enabled": $vast_enabled,
    // The service gets the key as the systemd credential "vast-api-key"; the CLI (as root) reads this file.
    "apiKeyFile": "/etc/$SERVICE/credentials/vast-api-key"
  },
  "management": {
    "enabled": $vast_enabled,
    // New installs decide and journal every change without making it: read \`$SERVICE plan\`, then set false.
    "dryRun": true
  }
}
EOF
            say "wrote $CONF (management in dry-run)"
            ;;
    esac
fi
if [ -n "$gid" ]; then
    act chown "0:$gid" "$CONF"
else
    act chmod 0644 "$CONF"
fi

act systemctl daemon-reload
act systemctl enable "$SERVICE.service"
if [ "$start" -eq 1 ]; then
    # Type=notify: restart returns once the agent has sent READY=1 (or failed).
    if ! act systemctl restart "$SERVICE.service"; then
        systemctl --no-pager status "$SERVICE.service" >&2 || true
        die "$SERVICE did not start: see 'journalctl -u $SERVICE -n 50'"
    fi
fi

cat <<EOF

$SERVICE $version $([ "$dry_run" -eq 1 ] && echo "would be installed" || echo installed)$([ "$start" -eq 1 ] && echo " and running").
  status:   systemctl status $SERVICE
  logs:     journalctl -u $SERVICE -f
  metrics:  curl -s$curl_auth $scheme://$local_host:$port/metrics | head
  check:    sudo $SERVICE doctor --config /etc/$SERVICE/agent.json
  config:   /etc/$SERVICE/agent.json (then: sudo systemctl restart $SERVICE)
  role:     $role
EOF
case "$role" in
    rig)
        echo "  fleet:    no API key on this rig; add $local_host:$port (as Prometheus reaches it) to the fleet's Prometheus, which the controller reads"
        ;;
    controller)
        echo "  fleet:    select the machines to manage in fleet.machines (README.md, \"Fleet\"); the others stay read-only"
        echo "  pricing:  management starts in dry-run: sudo $SERVICE plan --config /etc/$SERVICE/agent.json"
        ;;
    *)
        echo "  pricing:  management starts in dry-run: sudo $SERVICE plan --config /etc/$SERVICE/agent.json"
        ;;
esac
echo "  Grafana dashboards and Prometheus alert rules: /usr/local/share/$SERVICE/"
if [ "$role" = standalone ] && [ ! -s "$CRED" ] && [ -z "$api_key_file" ]; then
    echo "  Vast API: no key yet (local telemetry only): sudo ./install.sh --api-key-file PATH, then set \"vast\": { \"enabled\": true } in /etc/$SERVICE/agent.json"
fi
