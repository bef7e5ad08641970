//! One LISTEN connection per store, turning NOTIFY payloads into [`StoreEvent`]s.
//!
//! Notifications only cut latency: everything that waits on them also polls. After a
//! reconnect the listener re-LISTENs and sends [`StoreEvent::Resync`], because anything
//! notified while it was away is lost.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

use crate::store::StoreEvent;

/// The channel every durable notification goes to.
pub const CHANNEL: &str = "durable";

/// Runs until `stop` is cancelled, reconnecting with a capped backoff. `tls` is the store's
/// connector, so this connection is as protected as the pool's.
pub async fn run(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    events: broadcast::Sender<StoreEvent>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            result = listen_once(&config, &tls, &events) => {
                match result {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(err) => tracing::warn!(error = %err, "LISTEN connection failed; polling covers the gap"),
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Listens on one connection until it ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    events: &broadcast::Sender<StoreEvent>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    // The connection must be driven while LISTEN runs, so poll both until LISTEN returns.
    loop {
        tokio::select! {
            done = &mut listen => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(message)) => forward(message, events),
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            }
        }
    }
    let _ = events.send(StoreEvent::Resync);
    while let Some(message) = messages.next().await {
        forward(message?, events);
    }
    Ok(())
}

fn forward(message: AsyncMessage, events: &broadcast::Sender<StoreEvent>) {
    if let AsyncMessage::Notification(n) = message
        && let Some(event) = parse(n.payload())
    {
        // No subscribers is fine: nobody is waiting.
        let _ = events.send(event);
    }
}

/// Payloads are `ready:<workflow name>` and `done:<run id>`.
fn parse(payload: &str) -> Option<StoreEvent> {
    let (kind, rest) = payload.split_once(':')?;
    match kind {
        "ready" => Some(StoreEvent::RunReady(rest.to_owned())),
        "done" => rest.parse().ok().map(StoreEvent::RunFinished),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_payloads() {
        assert_eq!(
            parse("ready:checkout"),
            Some(StoreEvent::RunReady("checkout".into()))
        );
        let id = crate::RunId::new();
        assert_eq!(
            parse(&format!("done:{id}")),
            Some(StoreEvent::RunFinished(id))
        );
        assert_eq!(parse("done:not-a-uuid"), None);
        assert_eq!(parse("garbage"), None);
    }
}
