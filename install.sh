#!/usr/bin/env bash
# vast-host-agent installer.
#
# NOT IMPLEMENTED YET: the one-command install (systemd unit, service user, API key credential,
# .deb and tarball) arrives with the packaging issue. Until then, run the agent from a checkout:
#   scripts/demo.sh            (simulated GPUs without a driver, real GPUs with one)
#   scripts/publish.sh && artifacts/publish/vast-host-agent run --config packaging/config/agent.example.json
set -euo pipefail
echo "install.sh is not implemented yet (it arrives with the packaging issue); see README.md for running the agent from a checkout." >&2
exit 2
