//! Who is calling: the identity API Gateway's JWT authorizer verified, and the rule every API
//! applies to it. The authorizer has already refused bad tokens (`401`) before a function runs;
//! the functions only read the verified claims it passes on in the request context.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

use crate::platform::problem::Problem;

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
    ///
    /// API Gateway fills `jwt.scopes` only on routes that declare `AuthorizationScopes`; no route
    /// of ours does, so it is `null` and the token's scopes arrive as the `scope` claim, one
    /// space-separated string (RFC 8693 section 4.2), like every claim rendered as a string
    /// (docs/conformance.md, "JWT authorizer"). Both are read, so a route that declares scopes
    /// later is right too.
    pub fn from_context(context: &RequestContext) -> Option<Self> {
        let RequestContext::ApiGatewayV2(context) = context else {
            return None;
        };
        let jwt = context.authorizer.as_ref()?.jwt.as_ref()?;
        let subject = jwt.claims.get("sub").filter(|sub| !sub.is_empty())?;
        // `scp` too, which API Gateway also reads for route scopes; an issuer's array claim
        // arrives as `[a b]`.
        let claimed = ["scope", "scp"]
            .iter()
            .filter_map(|name| jwt.claims.get(*name))
            .flat_map(|scopes| unbracketed(scopes).split_ascii_whitespace());
        let listed = jwt.scopes.iter().flatten().map(String::as_str);
        let operator = claimed.chain(listed).any(|scope| scope == OPERATOR_SCOPE);
        Some(Self {
            subject: subject.clone(),
            operator,
        })
    }
}

/// A claim's text without the brackets API Gateway puts around an array claim.
fn unbracketed(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text)
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

/// The request context API Gateway passes, on a route that declares no `AuthorizationScopes`,
/// for a token of `subject` with `scopes`: the scopes in the `scope` claim, `jwt.scopes` null.
#[cfg(any(test, feature = "testing"))]
pub fn request_context(subject: &str, scopes: &[&str]) -> RequestContext {
    let mut claims = serde_json::json!({"sub": subject, "exp": "1795698000", "iat": "1795694400"});
    if !scopes.is_empty() {
        claims["scope"] = scopes.join(" ").into();
    }
    context_with_authorizer(serde_json::json!({"jwt": {"claims": claims, "scopes": null}}))
}

/// An HTTP API request context whose `authorizer` is `authorizer`, as JSON, for tests.
#[cfg(any(test, feature = "testing"))]
pub fn context_with_authorizer(authorizer: serde_json::Value) -> RequestContext {
    let context = serde_json::json!({
        "routeKey": "$default",
        "accountId": "123456789012",
        "stage": "$default",
        "requestId": "test",
        "apiId": "local",
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "time": "27/Nov/2026:00:00:00 +0000",
        "timeEpoch": 0,
        "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "authorizer": authorizer,
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

#[cfg(test)]
mod as_api_gateway_sends_it {
    use super::*;
    use serde_json::json;

    fn caller(jwt: serde_json::Value) -> Option<Caller> {
        Caller::from_context(&context_with_authorizer(json!({ "jwt": jwt })))
    }

    #[test]
    fn the_operator_is_read_from_the_scope_claim_when_scopes_is_null_or_absent() {
        // Claims as a Cognito access token reaches a route without AuthorizationScopes: every
        // value a string, arrays bracketed (docs/conformance.md, "JWT authorizer").
        let claims = json!({
            "sub": "ops", "client_id": "5kek0i61pgkokoob4fsm9fo9it", "token_use": "access",
            "exp": "1795698000", "auth_time": "1795694400", "email_verified": "true",
            "cognito:groups": "[admins operators]",
            "scope": "openid orders/operator aws.cognito.signin.user.admin",
        });
        let null = caller(json!({"claims": claims, "scopes": null})).unwrap();
        assert!(null.operator);
        assert_eq!(null.subject, "ops");
        assert!(caller(json!({ "claims": claims })).unwrap().operator);
    }

    #[test]
    fn route_scopes_make_an_operator_too_and_neither_source_can_be_fooled_by_lookalikes() {
        let listed = json!({"claims": {"sub": "ops"}, "scopes": [OPERATOR_SCOPE]});
        assert!(caller(listed).unwrap().operator);
        for scope in [
            "orders/operators",
            "orders/operator-x",
            "[orders/operator",
            "orders/read,orders/operator",
            "ORDERS/OPERATOR",
            "",
        ] {
            let claims = json!({"claims": {"sub": "c", "scope": scope}, "scopes": null});
            assert_eq!(caller(claims).map(|c| c.operator), Some(false), "{scope:?}");
        }
        let tabs = json!({"claims": {"sub": "c", "scope": "a\torders/operator"}, "scopes": []});
        assert!(caller(tabs).unwrap().operator);
        // An issuer that puts scopes in an array `scp` (rendered `[a b]`) names an operator too.
        let scp =
            json!({"claims": {"sub": "c", "scp": "[openid orders/operator]"}, "scopes": null});
        assert!(caller(scp).unwrap().operator);
    }

    #[test]
    fn a_token_without_a_subject_or_an_authorizer_names_no_caller() {
        assert_eq!(
            caller(json!({"claims": {"scope": OPERATOR_SCOPE}, "scopes": null})),
            None
        );
        assert_eq!(caller(json!({"claims": {"sub": ""}, "scopes": null})), None);
        assert_eq!(
            Caller::from_context(&context_with_authorizer(json!(null))),
            None
        );
    }
}
