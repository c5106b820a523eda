#!/usr/bin/env bash
# Instruction counts per operation, ours and the baselines, measured with
# `valgrind --tool=callgrind` (deterministic: the same on a busy machine).
#
# Usage: bench/callgrind.sh [COUNT]      (default 40; needs valgrind)
#
# Each workload of `mtls-bench --instructions` runs COUNT and then COUNT/2
# operations; the difference divided by COUNT/2 is the cost of one
# operation, the setup (fixture, keys, configs) cancelled out. Prints
# `instructions_<workload>=N` lines, then the ratios as `*_ratio=` lines:
# handshakes as throughput ours/raw (raw ÷ ours), requests as the extra
# instructions of ours over the bare router.
set -euo pipefail
count="${1:-40}"
half=$((count / 2))
here="$(cd "$(dirname "$0")/.." && pwd)"
command -v valgrind >/dev/null 2>&1 || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
(cd "$here" && cargo build --release -q -p mtls-bench)
bench="$here/target/release/mtls-bench"

instructions() { # workload count -> total instructions of the run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$bench" --instructions "$1" --count "$2" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -1
}

declare -A per_op
for workload in handshake-ours handshake-raw handshake-ours-pq handshake-raw-pq request-ours request-bare; do
  full="$(instructions "$workload" "$count")"
  part="$(instructions "$workload" "$half")"
  if [ -z "$full" ] || [ -z "$part" ]; then
    echo "callgrind.sh: no instruction count for $workload" >&2
    exit 1
  fi
  per_op[$workload]=$(( (full - part) / (count - half) ))
  echo "instructions_${workload//-/_}=${per_op[$workload]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "handshake_instructions_ratio=$(ratio "${per_op[handshake-raw]}" "${per_op[handshake-ours]}")"
echo "handshake_instructions_ratio_pq=$(ratio "${per_op[handshake-raw-pq]}" "${per_op[handshake-ours-pq]}")"
echo "request_overhead_instructions=$(( per_op[request-ours] - per_op[request-bare] ))"
