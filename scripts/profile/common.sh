#!/bin/bash
# Sourced by record.sh and mallocs.sh (the preamble they share): starts
# `geokv bench cost` for one phase in the background and finds the three
# node processes it starts. The nodes are found as children of the bench
# process (whose argv[1] is `node`), never by a process-name pattern: other
# clusters may run on the same machine.
#
# start_bench EXE PHASE SECONDS RECORDS OUTFILE POLL
#   sets $bp (the bench's pid) and $pids (the nodes' pids, comma-separated);
#   fails if three nodes are not up after 120 polls of POLL seconds.

# The pids (comma-separated) of PARENT's children that run `<exe> node …`.
node_children() {
  local out= c
  for c in $(pgrep -P "$1"); do
    if tr '\0' ' ' < "/proc/$c/cmdline" 2>/dev/null | awk '{exit !($2 == "node")}'; then
      out="$out${out:+,}$c"
    fi
  done
  echo "$out"
}

start_bench() {
  local exe=$1 phase=$2 secs=$3 records=$4 outfile=$5 poll=$6 i
  "$exe" bench cost --node-exe "$exe" --rounds 1 --phases "$phase" \
    --duration-secs "$secs" --records "$records" > "$outfile" 2>&1 &
  bp=$!
  for i in $(seq 1 120); do
    pids=$(node_children "$bp")
    [ "$(echo "$pids" | tr ',' '\n' | grep -c .)" -ge 3 ] && return 0
    sleep "$poll"
  done
  echo "bench cost (pid $bp) did not start three nodes; see $outfile" >&2
  return 1
}
