#!/usr/bin/env bash
# `npm run bench`: the suite holds tens of thousands of sockets; raise the
# open-files limit to the hard limit first (each process also gets its own).
set -euo pipefail
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$(dirname "$0")/../.."
exec node --import tsx ops/bench/run.ts "$@"
