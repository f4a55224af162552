//! orderctl: the operator's tool for what failed, on the local stack or a deployed one.

mod client;
mod commands;
mod dead_letters;
mod stack;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

const USAGE: &str = "usage: orderctl [--local | --state FILE | --stack NAME] [--json] COMMAND

As an operator (AWS credentials):
  dlq list                      every dead-letter queue, its depth, and each message: order,
                                event, why it failed, when, how often it was received
  dlq redrive QUEUE [--to Q]    moves QUEUE's messages back to the queues they came from; an
                                outbox row the relay could not publish (OutboxRelayFailures) is
                                put back in its table, and the relay publishes it again
  order ORDER_ID                the order's row and history, its outbox events, and any of its
                                messages in a dead-letter queue
As a client of the API ([--api URL] [--token TOKEN]):
  place --consumer C --restaurant R --item MENU_ITEM:QUANTITY... [--key IDEMPOTENCY_KEY]
                                places an order, prints its id, then each status to the decision
  watch ORDER_ID                prints each status of the order until it is decided
  get ORDER_ID                  the order as the API shows it

--local reads the local stack's .local/devstack.json (the default when it exists); --stack
names a deployed stack (default order-taking), found with the usual AWS credentials. --api is
the API's URL (default: the local stack's); --token, or ORDERCTL_TOKEN, is sent as a bearer token.";

enum Target {
    Local(PathBuf),
    Deployed(String),
}

struct Options {
    target: Target,
    json: bool,
    to: Option<String>,
    words: Vec<String>,
    api: Option<String>,
    token: Option<String>,
    consumer: Option<String>,
    restaurant: Option<String>,
    items: Vec<String>,
    key: Option<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let default_state = PathBuf::from(".local/devstack.json");
    let mut target = None;
    let mut json = false;
    let mut to = None;
    let mut words = Vec::new();
    let (mut api, mut token, mut consumer, mut restaurant, mut key) =
        (None, None, None, None, None);
    let mut items = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--local" => target = Some(Target::Local(default_state.clone())),
            "--state" => target = Some(Target::Local(value("--state")?.into())),
            "--stack" => target = Some(Target::Deployed(value("--stack")?)),
            "--to" => to = Some(value("--to")?),
            "--api" => api = Some(value("--api")?),
            "--token" => token = Some(value("--token")?),
            "--consumer" => consumer = Some(value("--consumer")?),
            "--restaurant" => restaurant = Some(value("--restaurant")?),
            "--item" => items.push(value("--item")?),
            "--key" => key = Some(value("--key")?),
            "--json" => json = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => words.push(arg),
        }
    }
    let target = target.unwrap_or(if default_state.exists() {
        Target::Local(default_state)
    } else {
        Target::Deployed("order-taking".into())
    });
    Ok(Options {
        target,
        json,
        to,
        words,
        api,
        token: token.or_else(|| std::env::var("ORDERCTL_TOKEN").ok()),
        consumer,
        restaurant,
        items,
        key,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("orderctl: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let words: Vec<&str> = options.words.iter().map(String::as_str).collect();
    if matches!(words.first(), Some(&("place" | "watch" | "get"))) {
        return match as_client(&options, &words).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("orderctl: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stack = match &options.target {
        Target::Local(state) => stack::Stack::local(state).await,
        Target::Deployed(name) => stack::Stack::deployed(name).await,
    };
    let stack = match stack {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("orderctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match words.as_slice() {
        ["dlq", "list"] => commands::dlq_list(&stack).await,
        ["dlq", "redrive", queue] => {
            commands::dlq_redrive(&stack, queue, options.to.as_deref()).await
        }
        ["order", order_id] => commands::order(&stack, order_id).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(answer) if options.json => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            print!("{}", render(&words, &answer));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orderctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The client commands: through the API, as any client of the system.
async fn as_client(options: &Options, words: &[&str]) -> Result<(), String> {
    let base = match (&options.api, &options.target) {
        (Some(api), _) => api.clone(),
        (None, Target::Local(state)) => {
            let state: Value = std::fs::read_to_string(state)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .ok_or(format!("no --api, and {} is not readable", state.display()))?;
            text(&state["api"])
        }
        (None, Target::Deployed(_)) => return Err("name the API with --api URL".into()),
    };
    let api = client::Api::new(&base, options.token.clone()).map_err(|e| e.to_string())?;
    let json = options.json;
    let show = |order: &Value| {
        if json {
            println!("{order}");
        } else {
            println!("{}", client::progress_line(order));
        }
    };
    let id = match words {
        ["place"] => {
            let order = order_body(options)?;
            let id = api
                .place(&order, options.key.clone())
                .await
                .map_err(|e| e.to_string())?;
            if !json {
                println!("order {id} accepted");
            }
            id
        }
        ["watch" | "get", id] => (*id).to_owned(),
        _ => return Err(USAGE.into()),
    };
    if words[0] == "get" {
        match api.read(&id, None, None).await.map_err(|e| e.to_string())? {
            client::Read::Order { order, .. } if json => println!("{order}"),
            client::Read::Order { order, .. } => {
                println!("order {id}\n{}", client::progress_line(&order))
            }
            client::Read::Unchanged => unreachable!("no If-None-Match was sent"),
        }
        return Ok(());
    }
    api.follow(&id, show).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The body of `POST /orders` from `--consumer`, `--restaurant` and `--item MENU_ITEM:QUANTITY`.
fn order_body(options: &Options) -> Result<Value, String> {
    let mut items = Vec::new();
    for item in &options.items {
        let (menu_item_id, quantity) = item
            .rsplit_once(':')
            .and_then(|(id, q)| Some((id, q.parse::<u32>().ok()?)))
            .ok_or(format!("--item {item}: MENU_ITEM:QUANTITY"))?;
        items.push(serde_json::json!({"menuItemId": menu_item_id, "quantity": quantity}));
    }
    Ok(serde_json::json!({
        "consumerId": options.consumer.as_deref().ok_or("place needs --consumer")?,
        "restaurantId": options.restaurant.as_deref().ok_or("place needs --restaurant")?,
        "lineItems": items,
    }))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The answer as a person reads it.
fn render(words: &[&str], answer: &Value) -> String {
    let mut out = format!("{}\n", text(&answer["stack"]));
    match words.first() {
        Some(&"order") => {
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
        }
        Some(_) if words.get(1) == Some(&"redrive") => {
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
        }
        _ => {
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
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_name_the_stack_and_the_command() {
        let parsed = options(&[
            "--state", "s.json", "--json", "dlq", "redrive", "Q", "--to", "R",
        ])
        .unwrap();
        assert!(matches!(parsed.target, Target::Local(ref p) if p == &PathBuf::from("s.json")));
        assert!(parsed.json);
        assert_eq!(parsed.to.as_deref(), Some("R"));
        assert_eq!(parsed.words, ["dlq", "redrive", "Q"]);
        assert!(
            matches!(options(&["--stack", "prod", "order", "x"]).unwrap().target, Target::Deployed(ref n) if n == "prod")
        );
        assert!(options(&["--what"]).is_err());
        assert!(options(&["--stack"]).is_err());
    }

    #[test]
    fn a_dead_letter_listing_reads_as_a_table() {
        let answer = serde_json::json!({"stack": "local stack at x", "queues": [
            {"queue": "OrderRepliesDLQ", "depth": 1, "messages": [{"orderId": "o-1", "eventType": "ConsumerValidated",
             "deadLetteredAt": "2026-11-27T12:00:00+00:00", "receiveCount": 1, "reason": "order o-1 does not exist"}]}]});
        let shown = render(&["dlq", "list"], &answer);
        assert!(shown.contains("OrderRepliesDLQ              1"), "{shown}");
        assert!(
            shown.contains(
                "order o-1  ConsumerValidated  at 2026-11-27T12:00:00+00:00  received 1x"
            ),
            "{shown}"
        );
        assert!(shown.contains("order o-1 does not exist"), "{shown}");
    }
}
