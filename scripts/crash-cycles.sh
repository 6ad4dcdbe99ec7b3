#!/usr/bin/env bash
# Many crash cycles: start the broker, drive load, kill -9 at a random moment, restart, and check
# that nothing acknowledged was lost and that the log verifies. Usage: scripts/crash-cycles.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
INFOSHARE_CRASH_CYCLES="${1:-50}" cargo test --release -p infoshare-tests --test crash -- --nocapture
