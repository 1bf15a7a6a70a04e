#!/bin/bash
# usage: [OUT=dir] scripts/profile/mallocs.sh EXE put|get TAG
# Counts glibc malloc calls of the three nodes during `bench cost` (a
# uprobe: once `perf probe -x /lib/x86_64-linux-gnu/libc.so.6 malloc`):
# total / (2000 loaded + the phase's ops) = mallocs per operation. The
# uprobe slows the nodes; the count per op is what matters.
. "$(dirname "$0")/common.sh"
exe=$1; phase=$2; tag=$3; out=${OUT:-alloc}; mkdir -p $out
start_bench "$exe" "$phase" 20 2000 "$out/$tag.bench.txt" 0.5 || exit 1
perf stat -e probe_libc:malloc -I 1000 -p $pids -o $out/$tag.stat.txt &
sp=$!
wait $bp
kill -INT $sp; wait $sp
echo done $tag
