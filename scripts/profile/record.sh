#!/bin/bash
# usage: [GEOKV=path/geokv] [OUT=dir] scripts/profile/record.sh put|get
# Runs `geokv bench cost` for one c=32 phase (40 s) and records the three
# node processes with DWARF call graphs (perf, 99 Hz) for 15 s mid-phase.
# Then: perf script --no-inline -i OUT/PHASE.perf.data | collapse.py | trim.py > f;
# categories.py f; flame.py TITLE < f > f.svg
. "$(dirname "$0")/common.sh"
phase=$1; out=${OUT:-prof}; mkdir -p $out
start_bench "${GEOKV:-target/debug/geokv}" "$phase" 40 5000 "$out/$phase.bench.txt" 1 || exit 1
echo "pids $pids" > $out/$phase.pids
sleep 8
perf record --call-graph dwarf,16384 -F 99 -p $pids -o $out/$phase.perf.data -- sleep 15 > $out/$phase.perf.log 2>&1
wait $bp
echo done
