# Sourced by the scripts: one build directory outside the clone, shared by
# every checkout, so RocksDB's C++ is compiled once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/geokv/target}"
GEOKV_BIN="$CARGO_TARGET_DIR/debug/geokv"
