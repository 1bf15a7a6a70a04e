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
    // A replica write's key, record and plan digest as `bytes::Bytes`: the
    // copy a lane keeps of a batch for a resend as single writes is a
    // reference count, not a copy of every write in flight (issue 14).
    let write = ".geokv.v1.internode.ReplicaWriteRequest";
    tonic_prost_build::configure()
        .bytes(format!("{write}.key"))
        .bytes(format!("{write}.record"))
        .bytes(format!("{write}.layout_digest"))
        .compile_protos(&["proto/geokv/v1/internode.proto"], &["proto"])?;
    Ok(())
}
