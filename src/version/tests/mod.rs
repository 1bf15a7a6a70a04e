//! Tests of the version module: the seeds' D1…D5 walk-through and unit
//! cases (`example.rs`), codec cases (`codec.rs`), and property tests over
//! random write/replicate histories with an oracle (`props.rs`).

mod clients;
mod codec;
mod example;
mod props;
