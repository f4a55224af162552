//! The order-notifier function's SQS messages: each decision (`OrderValidated`,
//! `OrderRejected`), read and delivered by the use case (`crate::app::deliver_outcome`) through
//! the one batch processor; a failed delivery waits longer each time it is tried again.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::language::events::{Event, EventMeta, OrderRejected, OrderValidated};
use shared::platform::batch::{self, Handler, RetryLater};
use shared::platform::dead_letter::DeadLetters;
use shared::platform::envelope::Envelope;
use tokio::time::Instant;

use crate::app::deliver_outcome::{Notifier, NotifyError, retry_delay};
use crate::ports::deliverer::Deliverer;
use crate::ports::orders::OrderStore;
use crate::ports::resolver::Resolver;
use crate::ports::webhook_generations::GenerationStore;

impl<S: OrderStore + GenerationStore, R: Resolver, D: Deliverer, L: DeadLetters, T: RetryLater>
    Notifier<S, R, D, L, T>
{
    /// Delivers a batch: each outcome at once, each within the invocation's time, so that one
    /// slow receiver cannot make its neighbours' deliveries time out.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let (response, _) = batch::process_with(
            self,
            &event.records,
            deadline,
            &self.dead_letters,
            &self.retry_later,
        )
        .await;
        response
    }
}

/// A decision to deliver, read out of its message.
pub struct Decided {
    detail_type: String,
    meta: EventMeta,
}

impl<S: OrderStore + GenerationStore, R: Resolver, D: Deliverer, L: DeadLetters, T: RetryLater>
    Handler for Notifier<S, R, D, L, T>
{
    type Message = Decided;
    type Handled = ();
    type Error = NotifyError;

    fn decode(&self, message: &SqsMessage) -> Result<Decided, NotifyError> {
        let envelope = Envelope::from_message(message)?;
        // Only the metadata: the delivery reads the order itself, so an outcome of any version
        // (one written before `outcomeDelivery`, say) is delivered all the same.
        let meta = match envelope.detail_type.as_str() {
            OrderValidated::DETAIL_TYPE | OrderRejected::DETAIL_TYPE => {
                envelope.detail::<EventMeta>()?
            }
            other => return Err(NotifyError::UnexpectedEvent(other.to_owned())),
        };
        Ok(Decided {
            detail_type: envelope.detail_type,
            meta,
        })
    }

    fn subject(&self, decided: &Decided) -> String {
        decided.meta.order_id.to_string()
    }

    fn retry_delay(&self, receives: u32) -> Option<Duration> {
        Some(retry_delay(receives))
    }

    async fn handle(&self, decided: Decided) -> Result<(), NotifyError> {
        self.deliver(&decided.detail_type, &decided.meta).await
    }
}
