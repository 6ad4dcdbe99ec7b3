//! The register of information-sharing protocols: their content ([`model`]), following the
//! multi-agency information-sharing protocol template, and their lifecycle ([`register`]).

pub mod model;
pub mod register;

pub use model::{Party, Protocol, SharedCategory};
pub use register::{Entry, ProtocolState, ProtocolStore};
