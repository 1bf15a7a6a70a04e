//! Compiles `proto/geokv/v1/*.proto` with a vendored `protoc`, so a fresh
//! machine needs no protobuf install.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        std::env::set_var("PROTOC", protoc);
    }
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/geokv/v1/client.proto",
            "proto/geokv/v1/internode.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
