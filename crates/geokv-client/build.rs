//! Generates the client API (`proto/geokv/v1/client.proto`, shared with the
//! server at the workspace root) with a vendored `protoc`: its messages and
//! the `Kv` client stub, no server stub. A second, test-only output holds the
//! `Kv` server stub over the same messages, for the unit tests' fake nodes.
use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const CLIENT_PROTO: &str = "../../proto/geokv/v1/client.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        std::env::set_var("PROTOC", protoc);
    }
    println!("cargo:rerun-if-changed={CLIENT_PROTO}");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&[CLIENT_PROTO], &[PROTO_ROOT])?;

    let test_out = PathBuf::from(std::env::var("OUT_DIR")?).join("test_server");
    std::fs::create_dir_all(&test_out)?;
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".geokv.v1", "crate::proto::v1")
        .out_dir(&test_out)
        .compile_protos(&[CLIENT_PROTO], &[PROTO_ROOT])?;
    Ok(())
}
