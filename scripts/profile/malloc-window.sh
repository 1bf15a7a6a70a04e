#!/bin/bash
# usage: [OUT=dir] scripts/profile/malloc-window.sh EXE put|get TAG [SECS]
# Mallocs per request in a window inside the c=32 phase: perf stat of the
# malloc uprobe over the three nodes for SECS seconds, divided by the
# requests the nodes counted (geokv_requests_total, admin /metrics) in the
# same window (the admin ports that answer /metrics). RocksDB flushes and
# compactions in the window count too (C++ operator new): +-15 %.
exe=$1; phase=$2; tag=$3; secs=${4:-8}; out=${OUT:-alloc}; mkdir -p $out
. "$(dirname "$0")/common.sh"
# The nodes are the bench's own children (common.sh), never a process-name
# pattern: other clusters may run on the same machine.
start_bench "$exe" "$phase" 25 2000 "$out/$tag.bench.txt" 0.5 || exit 1
sleep 2
cands=$(for p in $(echo $pids | tr ',' ' '); do ss -ltnpH | grep "pid=$p," | awk '{print $4}'; done)
admins=$(for a in $cands; do curl -s -m 1 http://$a/metrics 2>/dev/null | grep -q "^# TYPE" && echo $a; done)
echo "admin ports: $admins" >&2
reqs() { local s=0; for a in $admins; do v=$(curl -s -m 2 http://$a/metrics 2>/dev/null | grep "^geokv_requests_total{" | grep "op=\"$phase\"" | awk '{s+=$2} END {print s+0}'); s=$((s+${v:-0})); done; echo $s; }
# wait until the phase runs (requests of the phase are counted)
for i in $(seq 1 60); do [ "$(reqs)" -gt 500 ] && break; sleep 1; done
sleep 2
r0=$(reqs)
perf stat -x, -e probe_libc:malloc -p $pids -o $out/$tag.win.txt -- sleep $secs
r1=$(reqs)
wait $bp
m=$(grep probe_libc $out/$tag.win.txt | cut -d, -f1)
echo "$tag requests=$((r1-r0)) mallocs=$m per_request=$(echo "scale=1; $m/($r1-$r0)" | bc)"
