//! Outcome delivery: when an order is decided, its outcome is POSTed to the order's callback URL,
//! signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`:
//! `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the consumer's own secret, and during
//! a rotation's overlap under the one before too: `crate::domain::webhook_secrets`). The URL is
//! checked again before each delivery and the connection goes to the addresses just checked.
//! A failed delivery is handed back to SQS (tried again after the visibility timeout, then the
//! DLQ); a redirect is a failure. The messages are read in `crate::entry::sqs::outcomes`.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use shared::language::events::{Event, EventMeta, OrderValidated};
use shared::platform::aws_error::{Classified, Retry};
use shared::platform::envelope::EnvelopeError;
use shared::platform::metrics::{self, Unit};
use tracing::{Instrument, debug, info_span};

use crate::app::callbacks::{Callbacks, CheckError};
use crate::domain::order::Order;
use crate::ports::deliverer::Deliverer;
use crate::ports::master_secret::{MasterSecret, SecretError};
use crate::ports::orders::{OrderStore, StoreError};
use crate::ports::resolver::Resolver;
use crate::ports::webhook_generations::GenerationStore;

/// The wait before a failed delivery is tried again: 10 s after the first try, doubling, at most
/// 5 minutes (with the queue's 5 receives: tries at about 0, 10, 30, 70 and 150 s).
pub fn retry_delay(receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(5);
    Duration::from_secs((10u64 << doublings).min(300))
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0} is not an outcome this function delivers")]
    UnexpectedEvent(String),
    #[error("order {0} does not exist")]
    UnknownOrder(uuid::Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("at delivery, {0}")]
    Callback(#[from] CheckError),
    #[error("delivery failed: {0}")]
    Delivery(String),
    #[error("the signing secret could not be read: {0}")]
    Secret(#[from] SecretError),
}

impl Classified for NotifyError {
    /// A message that can never be delivered goes to the DLQ at once; a failed delivery is
    /// tried again.
    fn retry(&self) -> Retry {
        match self {
            NotifyError::Envelope(_)
            | NotifyError::UnexpectedEvent(_)
            | NotifyError::UnknownOrder(_)
            | NotifyError::Callback(CheckError::Refused(_)) => Retry::Never,
            // The name may resolve on the next try; a name that does not exist is refused.
            NotifyError::Callback(CheckError::Unresolved { .. }) => Retry::Transient,
            NotifyError::Store(store) => store.retry(),
            NotifyError::Secret(secret) => secret.retry(),
            NotifyError::Delivery(_) => Retry::Transient,
        }
    }
}

pub struct Notifier<S, R, D, L, T> {
    pub store: S,
    pub callbacks: Callbacks<R>,
    pub deliverer: D,
    pub secret: MasterSecret,
    pub dead_letters: L,
    pub retry_later: T,
}

/// What the order's callback receives.
fn payload(detail_type: &str, meta: &EventMeta, order: &Order) -> Value {
    let kind = match detail_type {
        OrderValidated::DETAIL_TYPE => "order.validated",
        _ => "order.rejected",
    };
    let mut data = json!({"orderId": order.order_id, "status": order.status,
                          "decidedAt": order.history.last().map(|c| c.at)});
    if let Some(total) = &order.total {
        data["total"] = json!(total);
    }
    if !order.rejection_reasons.is_empty() {
        data["rejectionReasons"] = json!(order.rejection_reasons);
    }
    json!({"type": kind, "timestamp": meta.occurred_at, "data": data})
}

impl<S: OrderStore + GenerationStore, R: Resolver, D: Deliverer, L, T> Notifier<S, R, D, L, T> {
    /// Delivers the outcome `detail_type` (`OrderValidated` or `OrderRejected`) of the order
    /// `meta` names to its callback URL, if it has one.
    pub async fn deliver(&self, detail_type: &str, meta: &EventMeta) -> Result<(), NotifyError> {
        let span =
            info_span!("deliver_outcome", orderId = %meta.order_id, eventId = %meta.event_id);
        async {
            let order = self
                .store
                .get(meta.order_id)
                .await?
                .ok_or(NotifyError::UnknownOrder(meta.order_id))?;
            let Some(url) = &order.callback_url else {
                return Ok(());
            };
            let target = self.callbacks.check(url).await?;
            let body = payload(detail_type, meta, &order).to_string().into_bytes();
            // The event's id: the same on every retry, so the receiver can drop duplicates.
            let id = meta.event_id.to_string();
            let now = Utc::now();
            let generations = self.store.generations(&order.consumer_id).await?;
            let signature = self.secret.get().await?.signature_header(
                &order.consumer_id,
                &generations.signing(now),
                &id,
                now.timestamp(),
                &body,
            );
            let headers = vec![
                ("content-type", "application/json".to_owned()),
                ("webhook-id", id),
                ("webhook-timestamp", now.timestamp().to_string()),
                ("webhook-signature", signature),
            ];
            let status = self
                .deliverer
                .post(&target, headers, body)
                .await
                .map_err(NotifyError::Delivery)?;
            if !(200..300).contains(&status) {
                // Redirects included: following one would go where nobody checked.
                return Err(NotifyError::Delivery(format!(
                    "the receiver answered {status}"
                )));
            }
            debug!(status, "outcome delivered");
            metrics::measure(&[("OutcomesDelivered", Unit::Count, 1.0)]);
            Ok(())
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::orders::MemoryStore;
    use crate::domain::callback_urls::{Checked, Policy};
    use crate::domain::order::{Order, Reply, Transition, apply};
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use shared::language::events::{OrderRejected, OutcomeDelivery};
    use shared::language::outbox::OutboxRecord;
    use shared::platform::batch::RetryLater;
    use shared::platform::dead_letter::memory::MemoryDeadLetters;
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;
    use uuid::Uuid;

    /// Every name resolves to what it holds.
    struct Resolves(Result<Vec<IpAddr>, crate::ports::resolver::ResolveError>);

    impl Resolver for Resolves {
        async fn resolve(
            &self,
            _host: &str,
        ) -> Result<Vec<IpAddr>, crate::ports::resolver::ResolveError> {
            self.0.clone()
        }
    }

    /// Each delivery's headers and body.
    type Deliveries = Arc<Mutex<Vec<(Vec<(&'static str, String)>, Vec<u8>)>>>;

    /// Records each delivery and answers with a fixed status; never answers for
    /// `slow.example.com`.
    #[derive(Clone)]
    struct Receiver {
        status: u16,
        got: Deliveries,
    }

    impl Deliverer for Receiver {
        async fn post(
            &self,
            target: &Checked,
            headers: Vec<(&'static str, String)>,
            body: Vec<u8>,
        ) -> Result<u16, String> {
            if target.uri.host() == Some("slow.example.com") {
                std::future::pending::<()>().await;
            }
            self.got.lock().unwrap().push((headers, body));
            Ok(self.status)
        }
    }

    async fn decided(store: &MemoryStore, callback_url: Option<&str>) -> (Uuid, String) {
        let id = Uuid::now_v7();
        let mut order = Order::place(id, "c".into(), "r".into(), vec![], Utc::now());
        order.callback_url = callback_url.map(str::to_owned);
        let created = OutboxRecord::of(&shared::language::events::OrderCreated {
            meta: EventMeta::new(id, None),
            consumer_id: "c".into(),
            restaurant_id: "r".into(),
            line_items: vec![],
            total: None,
        })
        .unwrap();
        store.place(&order, &created, None).await.unwrap();
        let Transition::Changed { order: next } = apply(
            &order,
            &Reply::ConsumerValidationFailed {
                reason: "suspended".into(),
            },
            Utc::now(),
        ) else {
            unreachable!()
        };
        store.save(&next, 1, None).await.unwrap();
        let event = OrderRejected {
            meta: EventMeta::new(id, None),
            reasons: vec!["suspended".into()],
            outcome_delivery: if callback_url.is_some() {
                OutcomeDelivery::Callback
            } else {
                OutcomeDelivery::None
            },
        };
        let body =
            json!({"version": "0", "id": "x", "detail-type": "OrderRejected", "source": "orders",
            "time": "2026-11-27T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": serde_json::to_value(&event).unwrap()})
            .to_string();
        (id, body)
    }

    /// How many of a batch of one message (`body`) `notifier` hands back to the queue.
    async fn failures(notifier: &TestNotifier, body: String) -> usize {
        let response = notifier.handle_batch(sqs_event(body), unhurried()).await;
        response.batch_item_failures.len()
    }

    fn unhurried() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// One message as Lambda delivers it (the corpus's record shape), as `m-1`.
    fn sqs_event(body: String) -> SqsEvent {
        let mut event = shared::testing::corpus::sqs_records(&[body]);
        event.records[0].message_id = Some("m-1".into());
        event
    }

    /// Records each retry put off, with its delay.
    #[derive(Clone, Default)]
    struct PutOff(Arc<Mutex<Vec<(String, Duration)>>>);

    impl RetryLater for PutOff {
        async fn retry_after(&self, message: &SqsMessage, delay: Duration) {
            let id = message.message_id.clone().unwrap_or_default();
            self.0.lock().unwrap().push((id, delay));
        }
    }

    type TestNotifier = Notifier<MemoryStore, Resolves, Receiver, MemoryDeadLetters, PutOff>;

    fn notifier(
        store: MemoryStore,
        address: &str,
        status: u16,
    ) -> (TestNotifier, Receiver, MemoryDeadLetters) {
        let receiver = Receiver {
            status,
            got: Arc::default(),
        };
        let dead_letters = MemoryDeadLetters::default();
        let notifier = Notifier {
            store,
            callbacks: Callbacks {
                policy: Policy::default(),
                resolver: Arc::new(Resolves(Ok(vec![address.parse().unwrap()]))),
            },
            deliverer: receiver.clone(),
            secret: MasterSecret::known(b"master-test".to_vec()),
            dead_letters: dead_letters.clone(),
            retry_later: PutOff::default(),
        };
        (notifier, receiver, dead_letters)
    }

    #[tokio::test]
    async fn an_outcome_written_before_outcome_delivery_existed_is_delivered_too() {
        let store = MemoryStore::default();
        let (id, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
        let mut envelope: Value = serde_json::from_str(&body).unwrap();
        let detail = envelope["detail"].as_object_mut().unwrap();
        assert!(detail.remove("outcomeDelivery").is_some());
        let (notifier, receiver, dead_letters) = notifier(store, "93.184.215.14", 204);
        assert_eq!(failures(&notifier, envelope.to_string()).await, 0);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
        let got = receiver.got.lock().unwrap().clone();
        let sent: Value = serde_json::from_slice(&got[0].1).unwrap();
        assert_eq!(sent["data"]["orderId"], id.to_string());
    }

    #[tokio::test]
    async fn a_decided_order_is_posted_to_its_callback_signed() {
        let store = MemoryStore::default();
        let (id, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
        let (notifier, receiver, dead_letters) = notifier(store, "93.184.215.14", 204);
        let response = notifier.handle_batch(sqs_event(body), unhurried()).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(dead_letters.sent.lock().unwrap().is_empty());
        let got = receiver.got.lock().unwrap().clone();
        let [(headers, body)] = got.as_slice() else {
            panic!("{got:?}")
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        // Signed with the order's consumer's own secret, of its first generation.
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        let keyring = crate::domain::webhook_secrets::Keyring(b"master-test");
        assert_eq!(
            header("webhook-signature"),
            keyring.signature_header("c", &[1], &header("webhook-id"), timestamp, body)
        );
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["type"], "order.rejected");
        assert_eq!(sent["data"]["orderId"], id.to_string());
        assert_eq!(sent["data"]["rejectionReasons"], json!(["suspended"]));
    }

    #[tokio::test]
    async fn after_a_rotation_deliveries_carry_the_new_and_the_old_signature() {
        let store = MemoryStore::default();
        let (_, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
        store.rotate("c", Utc::now()).await.unwrap();
        let (notifier, receiver, _) = notifier(store, "93.184.215.14", 204);
        notifier.handle_batch(sqs_event(body), unhurried()).await;
        let got = receiver.got.lock().unwrap().clone();
        let (headers, body) = &got[0];
        let value = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        let keyring = crate::domain::webhook_secrets::Keyring(b"master-test");
        let (id, timestamp) = (
            value("webhook-id"),
            value("webhook-timestamp").parse().unwrap(),
        );
        assert_eq!(
            value("webhook-signature"),
            keyring.signature_header("c", &[2, 1], &id, timestamp, body)
        );
    }

    #[tokio::test]
    async fn the_secret_is_read_once_and_only_when_a_delivery_signs() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let secret = MasterSecret::read_with(move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                // The first read fails (Secrets Manager unreachable): tried again next time.
                if n == 0 {
                    Err(shared::platform::aws_error::AwsError::coded(
                        "SecretsManager.GetSecretValue",
                        "InternalServiceError",
                        500,
                        "unreachable",
                    )
                    .into())
                } else {
                    Ok(b"whsec-test".to_vec())
                }
            }
        });
        let store = MemoryStore::default();
        let (_, unsigned) = decided(&store, None).await;
        let (_, signed) = decided(&store, Some("https://hooks.example.com/orders")).await;
        let (mut notifier, receiver, _) = notifier(store, "93.184.215.14", 204);
        notifier.secret = secret;

        assert_eq!(failures(&notifier, unsigned).await, 0);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
        let failed = notifier
            .handle_batch(sqs_event(signed.clone()), unhurried())
            .await;
        assert_eq!(failed.batch_item_failures.len(), 1, "tried again later");
        for _ in 0..2 {
            assert_eq!(failures(&notifier, signed.clone()).await, 0);
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(receiver.got.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_receiver_is_cut_at_the_deadline_and_its_neighbours_are_delivered() {
        let store = MemoryStore::default();
        let (_, slow) = decided(&store, Some("https://slow.example.com/orders")).await;
        let (_, quick) = decided(&store, Some("https://hooks.example.com/orders")).await;
        let (notifier, receiver, dead_letters) = notifier(store, "93.184.215.14", 204);
        let mut event = shared::testing::corpus::sqs_records(&[slow, quick]);
        event.records[0].message_id = Some("slow".into());
        event.records[1].message_id = Some("quick".into());
        let started = Instant::now();
        let response = notifier
            .handle_batch(event, Instant::now() + Duration::from_millis(300))
            .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["slow"]);
        assert_eq!(receiver.got.lock().unwrap().len(), 1);
        assert!(dead_letters.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_name_gone_is_dead_lettered_and_a_resolver_failing_is_tried_again_later() {
        use crate::ports::resolver::ResolveError;
        for (answer, dead) in [
            (ResolveError::NoSuchHost, true),
            (ResolveError::Failed("SERVFAIL".into()), false),
        ] {
            let store = MemoryStore::default();
            let (_, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
            let (mut notifier, receiver, dead_letters) = notifier(store, "93.184.215.14", 204);
            notifier.callbacks.resolver = Arc::new(Resolves(Err(answer.clone())));
            let response = notifier.handle_batch(sqs_event(body), unhurried()).await;
            assert!(receiver.got.lock().unwrap().is_empty());
            let sent = dead_letters.sent.lock().unwrap().clone();
            let put_off = notifier.retry_later.0.lock().unwrap().clone();
            if dead {
                assert!(response.batch_item_failures.is_empty());
                assert!(sent[0].1.contains("does not resolve"), "{sent:?}");
            } else {
                assert_eq!(response.batch_item_failures.len(), 1, "{answer}");
                assert!(sent.is_empty(), "{sent:?}");
                assert_eq!(put_off, [("m-1".to_owned(), retry_delay(1))]);
            }
        }
    }

    #[tokio::test]
    async fn no_callback_no_delivery() {
        let store = MemoryStore::default();
        let (_, body) = decided(&store, None).await;
        let (notifier, receiver, _) = notifier(store, "93.184.215.14", 204);
        assert_eq!(failures(&notifier, body).await, 0);
        assert!(receiver.got.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_callback_now_resolving_inside_the_network_is_dead_lettered_unsent() {
        let store = MemoryStore::default();
        let (_, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
        let (notifier, receiver, dead_letters) = notifier(store, "10.0.0.8", 204);
        assert_eq!(failures(&notifier, body).await, 0);
        assert!(receiver.got.lock().unwrap().is_empty());
        let sent = dead_letters.sent.lock().unwrap().clone();
        assert!(
            sent[0].1.contains("at delivery, callback URL refused")
                && sent[0].1.contains("private"),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn an_error_or_a_redirect_is_tried_again_later_and_later() {
        for (status, receives, delay) in [(500, "1", 10), (302, "2", 20), (404, "4", 80)] {
            let store = MemoryStore::default();
            let (_, body) = decided(&store, Some("https://hooks.example.com/orders")).await;
            let (notifier, _, dead_letters) = notifier(store, "93.184.215.14", status);
            let mut event = sqs_event(body);
            event.records[0]
                .attributes
                .insert("ApproximateReceiveCount".into(), receives.into());
            let response = notifier.handle_batch(event, unhurried()).await;
            assert_eq!(response.batch_item_failures.len(), 1, "{status}");
            assert!(dead_letters.sent.lock().unwrap().is_empty());
            let put_off = notifier.retry_later.0.lock().unwrap().clone();
            assert_eq!(
                put_off,
                [("m-1".to_owned(), Duration::from_secs(delay))],
                "{status}"
            );
        }
        assert_eq!(retry_delay(0), Duration::from_secs(10));
        assert_eq!(retry_delay(9), Duration::from_secs(300));
    }
}
