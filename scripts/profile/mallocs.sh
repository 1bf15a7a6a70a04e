#!/bin/bash
# usage: [OUT=dir] scripts/profile/mallocs.sh EXE put|get TAG
# Counts glibc malloc calls of the three nodes during `bench cost` (a
# uprobe: once `perf probe -x /lib/x86_64-linux-gnu/libc.so.6 malloc`):
# total / (2000 loaded + the phase's ops) = mallocs per operation. The
# uprobe slows the nodes; the count per op is what matters.
exe=$1; phase=$2; tag=$3; out=${OUT:-alloc}; mkdir -p $out
$exe bench cost --node-exe $exe --rounds 1 --phases $phase --duration-secs 20 --records 2000 > $out/$tag.bench.txt 2>&1 &
bp=$!
for i in $(seq 1 120); do
  pids=$(pgrep -f "$exe node" | tr '\n' ',' | sed 's/,$//')
  n=$(echo $pids | tr ',' '\n' | grep -c .)
  [ "$n" -ge 3 ] && break; sleep 0.5
done
perf stat -e probe_libc:malloc -I 1000 -p $pids -o $out/$tag.stat.txt &
sp=$!
wait $bp
kill -INT $sp; wait $sp
echo done $tag
