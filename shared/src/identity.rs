//! Who is calling: the identity API Gateway's JWT authorizer verified, and the rule every API
//! applies to it. The authorizer has already refused bad tokens (`401`) before a function runs;
//! the functions only read the verified claims it passes on in the request context.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

use crate::problem::Problem;

/// The scope of operators' tokens: they act for any consumer, and change consumers and
/// restaurants. The template's Cognito resource server and devstack's issuer use the same name.
pub const OPERATOR_SCOPE: &str = "orders/operator";

/// A verified caller: a consumer (its `sub` is its consumerId) or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub operator: bool,
}

impl Caller {
    /// Whether this caller may place orders for `consumer_id` and see that consumer's orders.
    pub fn may_act_for(&self, consumer_id: &str) -> bool {
        self.operator || self.subject == consumer_id
    }

    /// The caller named by the JWT claims of an HTTP API request, if it has any.
    pub fn from_context(context: &RequestContext) -> Option<Self> {
        let RequestContext::ApiGatewayV2(context) = context else {
            return None;
        };
        let jwt = context.authorizer.as_ref()?.jwt.as_ref()?;
        let subject = jwt.claims.get("sub").filter(|sub| !sub.is_empty())?;
        let operator = jwt
            .scopes
            .iter()
            .flatten()
            .any(|scope| scope == OPERATOR_SCOPE);
        Some(Self {
            subject: subject.clone(),
            operator,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<RequestContext>()
            .and_then(Caller::from_context)
            // Only reachable when a route is deployed without the authorizer: refuse, never guess.
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Unauthenticated",
                    "the request carries no verified identity; send Authorization: Bearer <token>",
                )
            })
    }
}

/// The request context API Gateway passes for a token of `subject` with `scopes`, for tests.
#[cfg(any(test, feature = "hostile"))]
pub fn request_context(subject: &str, scopes: &[&str]) -> RequestContext {
    let context = serde_json::json!({
        "routeKey": "$default",
        "accountId": "123456789012",
        "stage": "$default",
        "requestId": "test",
        "apiId": "local",
        "domainName": "localhost",
        "time": "27/Nov/2026:00:00:00 +0000",
        "timeEpoch": 0,
        "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "authorizer": {"jwt": {"claims": {"sub": subject}, "scopes": scopes}},
    });
    RequestContext::ApiGatewayV2(serde_json::from_value(context).expect("a valid request context"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_acts_for_itself_only_and_an_operator_for_anyone() {
        let consumer = Caller::from_context(&request_context("consumer-1", &[])).unwrap();
        assert!(consumer.may_act_for("consumer-1"));
        assert!(!consumer.may_act_for("consumer-2"));
        let operator = Caller::from_context(&request_context("ops", &[OPERATOR_SCOPE])).unwrap();
        assert!(operator.operator);
        assert!(operator.may_act_for("consumer-2"));
    }

    #[test]
    fn other_scopes_make_no_operator_and_no_subject_makes_no_caller() {
        let other = Caller::from_context(&request_context("c", &["orders/read", "operator"]));
        assert_eq!(other.map(|c| c.operator), Some(false));
        assert_eq!(Caller::from_context(&request_context("", &[])), None);
    }
}
