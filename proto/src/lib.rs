//! The infoshare gRPC API (`infoshare.v1`), generated from `proto/infoshare/v1/*.proto`.
//!
//! The `.proto` files are the contract; this crate only makes them usable from Rust.

/// Package `infoshare.v1`: messages, enums, server traits and clients.
#[allow(clippy::doc_lazy_continuation, clippy::doc_overindented_list_items)]
pub mod v1 {
    tonic::include_proto!("infoshare.v1");
}

/// Package `infoshare.bench.v1`: the echo service the benchmark measures the raw transport with.
/// Not part of the API; no broker serves it.
pub mod bench {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("infoshare.bench.v1");
    }
}

/// The encoded `FileDescriptorSet` of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("infoshare_descriptor");
