//! The infoshare gRPC API (`infoshare.v1`), generated from `proto/infoshare/v1/*.proto`.
//!
//! The `.proto` files are the contract; this crate only makes them usable from Rust.
//!
//! Feature `grpc` (on by default) adds the tonic service traits and clients; without it the
//! crate is the messages alone (what `infoshare-core` reads its input from).

#![forbid(unsafe_code)]

/// Package `infoshare.v1`: messages, enums, and (feature `grpc`) server traits and clients.
#[allow(clippy::doc_lazy_continuation, clippy::doc_overindented_list_items)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/infoshare.v1.rs"));
}

/// Package `infoshare.bench.v1`: the echo service the benchmark measures the raw transport with.
/// Not part of the API; no broker serves it.
pub mod bench {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/infoshare.bench.v1.rs"));
    }
}

/// The encoded `FileDescriptorSet` of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/infoshare_descriptor.bin"));
