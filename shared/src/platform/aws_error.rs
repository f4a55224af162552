//! A failed AWS call, classified from the SDK's error metadata (the AWS error code and the HTTP
//! status), never from its text: whether trying again can help decides whether a message is
//! handed back to its queue or dead-lettered with the code.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Whether a failure can go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttled, a 5xx, a timeout, a dropped connection, a conflicting write: try again.
    Transient,
    /// Refused by IAM. A permission just granted takes a while to reach every endpoint, so a
    /// few more tries, then the dead-letter queue with the code.
    AccessDenied,
    /// The request itself is wrong (invalid, about something that does not exist, over a
    /// limit) or so is the data: the same request fails the same way.
    Never,
}

/// A failure that knows whether trying again can help: what the batch processor asks of every
/// handler's error.
pub trait Classified: std::error::Error {
    fn retry(&self) -> Retry;
}

/// Codes that mean "again, later" beyond the SDK's own lists of throttling and transient codes
/// (`aws_runtime::retries::classifiers`): another writer held the item, or the service failed.
const CONFLICT_OR_SERVICE_FAULT: &[&str] = &[
    "TransactionConflictException",
    "TransactionCanceledException",
    "InternalServerError",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    // Lambda's credentials are refreshed by the SDK; an expired one is renewed on the next try.
    "ExpiredToken",
    "ExpiredTokenException",
];

/// IAM's refusals: `AccessDeniedException` (DynamoDB, EventBridge, Secrets Manager's JSON
/// protocol) and `AccessDenied` (SQS's query protocol), per each service's Common Errors page;
/// and a `PutEvents` entry whose source or detail type the role's `events:source` or
/// `events:detail-type` condition refuses (PutEventsResultEntry).
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
];

/// Classifies an error code and HTTP status as AWS documents them: throttles, conflicts and
/// 5xx are transient, IAM's refusals are access denied, any other 4xx is the request's fault.
pub fn classify(code: Option<&str>, status: Option<u16>) -> Retry {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    let coded = |list: &[&str]| code.is_some_and(|code| list.contains(&code));
    if coded(THROTTLING_ERRORS) || coded(TRANSIENT_ERRORS) || coded(CONFLICT_OR_SERVICE_FAULT) {
        return Retry::Transient;
    }
    if coded(ACCESS_DENIED) || status == Some(403) {
        return Retry::AccessDenied;
    }
    match status {
        Some(429) | Some(500..) | None => Retry::Transient,
        Some(_) => Retry::Never,
    }
}

/// A failed AWS call: the operation, the AWS error code if the service answered with one, and
/// the SDK's error as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {}", self.summary())]
pub struct AwsError {
    operation: &'static str,
    code: Option<String>,
    message: Option<String>,
    retry: Retry,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AwsError {
    /// Reads the code and status out of the SDK's error. A request the SDK could not build is
    /// never retried; one that got no parseable answer (timeout, dispatch, response) is.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (code, message) = (
            error.code().map(str::to_owned),
            error.message().map(str::to_owned),
        );
        let retry = match &error {
            SdkError::ConstructionFailure(_) => Retry::Never,
            SdkError::ServiceError(failure) => {
                classify(code.as_deref(), Some(failure.raw().status().as_u16()))
            }
            _ => Retry::Transient,
        };
        Self {
            operation,
            code,
            message,
            retry,
            source: Some(Box::new(error)),
        }
    }

    /// A request the SDK's builder refused (a required field missing): this code's fault.
    pub fn unbuilt(
        operation: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            operation,
            code: None,
            message: None,
            retry: Retry::Never,
            source: Some(Box::new(error)),
        }
    }

    /// A `TransactWriteItems` cancelled for reasons the caller did not handle, judged by its
    /// `CancellationReasons` (TransactWriteItems, API reference): a throttle or a conflict
    /// passes; a validation error, a full item collection or a condition failing never does.
    pub fn cancelled(operation: &'static str, reasons: &[&str]) -> Self {
        let never = [
            "ValidationError",
            "ItemCollectionSizeLimitExceeded",
            "ConditionalCheckFailed",
        ];
        Self {
            operation,
            code: Some("TransactionCanceledException".to_owned()),
            message: Some(format!("cancellation reasons {reasons:?}")),
            retry: match reasons.iter().any(|reason| never.contains(reason)) {
                true => Retry::Never,
                false => Retry::Transient,
            },
            source: None,
        }
    }

    /// An answer with this code and status, as a test double's failure or for an error the SDK
    /// reports per entry (a `PutEvents` entry, a batch's failed message).
    pub fn coded(operation: &'static str, code: &str, status: u16, message: &str) -> Self {
        Self {
            operation,
            code: Some(code.to_owned()),
            message: Some(message.to_owned()),
            retry: classify(Some(code), Some(status)),
            source: None,
        }
    }

    /// The AWS error code (`AccessDeniedException`, `ValidationException`), if AWS answered.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    fn summary(&self) -> String {
        match (&self.code, &self.message, &self.source) {
            (Some(code), Some(message), _) => format!("{code}: {message}"),
            (Some(code), None, _) => code.clone(),
            // No answer from the service: the SDK's own account, with its causes.
            (None, _, Some(source)) => {
                let mut text = source.to_string();
                let mut cause = source.source();
                while let Some(error) = cause {
                    text = format!("{text}: {error}");
                    cause = error.source();
                }
                text
            }
            (None, _, None) => "no answer".to_owned(),
        }
    }
}

impl Classified for AwsError {
    fn retry(&self) -> Retry {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(code: &str, status: u16) -> AwsError {
        let error = GetItemError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("as AWS says it")
                .build(),
        );
        let response = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        AwsError::from_sdk("DynamoDB.GetItem", SdkError::service_error(error, response))
    }

    #[test]
    fn the_code_and_status_decide_not_the_text() {
        for (code, status, retry) in [
            (
                "ProvisionedThroughputExceededException",
                400,
                Retry::Transient,
            ),
            ("ThrottlingException", 400, Retry::Transient),
            ("RequestLimitExceeded", 400, Retry::Transient),
            ("TransactionConflictException", 400, Retry::Transient),
            ("InternalServerError", 500, Retry::Transient),
            ("SomethingNew", 503, Retry::Transient),
            ("AccessDeniedException", 400, Retry::AccessDenied),
            ("AccessDenied", 403, Retry::AccessDenied),
            ("NotAuthorizedForSourceException", 400, Retry::AccessDenied),
            (
                "NotAuthorizedForDetailTypeException",
                400,
                Retry::AccessDenied,
            ),
            ("ValidationException", 400, Retry::Never),
            ("ResourceNotFoundException", 400, Retry::Never),
            (
                "ItemCollectionSizeLimitExceededException",
                400,
                Retry::Never,
            ),
            ("AWS.SimpleQueueService.NonExistentQueue", 400, Retry::Never),
            ("RequestThrottled", 403, Retry::Transient),
        ] {
            let error = answered(code, status);
            assert_eq!(error.retry(), retry, "{code} {status}");
            assert_eq!(error.code(), Some(code));
            assert_eq!(
                error.to_string(),
                format!("DynamoDB.GetItem failed: {code}: as AWS says it")
            );
        }
    }

    #[test]
    fn no_answer_is_transient_and_a_request_never_built_is_not() {
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("took too long");
        let error = AwsError::from_sdk("DynamoDB.GetItem", timeout);
        assert_eq!((error.retry(), error.code()), (Retry::Transient, None));
        assert!(error.to_string().contains("took too long"), "{error}");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the SDK's error is kept"
        );

        let unbuilt: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure("no table name");
        assert_eq!(
            AwsError::from_sdk("DynamoDB.GetItem", unbuilt).retry(),
            Retry::Never
        );
    }

    #[test]
    fn a_cancelled_transaction_is_judged_by_its_reasons() {
        let throttled = AwsError::cancelled("T", &["None", "ThrottlingError"]);
        assert_eq!(throttled.retry(), Retry::Transient);
        let invalid = AwsError::cancelled("T", &["ValidationError", "None"]);
        assert_eq!(invalid.retry(), Retry::Never);
        assert_eq!(invalid.code(), Some("TransactionCanceledException"));
        assert!(invalid.to_string().contains("ValidationError"), "{invalid}");
    }

    #[test]
    fn a_refusal_without_a_code_is_judged_by_its_status() {
        assert_eq!(classify(None, Some(403)), Retry::AccessDenied);
        assert_eq!(classify(None, Some(429)), Retry::Transient);
        assert_eq!(classify(None, Some(400)), Retry::Never);
        assert_eq!(
            classify(Some("MissingAuthenticationToken"), Some(403)),
            Retry::AccessDenied
        );
    }
}
