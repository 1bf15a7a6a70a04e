#!/bin/bash
# usage: [GEOKV=path/geokv] [OUT=dir] scripts/profile/record.sh put|get
# Runs `geokv bench cost` for one c=32 phase (40 s) and records the three
# node processes with DWARF call graphs (perf, 99 Hz) for 15 s mid-phase.
# Then: perf script --no-inline -i OUT/PHASE.perf.data | collapse.py | trim.py > f;
# categories.py f; flame.py TITLE < f > f.svg
phase=$1; out=${OUT:-prof}; mkdir -p $out
B=${GEOKV:-target/debug/geokv}
$B bench cost --node-exe ${GEOKV:-target/debug/geokv} --rounds 1 --phases $phase --duration-secs 40 --records 5000 > $out/$phase.bench.txt 2>&1 &
bp=$!
for i in $(seq 1 120); do
  pids=$(pgrep -f "$B node" | tr '\n' ',' | sed 's/,$//')
  n=$(echo $pids | tr ',' '\n' | grep -c .)
  [ "$n" -ge 3 ] && break; sleep 1
done
echo "pids $pids" > $out/$phase.pids
sleep 8
perf record --call-graph dwarf,16384 -F 99 -p $pids -o $out/$phase.perf.data -- sleep 15 > $out/$phase.perf.log 2>&1
wait $bp
echo done
