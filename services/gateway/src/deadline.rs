//! How long a read may wait for its position: the call's own deadline (`grpc-timeout`),
//! less a margin to answer in, capped by the hub's configured maximum.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// Time kept back from the client's deadline to send the answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(50);

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long this call may wait for a read model.
pub fn read_wait(metadata: &MetadataMap, max: Duration) -> Duration {
    metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout)
        .map_or(max, |t| t.saturating_sub(ANSWER_MARGIN).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeouts() {
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout("S"), None);
        assert_eq!(grpc_timeout("123456789S"), None);
        assert_eq!(grpc_timeout("5x"), None);
        assert_eq!(grpc_timeout(""), None);
    }

    #[test]
    fn a_read_waits_within_the_callers_deadline_and_the_hubs_cap() {
        let max = Duration::from_secs(10);
        let mut metadata = MetadataMap::new();
        assert_eq!(read_wait(&metadata, max), max);
        metadata.insert("grpc-timeout", "1000m".parse().expect("ascii"));
        assert_eq!(read_wait(&metadata, max), Duration::from_millis(950));
        metadata.insert("grpc-timeout", "1M".parse().expect("ascii"));
        assert_eq!(read_wait(&metadata, max), max);
    }
}
