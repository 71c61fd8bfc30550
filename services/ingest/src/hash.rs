//! The hash of a command's content: what tells a retry (same content) from a request id
//! reused for something else.

use prost::Message;
use sha2::{Digest, Sha256};

/// SHA-256 over the RPC's name and the request without its request id, hex, first 16 bytes.
pub fn command_hash<M: Message + Clone>(
    rpc: &str,
    request: &M,
    clear_request_id: impl FnOnce(&mut M),
) -> String {
    let mut content = request.clone();
    clear_request_id(&mut content);
    let mut hasher = Sha256::new();
    hasher.update(rpc.as_bytes());
    hasher.update([0]);
    hasher.update(content.encode_to_vec());
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use hub_api::v1::RateCaseRequest;

    use super::*;

    fn rate(request_id: &str, rating: u32) -> RateCaseRequest {
        RateCaseRequest {
            request_id: request_id.into(),
            case_id: "c".into(),
            expected_version: None,
            rating,
        }
    }

    #[test]
    fn the_hash_ignores_the_request_id_and_sees_the_content_and_the_rpc() {
        let clear = |r: &mut RateCaseRequest| r.request_id.clear();
        let a = command_hash("RateCase", &rate("r1", 4), clear);
        assert_eq!(a, command_hash("RateCase", &rate("r2", 4), clear));
        assert_ne!(a, command_hash("RateCase", &rate("r1", 5), clear));
        assert_ne!(a, command_hash("OtherRpc", &rate("r1", 4), clear));
        assert_eq!(a.len(), 32);
    }
}
