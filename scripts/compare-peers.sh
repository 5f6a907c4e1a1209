#!/usr/bin/env bash
# Same-run comparison of eccl (shm, libfabric shm, sockets) against Open MPI (mpirun, vader and tcp BTLs) and Gloo (TCP,
# bench/gloo_peer: processes of its own) on this machine: each measurement is repeated ROUNDS times with the systems interleaved (A B C A B C),
# and the median and range are printed. Build first (scripts/test.sh or scripts/demo.sh).
#   scripts/compare-peers.sh [ROUNDS]        (default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${1:-3}
PERF="$ROOT/build/apps/eccl-perf/eccl-perf"
MOVE="$ROOT/build/bench/expert_move_bench"
MPI_PEER="$ROOT/build/bench/mpi_peer"
GLOO_PEER="$ROOT/build/bench/gloo_peer"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
for b in "$PERF" "$MOVE" "$MPI_PEER" "$GLOO_PEER"; do [ -x "$b" ] || { echo "missing $b: build first" >&2; exit 2; }; done

# eccl-perf's last line: size time algbw busbw
# Every system warms up for a quarter of its timed iterations first (at least 5): after the
# sleeps of start-up and barriers, the scheduler may first run two ranks on one core until it
# balances them — measured here, 5 warm-up iterations left eccl's 8 B latency anywhere from 0.8
# to 1.8 µs, 5000 gave 0.66-0.68 every time.
warm() { echo $(($1 / 4 > 5 ? $1 / 4 : 5)); }
eccl() {  # transport provider op bytes ranks iters -> "time busbw"
  local t=$1 p=$2 op=$3 b=$4 r=$5 n=$6
  "$PERF" -o "$op" -b "$b" -e "$b" -n "$n" -w "$(warm "$n")" -r "$r" --transport "$t" ${p:+--provider "$p"} 2>/dev/null | tail -1 | awk '{print $2, $4}'
}
gloo() {  # op bytes-per-rank ranks iters -> "time busbw" (Gloo in processes of its own)
  "$GLOO_PEER" -o "$1" -b "$2" -r "$3" -n "$4" -w "$(warm "$4")" -t 1 2>/dev/null | awk '{print $8, $12}'
}
mpi() {  # btl op bytes ranks iters -> "time busbw"
  "${MPIRUN[@]}" -np "$4" --mca btl "self,$1" "$MPI_PEER" -o "$2" -b "$3" -n "$5" -w "$(warm "$5")" -r 1 2>/dev/null | awk '{print $8, $12}'
}
move() {  # transport provider -> ms (raw batch_isend_irecv)
  ECCL_TRANSPORT=$1 ECCL_OFI_PROVIDER=$2 "$MOVE" --iterations 5 2>/dev/null | awk '/raw batch/{print $4}'
}
mpimove() {  # btl -> us
  "${MPIRUN[@]}" -np 4 --mca btl "self,$1" "$MPI_PEER" -o expert_move -b 4M -k 16 -n 5 -r 1 2>/dev/null | awk '{print $8}'
}

stats() {  # values... -> "median (min-max) [n/ROUNDS]"
  printf '%s\n' "$@" | grep -E '^[0-9.e+-]+$' | sort -g |
    awk -v r="$ROUNDS" '{v[NR]=$1} END {if (!NR) {printf "failed"; exit}
      printf "%.3g (%.3g-%.3g)%s", v[int((NR+1)/2)], v[1], v[NR], NR < r ? " [" NR "/" r "]" : ""}'
}

row() {  # label, then name=command pairs; each command prints one number
  local label=$1; shift
  [[ -z ${ONLY:-} || $label == *"$ONLY"* ]] || return 0
  local keep=() spec
  for spec in "$@"; do [[ ${spec%%=*} =~ ${SYSTEMS:-.} ]] && keep+=("$spec"); done
  set -- "${keep[@]}"
  declare -A vals
  for ((i = 0; i < ROUNDS; i++)); do
    # A failed run counts as missing (said on stderr), not as a figure.
    for spec in "$@"; do vals[${spec%%=*}]+="$(eval "${spec#*=}" || echo "${spec%%=*} failed" >&2) "; done
  done
  printf '%-34s' "$label"
  for spec in "$@"; do printf ' | %s %s' "${spec%%=*}" "$(stats ${vals[${spec%%=*}]})"; done
  printf '\n'
}

echo "# $(date -u +%F) $(nproc) cores; medians (min-max) of $ROUNDS interleaved rounds"
ONLY=${ONLY:-}  # e.g. ONLY=all_gather: just the rows whose label contains it
# SYSTEMS: a regular expression; only the systems whose name matches it, e.g. SYSTEMS='socket|tcp|gloo'.
row "8 B latency, us (half round trip)" \
  "eccl-shm=eccl shm '' pingpong 8 2 20000 | cut -d' ' -f1" "eccl-ofi-shm=eccl ofi shm pingpong 8 2 20000 | cut -d' ' -f1" "eccl-socket=eccl socket '' pingpong 8 2 20000 | cut -d' ' -f1" \
  "mpi-vader=mpi vader pingpong 8 2 20000 | cut -d' ' -f1" "mpi-tcp=mpi tcp pingpong 8 2 20000 | cut -d' ' -f1" \
  "gloo=gloo pingpong 8 2 2000 | cut -d' ' -f1"
row "pingpong 1 MiB, GB/s" \
  "eccl-shm=eccl shm '' pingpong 1M 2 200 | cut -d' ' -f2" "eccl-ofi-shm=eccl ofi shm pingpong 1M 2 200 | cut -d' ' -f2" "eccl-socket=eccl socket '' pingpong 1M 2 200 | cut -d' ' -f2" \
  "mpi-vader=mpi vader pingpong 1M 2 200 | cut -d' ' -f2" "mpi-tcp=mpi tcp pingpong 1M 2 200 | cut -d' ' -f2" \
  "gloo=gloo pingpong 1M 2 200 | cut -d' ' -f2"
# 1 MiB from every rank: eccl-perf's size is the whole gathered buffer (nccl-tests' convention),
# mpi_peer's the part of one rank.
# Iterations so that one measurement lasts a good fraction of a second on this machine (a few
# ms is at the mercy of one scheduler hiccup); the same count for every system.
for r in 2 4 8; do
  n=$((r == 2 ? 1000 : r == 4 ? 200 : 50))
  row "all_gather busbw $r x 1 MiB, GB/s" \
    "eccl-shm=eccl shm '' all_gather ${r}M $r $n | cut -d' ' -f2" "eccl-ofi-shm=eccl ofi shm all_gather ${r}M $r $n | cut -d' ' -f2" "eccl-socket=eccl socket '' all_gather ${r}M $r $n | cut -d' ' -f2" \
    "mpi-vader=mpi vader all_gather 1M $r $n | cut -d' ' -f2" "mpi-tcp=mpi tcp all_gather 1M $r $n | cut -d' ' -f2" \
    "gloo=gloo all_gather 1M $r $n | cut -d' ' -f2"
done
row "expert move 4 x 16 x 4 MiB, ms" \
  "eccl-shm=move shm auto" "eccl-ofi-shm=move ofi shm" "eccl-socket=move socket auto" \
  "mpi-vader=mpimove vader | awk '{print \$1 / 1000}'" "mpi-tcp=mpimove tcp | awk '{print \$1 / 1000}'"
