#!/usr/bin/env bash
# Instruction counts per operation, ours and the baselines, measured with
# `valgrind --tool=callgrind` (deterministic: the same on a busy machine).
#
# Usage: bench/callgrind.sh [COUNT]      (default 50; needs valgrind)
#
# Each workload of `mtls-bench --instructions` sets up, runs one operation,
# then COUNT operations inside `instructions::measured`; callgrind collects
# inside that function only (`--toggle-collect`), so the setup (random keys,
# entropy gathering) is left out. Prints `instructions_<workload>=N` lines
# (per operation), then the ratios: handshakes as throughput ours/raw
# (raw ÷ ours), issuance and CSR signing likewise, requests as the extra instructions of ours over the bare
# router. Resumed handshakes are compared with raw rustls as configured by
# default (two TLS 1.3 tickets per handshake) and with raw rustls sending
# one ticket, as ours does (`_one_ticket`). `_fleet`: full handshakes of one
# server with 100 clients taken in turn, more distinct peers than a
# verifier remembers.
set -euo pipefail
count="${1:-50}"
here="$(cd "$(dirname "$0")/.." && pwd)"
command -v valgrind >/dev/null 2>&1 || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
(cd "$here" && cargo build --release -q -p mtls-bench)
bench="$here/target/release/mtls-bench"

per_operation() { # workload -> instructions per operation
  local total
  total="$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='*instructions*measured*' \
    "$bench" --instructions "$1" --count "$count" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -1)"
  [ -n "$total" ] || { echo "callgrind.sh: no instruction count for $1" >&2; exit 1; }
  echo $(( total / count ))
}

declare -A per_op
for workload in handshake-ours handshake-raw handshake-ours-fleet handshake-raw-fleet handshake-ours-pq handshake-raw-pq resumed-ours resumed-raw resumed-raw-one-ticket request-ours request-ours-whole request-bare issue-ours issue-raw csr-ours csr-raw; do
  per_op[$workload]="$(per_operation "$workload")"
  echo "instructions_${workload//-/_}=${per_op[$workload]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "handshake_instructions_ratio=$(ratio "${per_op[handshake-raw]}" "${per_op[handshake-ours]}")"
echo "handshake_instructions_ratio_fleet=$(ratio "${per_op[handshake-raw-fleet]}" "${per_op[handshake-ours-fleet]}")"
echo "handshake_instructions_ratio_pq=$(ratio "${per_op[handshake-raw-pq]}" "${per_op[handshake-ours-pq]}")"
echo "resumed_instructions_ratio=$(ratio "${per_op[resumed-raw]}" "${per_op[resumed-ours]}")"
echo "resumed_instructions_ratio_one_ticket=$(ratio "${per_op[resumed-raw-one-ticket]}" "${per_op[resumed-ours]}")"
echo "issue_instructions_ratio=$(ratio "${per_op[issue-raw]}" "${per_op[issue-ours]}")"
echo "csr_instructions_ratio=$(ratio "${per_op[csr-raw]}" "${per_op[csr-ours]}")"
echo "request_overhead_instructions=$(( per_op[request-ours] - per_op[request-bare] ))"
echo "request_overhead_whole_instructions=$(( per_op[request-ours-whole] - per_op[request-bare] ))"
