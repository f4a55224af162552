//! The restaurant context's own API: `PUT /restaurants/{restaurantId}` (an operator's) stores the
//! restaurant and its menu with the next version and publishes it as `RestaurantUpdated` in the
//! same transaction; `GET /restaurants/{restaurantId}` shows it to any caller (a menu is public).

use std::collections::HashSet;

use axum::Router;
use serde::Deserialize;
use shared::language::events::{ChangeMeta, MenuItem, RestaurantUpdated};
use shared::language::input::{FieldError, check_currency, check_id, check_name};
use shared::language::menu::one_currency;
use shared::language::outbox::OutboxRecord;
use shared::owners::entity_api::{self, Resource};
use shared::owners::versioned::{Entity, VersionedStore};
use shared::platform::identity::Caller;

use crate::domain::Restaurant;

/// The most items one menu holds: a restaurant's item stays well under DynamoDB's 400 KB.
pub const MAX_MENU_ITEMS: usize = 200;

/// The body of `PUT /restaurants/{restaurantId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestaurantBody {
    name: String,
    accepting_orders: bool,
    menu: Vec<MenuItemBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MenuItemBody {
    menu_item_id: String,
    name: String,
    price: shared::language::events::Money,
    available: bool,
}

impl Entity for Restaurant {
    fn version(&self) -> u64 {
        self.version
    }

    fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    fn changed(&self, correlation_id: Option<String>) -> Result<OutboxRecord, serde_json::Error> {
        OutboxRecord::of(&RestaurantUpdated {
            meta: ChangeMeta::new(correlation_id),
            restaurant_id: self.restaurant_id.clone(),
            version: self.version,
            name: self.name.clone(),
            accepting_orders: self.accepting_orders,
            menu: self.menu.clone(),
        })
    }
}

impl Resource for Restaurant {
    const NAME: &'static str = "restaurant";
    type Body = RestaurantBody;

    fn from_body(restaurant_id: String, body: RestaurantBody) -> Result<Self, Vec<FieldError>> {
        validate(restaurant_id, body)
    }

    /// Every caller may read a restaurant and its menu.
    fn readable_by(_: &Caller, _: &str) -> bool {
        true
    }
}

pub fn router<S: VersionedStore>(store: S) -> Router {
    entity_api::router::<Restaurant, S>("/restaurants/{restaurant_id}", store)
}

fn validate(restaurant_id: String, body: RestaurantBody) -> Result<Restaurant, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_id(&mut errors, "restaurantId", &restaurant_id);
    check_name(&mut errors, "name", &body.name);
    if body.menu.len() > MAX_MENU_ITEMS {
        errors.push(FieldError::new(
            "menu",
            format!(
                "must hold at most {MAX_MENU_ITEMS} items, got {}",
                body.menu.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, item) in body.menu.iter().enumerate() {
        check_id(
            &mut errors,
            &format!("menu[{i}].menuItemId"),
            &item.menu_item_id,
        );
        if !seen.insert(item.menu_item_id.as_str()) {
            errors.push(FieldError::new(
                format!("menu[{i}].menuItemId"),
                format!("{} is on the menu twice", item.menu_item_id),
            ));
        }
        check_name(&mut errors, &format!("menu[{i}].name"), &item.name);
        check_currency(
            &mut errors,
            &format!("menu[{i}].price.currency"),
            &item.price.currency,
        );
    }
    let menu: Vec<MenuItem> = body
        .menu
        .into_iter()
        .map(|item| MenuItem {
            menu_item_id: item.menu_item_id,
            name: item.name,
            price: item.price,
            available: item.available,
        })
        .collect();
    if !one_currency(&menu) {
        errors.push(FieldError::new(
            "menu",
            "every price must be in the same currency",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Restaurant {
        restaurant_id,
        version: 0,
        name: body.name,
        accepting_orders: body.accepting_orders,
        menu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use serde_json::{Value, json};
    use shared::owners::versioned::MemoryVersionedStore;
    use shared::platform::identity::{OPERATOR_SCOPE, request_context};
    use tower::ServiceExt;

    fn ajanta(price: u64, available: bool) -> Value {
        json!({"name": "Ajanta", "acceptingOrders": true, "menu": [
            {"menuItemId": "item-1", "name": "Chicken Vindaloo",
             "price": {"currency": "EUR", "amountMinor": price}, "available": available}]})
    }

    async fn send(
        store: &MemoryVersionedStore,
        scopes: &[&str],
        method: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri("/restaurants/restaurant-1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        request
            .extensions_mut()
            .insert(request_context("someone", scopes));
        let response = router(store.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The largest menu validation lets through: every id and name at its longest in
    /// four-byte characters, the longest price.
    fn largest_menu() -> Value {
        let wide = |chars: usize| "\u{1F35B}".repeat(chars);
        let menu: Vec<Value> = (0..MAX_MENU_ITEMS)
            .map(|i| {
                json!({"menuItemId": format!("{i:03}{}", wide(shared::language::input::MAX_ID_CHARS - 3)),
                       "name": wide(shared::language::input::MAX_NAME_CHARS),
                       "price": {"currency": "EUR", "amountMinor": u64::MAX}, "available": true})
            })
            .collect();
        json!({"name": wide(shared::language::input::MAX_NAME_CHARS), "acceptingOrders": true, "menu": menu})
    }

    #[tokio::test]
    async fn the_largest_menu_sent_with_every_character_escaped_is_within_the_body_limit() {
        let escaped: String = largest_menu()
            .to_string()
            .encode_utf16()
            .map(|unit| match unit {
                0x20..=0x7e => char::from(unit as u8).to_string(),
                _ => format!("\\u{unit:04x}"),
            })
            .collect();
        assert!(escaped.len() <= shared::owners::entity_api::MAX_BODY_BYTES);
        let store = MemoryVersionedStore::default();
        let mut request = Request::builder()
            .method("PUT")
            .uri("/restaurants/restaurant-1")
            .header("content-type", "application/json")
            .body(Body::from(escaped))
            .unwrap();
        request
            .extensions_mut()
            .insert(request_context("someone", &[OPERATOR_SCOPE]));
        let response = router(store).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    #[tokio::test]
    async fn the_largest_menu_allowed_makes_an_event_eventbridge_takes() {
        let store = MemoryVersionedStore::default();
        let (status, _) = send(&store, &[OPERATOR_SCOPE], "PUT", &largest_menu()).await;
        assert_eq!(status, StatusCode::CREATED);
        let entry = store.outbox.lock().unwrap()[0].entry();
        // Under EventBridge's 256 KB with room for the envelope an SQS delivery adds, and so
        // under DynamoDB's 400 KB item for the outbox row and each replica's copy.
        assert!(entry.fits(), "{} bytes", entry.size());
        assert!(entry.size() < 250 * 1024, "{} bytes", entry.size());
    }

    #[tokio::test]
    async fn a_menu_change_is_a_new_version_published_whole() {
        let store = MemoryVersionedStore::default();
        let operator = &[OPERATOR_SCOPE];
        assert_eq!(
            send(&store, operator, "PUT", &ajanta(1250, true)).await.0,
            StatusCode::CREATED
        );
        let (status, body) = send(&store, operator, "PUT", &ajanta(1350, false)).await;
        assert_eq!(
            (status, body["version"].as_u64()),
            (StatusCode::OK, Some(2))
        );
        let outbox = store.outbox.lock().unwrap().clone();
        let last: RestaurantUpdated = serde_json::from_str(&outbox[1].detail).unwrap();
        assert_eq!(
            (
                last.version,
                last.menu[0].price.amount_minor,
                last.menu[0].available
            ),
            (2, 1350, false)
        );
        // Anyone with a token reads the menu; a consumer's token may not change it.
        let (status, shown) = send(&store, &[], "GET", &Value::Null).await;
        assert_eq!(
            (status, shown["version"].as_u64()),
            (StatusCode::OK, Some(2))
        );
        let (status, _) = send(&store, &[], "PUT", &ajanta(1, true)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(store.outbox.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_bad_menu_is_refused_with_every_reason_and_writes_nothing() {
        let store = MemoryVersionedStore::default();
        let mut body = ajanta(1250, true);
        let mut twin = body["menu"][0].clone();
        twin["price"]["currency"] = json!("USD");
        twin["name"] = json!("");
        body["menu"].as_array_mut().unwrap().push(twin);
        let (status, problem) = send(&store, &[OPERATOR_SCOPE], "PUT", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<_> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["menu[1].menuItemId", "menu[1].name", "menu"]);
        assert!(store.outbox.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_request_as_api_gateway_sends_it_is_an_operators_by_its_scope_claim() {
        let store = MemoryVersionedStore::default();
        let body = ajanta(1250, true).to_string();
        let request = shared::testing::corpus::http_request(
            "http-api-v2-jwt-no-route-scopes",
            "PUT",
            "/restaurants/restaurant-1",
            Some(&body),
            |event| {
                event["requestContext"]["authorizer"]["jwt"]["claims"]["scope"] =
                    format!("openid {OPERATOR_SCOPE}").into();
            },
        );
        let response = router(store.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let request = shared::testing::corpus::http_request(
            "http-api-v2-jwt-no-route-scopes",
            "GET",
            "/restaurants/restaurant-1",
            None,
            |_| {},
        );
        let response = router(store).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
