#!/usr/bin/env bash
# eccl over verbs beside perftest's raw-verbs figures, interleaved in one Soft-RoCE VM run
# (software emulation: functional figures, not hardware ones). Run from the host:
#   ../shared/tools/rxe-vm/run-in-rxe-vm.sh --hostfs -- bench/verbs_vm_figures.sh build [rounds]
# Latency: ib_send_lat's typical half round trip vs eccl-perf pingpong (half a round trip) at 8 B.
# Bandwidth: ib_write_bw (a stream of writes, 128 in flight, registered once) vs eccl-perf
# bandwidth (osu_bw's pattern: a window of 64 messages in flight) with buffers registered once
# (--register, as an engine registers its expert memory) and without (registered per message).
# Prints the median and range of each.
set -euo pipefail
build=${1:-build}
rounds=${2:-5}
dev=${RXE_VM_DEV:-rxe0} gid=${RXE_VM_GID_V2_IPV4:-1} ip=${RXE_VM_IP:-10.99.0.1}
perf="$build/apps/eccl-perf/eccl-perf"
out=$(mktemp -d)
port=18515

perftest() {  # perftest TOOL ARGS...: runs the server and the client, prints the client's output
  local tool=$1
  shift
  port=$((port + 1))
  "$tool" -d "$dev" -x "$gid" -F -p "$port" "$@" > "$out/server.log" 2>&1 &
  local server=$!
  sleep 1
  "$tool" -d "$dev" -x "$gid" -F -p "$port" "$@" "$ip" 2>&1
  wait "$server"
}

for ((round = 1; round <= rounds; round++)); do
  perftest ib_send_lat -s 8 -n 2000 | awk '$1 == 8 && NF >= 5 {print $5}' >> "$out/lat_ib"
  "$perf" --transport verbs -o pingpong -b 8 -e 8 -n 2000 -w 100 -r 2 | awk '$1 == 8 {print $2}' >> "$out/lat_eccl"
  for size in 65536 1048576 4194304; do
    perftest ib_write_bw -s "$size" -n 100 | awk -v s="$size" '$1 == s {print $4}' >> "$out/bw_ib_$size"
    "$perf" --transport verbs -o bandwidth -b "$size" -e "$size" -n 3 -w 1 -r 2 --register |
      awk -v s="$size" '$1 == s {print $3 * 1000}' >> "$out/bw_reg_$size"
    "$perf" --transport verbs -o bandwidth -b "$size" -e "$size" -n 3 -w 1 -r 2 |
      awk -v s="$size" '$1 == s {print $3 * 1000}' >> "$out/bw_eccl_$size"
  done
done

summary() {  # summary FILE: "median (min–max)"
  sort -g "$1" | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f (%.1f–%.1f)", m, v[1], v[NR]}'
}
echo "# $rounds interleaved rounds on $dev (Soft-RoCE under qemu TCG)"
echo "8-byte latency, µs:      ib_send_lat $(summary "$out/lat_ib")   eccl pingpong $(summary "$out/lat_eccl")"
for size in 65536 1048576 4194304; do
  echo "bandwidth $size B, MB/s: ib_write_bw $(summary "$out/bw_ib_$size")   eccl bandwidth registered $(summary "$out/bw_reg_$size")   per message $(summary "$out/bw_eccl_$size")"
done
rm -rf "$out"
