#!/usr/bin/env bash
# Type-checks every Grafana dashboard in packaging/grafana/dashboards/*.json against the Dashboard type of
# @grafana/schema (versions pinned in package.json / package-lock.json), after checking the dashboards'
# own conventions (lint.mjs). Exits non-zero on any problem.
#
#   tests/grafana-schema/check.sh      (VASTHOST_DASHBOARDS_DIR=DIR checks the dashboards in DIR instead)
#
# Needs node and npm; installs the pinned packages with `npm ci` when node_modules is missing or was
# installed from a different package-lock.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# node_modules is current when it was installed from this exact package-lock.json.
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.vasthost-lock-sha256"
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    echo "grafana-schema: installing the pinned packages (npm ci)"
    npm ci --no-audit --no-fund
    printf '%s\n' "$lock_hash" >"$stamp"
fi

node generate.mjs

# Both checks run, so one run reports every problem.
status=0
node lint.mjs || status=1

schema_version="$(node -p "require('./node_modules/@grafana/schema/package.json').version")"
tsc_version="$(node -p "require('./node_modules/typescript/package.json').version")"
if ! npx tsc --noEmit --pretty false -p . | node annotate.mjs; then
    echo "grafana-schema: type errors against @grafana/schema $schema_version (lines refer to tests/grafana-schema/generated/dashboards.ts)" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
echo "grafana-schema: every dashboard type-checks against @grafana/schema $schema_version (typescript $tsc_version)"
