//! Compiles `proto/geokv/v1/*.proto` with a vendored `protoc`, so a fresh
//! machine needs no protobuf install. The client API's messages and client
//! stub belong to the SDK (`crates/geokv-client`): here `client.proto` yields
//! only the `Kv` server stub, over the SDK's messages (`extern_path`), and
//! `internode.proto` yields everything.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        std::env::set_var("PROTOC", protoc);
    }
    println!("cargo:rerun-if-changed=proto");
    // The client API's descriptors, served by gRPC reflection on the
    // client port (`proto::CLIENT_DESCRIPTOR_SET`).
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("geokv_client_descriptor.bin");
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".geokv.v1", "::geokv_client::proto::v1")
        .file_descriptor_set_path(descriptors)
        .compile_protos(&["proto/geokv/v1/client.proto"], &["proto"])?;
    tonic_prost_build::configure()
        .compile_protos(&["proto/geokv/v1/internode.proto"], &["proto"])?;
    Ok(())
}
