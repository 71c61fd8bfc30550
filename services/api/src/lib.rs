//! The hub's public API: protobuf types and tonic services generated from `proto/`, the
//! encoded descriptor set for reflection, and the one mapping from service errors to gRPC
//! statuses.

pub mod aggregate;
mod convert;
mod error;
pub mod identity;
#[cfg(test)]
mod roundtrip;
#[cfg(test)]
mod roundtrip_care;
#[cfg(test)]
mod roundtrip_grant;
pub mod upcast;

pub use convert::*;
pub use error::ApiError;

/// Package `gov.hub.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs)]
    tonic::include_proto!("gov.hub.v1");
}

/// The encoded `FileDescriptorSet` of `gov.hub.v1` and its imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gov_hub_v1_descriptor");
