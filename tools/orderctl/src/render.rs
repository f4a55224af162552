//! The operator commands' answers as a person reads them (`--json` prints the answer itself).

use serde_json::Value;

use crate::client;

/// Which answer is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    DeadLetters,
    Redriven,
    Order,
}

pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn render(view: View, answer: &Value) -> String {
    let heading = format!("{}\n", text(&answer["stack"]));
    heading
        + &match view {
            View::DeadLetters => dead_letters(answer),
            View::Redriven => redriven(answer),
            View::Order => order(answer),
        }
}

fn dead_letters(answer: &Value) -> String {
    let mut out = String::new();
    for queue in answer["queues"].as_array().into_iter().flatten() {
        out += &format!(
            "{:<24} {:>5}\n",
            text(&queue["queue"]),
            text(&queue["depth"])
        );
        for m in queue["messages"].as_array().into_iter().flatten() {
            out += &format!(
                "  order {}  {}  at {}  received {}x\n    {}\n",
                text(&m["orderId"]),
                text(&m["eventType"]),
                text(&m["deadLetteredAt"]),
                text(&m["receiveCount"]),
                text(&m["reason"])
            );
        }
    }
    out
}

fn redriven(answer: &Value) -> String {
    let mut out = String::new();
    for (queue, count) in answer["moved"].as_object().into_iter().flatten() {
        out += &format!("moved {count} to {queue}\n");
    }
    for left in answer["left"].as_array().into_iter().flatten() {
        out += &format!(
            "left {}: {}\n",
            text(&left["messageId"]),
            text(&left["why"])
        );
    }
    if answer["moved"].as_object().is_none_or(|m| m.is_empty())
        && answer["left"] == Value::Array(vec![])
    {
        out += &format!("{} is empty\n", text(&answer["queue"]));
    }
    out
}

fn order(answer: &Value) -> String {
    let mut out = String::new();
    let order = &answer["order"];
    if order.is_null() {
        out += &format!("order {}: not found\n", text(&answer["orderId"]));
    } else {
        out += &format!(
            "order {}: {} (version {}), consumer {}, restaurant {}\n",
            text(&order["orderId"]),
            text(&order["status"]),
            text(&order["version"]),
            text(&order["consumerId"]),
            text(&order["restaurantId"])
        );
        if let Some(total) = order.get("total") {
            out += &format!("  total {}\n", client::shown_money(total));
        }
        for reason in order["rejectionReasons"].as_array().into_iter().flatten() {
            out += &format!("  rejected: {}\n", text(reason));
        }
        for change in order["history"].as_array().into_iter().flatten() {
            out += &format!("  {}  {}\n", text(&change["at"]), text(&change["status"]));
        }
    }
    out += "outbox events:\n";
    for event in answer["outbox"].as_array().into_iter().flatten() {
        out += &format!(
            "  {}  {}  {}\n",
            text(&event["occurredAt"]),
            text(&event["detailType"]),
            text(&event["eventId"])
        );
    }
    out += "in dead-letter queues:";
    let letters = answer["deadLetters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if letters.is_empty() {
        out += " none\n";
    } else {
        out += "\n";
        for letter in letters {
            out += &format!(
                "  {}: {} ({})\n",
                text(&letter["queue"]),
                text(&letter["message"]["eventType"]),
                text(&letter["message"]["reason"])
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_listing_reads_as_a_table() {
        let answer = serde_json::json!({"stack": "local stack at x", "queues": [
            {"queue": "OrderRepliesDLQ", "depth": 1, "messages": [{"orderId": "o-1", "eventType": "ConsumerValidated",
             "deadLetteredAt": "2026-11-27T12:00:00+00:00", "receiveCount": 1, "reason": "order o-1 does not exist"}]}]});
        let shown = render(View::DeadLetters, &answer);
        assert!(shown.contains("OrderRepliesDLQ              1"), "{shown}");
        assert!(
            shown.contains(
                "order o-1  ConsumerValidated  at 2026-11-27T12:00:00+00:00  received 1x"
            ),
            "{shown}"
        );
        assert!(shown.contains("order o-1 does not exist"), "{shown}");
    }

    #[test]
    fn an_empty_redrive_says_the_queue_is_empty() {
        let answer = serde_json::json!({"stack": "s", "queue": "Q", "moved": {}, "left": []});
        assert_eq!(render(View::Redriven, &answer), "s\nQ is empty\n");
        let answer = serde_json::json!({"stack": "s", "queue": "Q", "moved": {"R": 2}, "left": []});
        assert_eq!(render(View::Redriven, &answer), "s\nmoved 2 to R\n");
    }
}
