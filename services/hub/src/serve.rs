//! The end of serving: open connections are given a while to finish, then closed.

use std::time::Duration;

use tracing::warn;

/// How long the server waits, once the hub has stopped everything else, for open
/// connections to finish their calls and close. A client that keeps an idle connection
/// open must not keep the hub from stopping (seen in a test: its own channel, over TLS).
pub const CONNECTIONS_DRAIN: Duration = Duration::from_secs(10);

/// The server's end: its graceful shutdown, cut short after [`CONNECTIONS_DRAIN`].
pub(crate) async fn drain_connections<T>(
    mut serving: tokio::task::JoinHandle<Result<(), T>>,
) -> Result<Result<(), T>, tokio::task::JoinError> {
    match tokio::time::timeout(CONNECTIONS_DRAIN, &mut serving).await {
        Ok(served) => served,
        Err(_) => {
            warn!(
                "connections still open {CONNECTIONS_DRAIN:?} after the hub stopped serving; \
                 closing them"
            );
            serving.abort();
            let _ = serving.await;
            Ok(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_ended_answers_at_once_and_one_still_draining_is_closed() {
        let ended = tokio::spawn(async { Err::<(), &str>("failed") });
        assert_eq!(
            drain_connections(ended).await.expect("joined"),
            Err("failed")
        );
        // A connection that never closes: the stop still ends (after the drain time).
        let stuck = tokio::spawn(std::future::pending::<Result<(), &str>>());
        assert_eq!(drain_connections(stuck).await.expect("closed"), Ok(()));
    }
}
