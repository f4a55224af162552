//! The order-replies function's SQS messages: each validator's reply (an EventBridge envelope)
//! or a decision deadline's timer, read into a `Reply` and applied by the use case
//! (`crate::app::apply_reply`) through the one batch processor.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::language::events::{
    ConsumerValidated, ConsumerValidationFailed, Event, EventMeta, OrderCreated,
    OrderDetailsValidated, OrderDetailsValidationFailed,
};
use shared::platform::batch::{self, Handler};
use shared::platform::dead_letter::DeadLetters;
use shared::platform::envelope::Envelope;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use crate::app::apply_reply::{Applied, ReplyError, ReplyHandler};
use crate::domain::order::Reply;
use crate::ports::orders::OrderStore;
use crate::ports::timers::DeadlineTimer;

/// A reply read out of its message.
pub struct Decoded {
    detail_type: String,
    meta: EventMeta,
    reply: Reply,
}

impl Decoded {
    fn from_message(message: &SqsMessage) -> Result<Self, ReplyError> {
        if let Some(timer) = message.body.as_deref().and_then(DeadlineTimer::from_body) {
            return Ok(Self {
                detail_type: "DecisionDeadline".to_owned(),
                meta: timer.decision_deadline,
                reply: Reply::DeadlinePassed,
            });
        }
        let envelope = Envelope::from_message(message)?;
        let (meta, reply) = decode(&envelope)?;
        Ok(Self {
            detail_type: envelope.detail_type,
            meta,
            reply,
        })
    }
}

/// Reads a reply out of its envelope.
pub fn decode(envelope: &Envelope) -> Result<(EventMeta, Reply), ReplyError> {
    Ok(match envelope.detail_type.as_str() {
        ConsumerValidated::DETAIL_TYPE => {
            let ConsumerValidated { meta, order_limit } = envelope.detail()?;
            let reply = match order_limit {
                Some(limit) => Reply::ConsumerValidatedWithin { limit },
                None => Reply::ConsumerValidated,
            };
            (meta, reply)
        }
        ConsumerValidationFailed::DETAIL_TYPE => {
            let ConsumerValidationFailed { meta, reason } = envelope.detail()?;
            (meta, Reply::ConsumerValidationFailed { reason })
        }
        OrderDetailsValidated::DETAIL_TYPE => {
            let OrderDetailsValidated { meta, total } = envelope.detail()?;
            (meta, Reply::OrderDetailsValidated { total })
        }
        OrderDetailsValidationFailed::DETAIL_TYPE => {
            let OrderDetailsValidationFailed { meta, reasons } = envelope.detail()?;
            (meta, Reply::OrderDetailsValidationFailed { reasons })
        }
        // The deadline as the bus delivered it before decision-timer started timers (messages
        // of that time may still wait in the deadline queue after an upgrade).
        OrderCreated::DETAIL_TYPE => {
            let event: OrderCreated = envelope.detail()?;
            (event.meta, Reply::DeadlinePassed)
        }
        other => return Err(ReplyError::UnexpectedEvent(other.to_owned())),
    })
}

impl<S: OrderStore, D: DeadLetters> ReplyHandler<S, D> {
    /// Applies a batch. Replies to different orders are applied at once; those to one order in
    /// turn, in the order SQS gave them, so that they do not race each other for its version.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        debug!(messages = event.records.len(), "replies received");
        let (response, _) =
            batch::process(self, &event.records, deadline, &self.dead_letters).await;
        response
    }
}

impl<S: OrderStore, D: DeadLetters> Handler for ReplyHandler<S, D> {
    type Message = Decoded;
    type Handled = Applied;
    type Error = ReplyError;

    fn decode(&self, message: &SqsMessage) -> Result<Decoded, ReplyError> {
        Decoded::from_message(message)
    }

    fn subject(&self, reply: &Decoded) -> String {
        reply.meta.order_id.to_string()
    }

    async fn handle(&self, decoded: Decoded) -> Result<Applied, ReplyError> {
        let span = info_span!(
            "apply_reply",
            orderId = %decoded.meta.order_id,
            eventId = %decoded.meta.event_id,
            reply = %decoded.detail_type,
            correlationId = decoded.meta.correlation_id.as_deref().unwrap_or_default(),
        );
        self.apply_reply(&decoded.meta, &decoded.reply)
            .instrument(span)
            .await
    }
}
