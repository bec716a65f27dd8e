#!/usr/bin/env bash
# Builds the release artifacts: the NativeAOT agent, a Debian package and a tarball with install.sh.
#
#   scripts/package.sh [--binary PATH] [--out DIR] [--no-lintian]
#
# Produces DIR/vast-host-agent_<version>_amd64.deb and DIR/vast-host-agent-<version>-linux-x64.tar.gz
# (DIR defaults to dist/). --binary packages an already published agent instead of building one.
# When lintian is installed, the .deb is checked and its findings printed (not with --no-lintian,
# for a caller that runs lintian itself).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

binary=""
out="$REPO_ROOT/dist"
run_lintian=1
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --no-lintian) run_lintian=0; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -n 1)"
[ -n "$version" ] || die "no <Version> in Directory.Build.props"
readonly name=vast-host-agent
readonly arch=amd64
maintainer="VastHostAgent maintainers <maintainers@users.noreply.r-seed-4036d72a.example>"

if [ -z "$binary" ]; then
    ensure_apt_packages gcc libc6-dev zlib1g-dev
    ensure_dotnet
    log "publishing the agent (NativeAOT)"
    publish_agent "$REPO_ROOT/artifacts/publish"
    binary="$REPO_ROOT/artifacts/publish/$name"
fi
[ -x "$binary" ] || die "$binary is not an executable"
"$binary" --version | grep -q "^$version" || die "$binary is not version $version ($("$binary" --version | head -n 1))"

mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- .deb ---------------------------------------------------------------------------------------
deb="$work/deb"
install -d -m 0755 "$deb/DEBIAN" "$deb/usr/bin" "$deb/lib/systemd/system" "$deb/etc/$name" \
    "$deb/usr/share/$name" "$deb/usr/share/doc/$name" "$deb/usr/share/man/man1"
install -m 0755 "$binary" "$deb/usr/bin/$name"
install -m 0644 "packaging/systemd/$name.service" "$deb/lib/systemd/system/$name.service"
install -m 0644 "packaging/systemd/$name-rig.service" "$deb/lib/systemd/system/$name-rig.service"
# The shipped configuration is the documented example (every option at its default: local telemetry
# only, management off and in dry-run). A conffile: dpkg never overwrites a changed one.
install -m 0644 packaging/config/agent.example.json "$deb/etc/$name/agent.json"
install -m 0644 packaging/config/agent.example.json "$deb/usr/share/$name/agent.example.json"
cp -R packaging/grafana packaging/prometheus packaging/alertmanager "$deb/usr/share/$name/"
install -m 0644 README.md docs/metrics.md "$deb/usr/share/doc/$name/"
gzip -9n "$deb/usr/share/doc/$name/README.md" "$deb/usr/share/doc/$name/metrics.md"
gzip -9n -c packaging/deb/$name.1 >"$deb/usr/share/man/man1/$name.1.gz"

cat >"$deb/usr/share/doc/$name/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $name
Source: https://github.com/vasthostagent/vast-host-agent

Files: *
Copyright: 2026 The VastHostAgent authors
License: MIT
$(sed -n '3,$p' LICENSE | sed 's/^$/./; s/^/ /')
COPYRIGHT

cat >"$work/changelog" <<CHANGELOG
$name ($version) unstable; urgency=medium

  * Release $version: GPU telemetry (NVML, hwmon, disk), Docker containers
    mapped to Vast instances and their GPUs, Prometheus metrics, Vast listing
    management (pricing, minimum bid, default job, maintenance windows, fault
    guard), systemd service, Grafana dashboards and Prometheus alert rules.

 -- $maintainer  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
CHANGELOG
gzip -9n -c "$work/changelog" >"$deb/usr/share/doc/$name/changelog.gz"

for script in postinst prerm postrm; do
    install -m 0755 "packaging/deb/$script" "$deb/DEBIAN/$script"
done
echo "/etc/$name/agent.json" >"$deb/DEBIAN/conffiles"
find "$deb" -type d -exec chmod 0755 {} +
find "$deb/usr/share" "$deb/etc" -type f -exec chmod 0644 {} +
chmod 0755 "$deb/usr/share/$name/alertmanager/inline-secrets.sh"
(cd "$deb" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$deb/DEBIAN/md5sums"

glibc="$(objdump -T "$binary" 2>/dev/null | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
installed_size="$(du -sk --exclude=DEBIAN "$deb" | cut -f1)"
cat >"$deb/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: libc6 (>= ${glibc:-2.34}), zlib1g (>= 1:1.2.11), adduser, init-system-helpers (>= 1.52)
Recommends: docker.io | docker-ce
Suggests: prometheus, grafana
Section: admin
Priority: optional
Homepage: https://github.com/vasthostagent/vast-host-agent
Description: GPU telemetry and Vast.ai listing management for GPU rigs
 vast-host-agent runs on every rig a host rents out on Vast.ai. It reads GPU
 telemetry through NVML, board sensors and disk space, maps each Vast instance
 (Docker container C.<id>) to its GPUs, and serves all of it as Prometheus
 metrics. With a Vast API key it also keeps the machine's listing as
 configured: prices that follow the market within hard bounds, minimum bids,
 default jobs and maintenance windows that respect renters' contracts.
 .
 Ships as one native binary with a hardened systemd unit, Grafana dashboards
 and Prometheus alert rules.
CONTROL

# File times are the last commit's, not the build's.
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
find "$deb" -exec touch -h -d "@$epoch" {} +
deb_file="$out/${name}_${version}_${arch}.deb"
SOURCE_DATE_EPOCH="$epoch" dpkg-deb --root-owner-group -Zxz --build "$deb" "$deb_file" >/dev/null

# ---- tarball ------------------------------------------------------------------------------------
stem="$name-$version-linux-x64"
tree="$work/$stem"
install -d -m 0755 "$tree/bin" "$tree/packaging" "$tree/docs"
install -m 0755 "$binary" "$tree/bin/$name"
install -m 0755 install.sh "$tree/install.sh"
cp -R packaging/systemd packaging/config packaging/grafana packaging/prometheus packaging/alertmanager "$tree/packaging/"
install -m 0644 README.md LICENSE "$tree/"
install -m 0644 docs/metrics.md "$tree/docs/"
tar_file="$out/$stem.tar.gz"
tar --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$epoch" \
    -C "$work" -cf - "$stem" | gzip -9n >"$tar_file"

printf '%s (%s)\n' "$deb_file" "$(du -h "$deb_file" | cut -f1)"
printf '%s (%s)\n' "$tar_file" "$(du -h "$tar_file" | cut -f1)"
if [ "$run_lintian" -eq 1 ] && command -v lintian >/dev/null 2>&1; then
    log "lintian $deb_file"
    lintian --tag-display-limit 0 "$deb_file" || true
fi
