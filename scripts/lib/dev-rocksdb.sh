# Sourced by scripts/release and scripts/fuzz: `reuse_dev_rocksdb DIR`
# points librocksdb-sys at the librocksdb.a the dev profile already compiled
# (in $CARGO_TARGET_DIR, as scripts/env.sh sets it) instead of compiling
# RocksDB's C++ again (20+ minutes on two cores) for another profile or
# target directory. The dev profile builds dependencies as release does
# (opt-level 3, no debug info: -O3 -DNDEBUG), so its RocksDB objects are the
# ones a release build makes. librocksdb-sys then links it as a "system"
# RocksDB and compiles its small C-API shim on its own (its portable
# variant). Copies the archive to DIR and exports ROCKSDB_LIB_DIR,
# ROCKSDB_STATIC and ROCKSDB_INCLUDE_DIR; returns 1, saying why, when there
# is nothing to reuse.
reuse_dev_rocksdb() {
  local dir="$1" version out="" o src shim
  # The dev profile must still build dependencies as release does.
  if ! grep -A2 '^\[profile.dev.package."\*"\]' Cargo.toml | grep -q '^opt-level = 3' \
    || ! grep -A2 '^\[profile.dev.package."\*"\]' Cargo.toml | grep -q '^debug = false'; then
    echo "[profile.dev.package.\"*\"] is not opt-level 3 without debug info" >&2
    return 1
  fi
  version=$(grep -A1 '^name = "rust-librocksdb-sys"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
  for o in "$CARGO_TARGET_DIR"/debug/build/rust-librocksdb-sys-*/output; do
    if [ -f "$o" ] && grep -q "cargo_manifest_dir=.*/rust-librocksdb-sys-$version\$" "$o" \
      && [ -f "$(dirname "$o")/out/librocksdb.a" ]; then
      out=$(dirname "$o")
    fi
  done
  if [ -z "$out" ]; then
    echo "no dev-profile librocksdb.a of rust-librocksdb-sys $version (run cargo build first)" >&2
    return 1
  fi
  src=$(sed -n 's/^cargo::metadata=cargo_manifest_dir=//p' "$out/output")
  mkdir -p "$dir"
  cp "$out/out/librocksdb.a" "$dir/librocksdb.a"
  # The vendored build compiled the C-API shim into the archive; the shim
  # librocksdb-sys compiles for a system RocksDB must be the only copy.
  shim=$(ar t "$dir/librocksdb.a" | grep -- '-c_api_extensions\.o$' || true)
  # shellcheck disable=SC2086
  [ -z "$shim" ] || ar d "$dir/librocksdb.a" $shim
  export ROCKSDB_LIB_DIR="$dir" ROCKSDB_STATIC=1 ROCKSDB_INCLUDE_DIR="$src/rocksdb/include"
  echo "linking $out/out/librocksdb.a (dev profile, rust-librocksdb-sys $version)"
}
