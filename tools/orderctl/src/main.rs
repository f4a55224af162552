//! orderctl: the operator's tool for what failed, on the local stack or a deployed one, and the
//! API as a client uses it.

mod client;
mod commands;
mod dead_letters;
mod render;
mod stack;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::Value;

use crate::render::{View, render, text};

const LOCAL_STATE: &str = ".local/devstack.json";
const DEFAULT_STACK: &str = "order-taking";

/// Dead-letter queues and the story of one order (as an operator, with AWS credentials); place,
/// watch and get orders (as a client of the API).
#[derive(Debug, Parser)]
#[command(name = "orderctl", version)]
struct Cli {
    /// Read the local stack's .local/devstack.json (the default when it exists)
    #[arg(long, global = true, conflicts_with_all = ["state", "stack"])]
    local: bool,
    /// Read a local stack's state from FILE
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "stack")]
    state: Option<PathBuf>,
    /// A deployed stack, found with the usual AWS credentials [default: order-taking]
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    /// Print the answer as JSON
    #[arg(long, global = true)]
    json: bool,
    /// The API's URL, for place, watch and get [default: the local stack's]
    #[arg(long, global = true, value_name = "URL")]
    api: Option<String>,
    /// Sent as a bearer token by place, watch and get
    #[arg(long, global = true, env = "ORDERCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dead-letter queues: what failed, and putting it back
    #[command(subcommand)]
    Dlq(Dlq),
    /// The order's row and history, its outbox events, and any of its dead letters
    Order { order_id: String },
    /// Place an order, print its id, then each status until it is decided
    Place {
        /// The consumer placing the order (as the token allows)
        #[arg(long)]
        consumer: String,
        /// The restaurant it is placed with
        #[arg(long)]
        restaurant: String,
        /// A line of the order (repeat for more)
        #[arg(long = "item", value_name = "MENU_ITEM:QUANTITY", required = true, value_parser = line_item)]
        items: Vec<Value>,
        /// The Idempotency-Key header: the same key and body is the same order
        #[arg(long, value_name = "IDEMPOTENCY_KEY")]
        key: Option<String>,
    },
    /// Print each status of the order until it is decided
    Watch { order_id: String },
    /// The order as the API shows it
    Get { order_id: String },
    /// Print a completion script for SHELL (e.g. `orderctl completions bash > /etc/bash_completion.d/orderctl`)
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum Dlq {
    /// Every dead-letter queue, its depth, and each message: order, event, why it failed, when,
    /// how often it was received
    List,
    /// Move QUEUE's messages back to the queues they came from; an outbox row the relay could not
    /// publish (OutboxRelayFailures) is put back in its table and published again
    Redrive {
        queue: String,
        /// Send them to this queue instead
        #[arg(long, value_name = "QUEUE")]
        to: Option<String>,
    },
}

/// Which stack the operator commands read, and where the client commands find the API.
enum Target {
    Local(PathBuf),
    Deployed(String),
}

impl Cli {
    fn target(&self) -> Target {
        match (&self.state, &self.stack) {
            (Some(state), _) => Target::Local(state.clone()),
            (None, Some(name)) => Target::Deployed(name.clone()),
            (None, None) if self.local || PathBuf::from(LOCAL_STATE).exists() => {
                Target::Local(LOCAL_STATE.into())
            }
            (None, None) => Target::Deployed(DEFAULT_STACK.into()),
        }
    }
}

/// `MENU_ITEM:QUANTITY` as a line of `POST /orders`; the API judges the quantity.
fn line_item(item: &str) -> Result<Value, String> {
    let (menu_item_id, quantity) = item
        .rsplit_once(':')
        .and_then(|(id, q)| Some((id, q.parse::<u32>().ok()?)))
        .ok_or("expected MENU_ITEM:QUANTITY, the quantity a whole number")?;
    Ok(serde_json::json!({"menuItemId": menu_item_id, "quantity": quantity}))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "orderctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Place { .. } | Command::Watch { .. } | Command::Get { .. } => {
            as_client(&cli).await
        }
        Command::Dlq(_) | Command::Order { .. } => as_operator(&cli).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orderctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The operator commands: the stack's tables and queues, with AWS credentials.
async fn as_operator(cli: &Cli) -> Result<(), String> {
    let stack = match cli.target() {
        Target::Local(state) => stack::Stack::local(&state).await,
        Target::Deployed(name) => stack::Stack::deployed(&name).await,
    }
    .map_err(|e| e.to_string())?;
    let (view, answer) = match &cli.command {
        Command::Dlq(Dlq::List) => (View::DeadLetters, commands::dlq_list(&stack).await),
        Command::Dlq(Dlq::Redrive { queue, to }) => (
            View::Redriven,
            commands::dlq_redrive(&stack, queue, to.as_deref()).await,
        ),
        Command::Order { order_id } => (View::Order, commands::order(&stack, order_id).await),
        _ => unreachable!("main sends only the operator commands here"),
    };
    let answer = answer.map_err(|e| e.to_string())?;
    if cli.json {
        println!("{answer}");
    } else {
        print!("{}", render(view, &answer));
    }
    Ok(())
}

/// The client commands: through the API, as any client of the system.
async fn as_client(cli: &Cli) -> Result<(), String> {
    let base = match (&cli.api, cli.target()) {
        (Some(api), _) => api.clone(),
        (None, Target::Local(state)) => {
            let read: Option<Value> = std::fs::read_to_string(&state)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            let state = read.ok_or(format!("no --api, and {} is not readable", state.display()))?;
            text(&state["api"])
        }
        (None, Target::Deployed(_)) => return Err("name the API with --api URL".into()),
    };
    let api = client::Api::new(&base, cli.token.clone()).map_err(|e| e.to_string())?;
    let json = cli.json;
    let id = match &cli.command {
        Command::Place {
            consumer,
            restaurant,
            items,
            key,
            ..
        } => {
            let order = serde_json::json!({
                "consumerId": consumer,
                "restaurantId": restaurant,
                "lineItems": items,
            });
            let id = api
                .place(&order, key.clone())
                .await
                .map_err(|e| e.to_string())?;
            if !json {
                println!("order {id} accepted");
            }
            id
        }
        Command::Get { order_id, .. } => {
            match api
                .read(order_id, None, None)
                .await
                .map_err(|e| e.to_string())?
            {
                client::Read::Order { order, .. } if json => println!("{order}"),
                client::Read::Order { order, .. } => {
                    println!("order {order_id}\n{}", client::progress_line(&order))
                }
                client::Read::Unchanged => unreachable!("no If-None-Match was sent"),
            }
            return Ok(());
        }
        Command::Watch { order_id, .. } => order_id.clone(),
        _ => unreachable!("main sends only the client commands here"),
    };
    let show = |order: &Value| {
        if json {
            println!("{order}");
        } else {
            println!("{}", client::progress_line(order));
        }
    };
    api.follow(&id, show).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parsed(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("orderctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_name_the_stack_and_the_command() {
        let cli = parsed(&[
            "--state", "s.json", "--json", "dlq", "redrive", "Q", "--to", "R",
        ])
        .unwrap();
        assert!(matches!(cli.target(), Target::Local(ref p) if p == &PathBuf::from("s.json")));
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Dlq(Dlq::Redrive { ref queue, to: Some(ref to) }) if queue == "Q" && to == "R")
        );
        // The global options may also follow the command, and the API's come before it too.
        let cli = parsed(&["order", "x", "--stack", "prod"]).unwrap();
        assert!(matches!(cli.target(), Target::Deployed(ref n) if n == "prod"));
        let cli = parsed(&["--api", "http://a", "--token", "t", "get", "o-1"]).unwrap();
        assert_eq!(
            (cli.api.as_deref(), cli.token.as_deref()),
            (Some("http://a"), Some("t"))
        );
    }

    #[test]
    fn wrong_input_is_refused_with_what_was_expected() {
        let kind = |args: &[&str]| parsed(args).unwrap_err().kind();
        assert_eq!(kind(&["--what", "dlq", "list"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["--stack"]), ErrorKind::InvalidValue);
        assert_eq!(
            kind(&["--state", "s", "--stack", "p", "dlq", "list"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["dlq"]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        let place = ["place", "--consumer", "c", "--restaurant", "r"];
        assert_eq!(kind(&place), ErrorKind::MissingRequiredArgument);
        let error = parsed(&[&place[..], &["--item", "item-1"]].concat()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(error.to_string().contains("MENU_ITEM:QUANTITY"), "{error}");
    }

    #[test]
    fn help_and_version_are_answers_not_errors() {
        // clap prints these to stdout and exits 0 (`Error::use_stderr` is false for them).
        for args in [
            &["--help"][..],
            &["--version"],
            &["dlq", "--help"],
            &["place", "--help"],
        ] {
            let error = parsed(args).unwrap_err();
            assert!(!error.use_stderr(), "{args:?}");
            assert_eq!(error.exit_code(), 0, "{args:?}");
        }
        let help = parsed(&["place", "--help"]).unwrap_err().to_string();
        assert!(help.contains("--item <MENU_ITEM:QUANTITY>"), "{help}");
    }

    #[test]
    fn a_place_command_is_the_body_the_api_takes() {
        let cli = parsed(&[
            "place",
            "--consumer",
            "c-1",
            "--restaurant",
            "r-1",
            "--item",
            "item-1:2",
            "--item",
            "a:b:0",
        ])
        .unwrap();
        let Command::Place { items, .. } = cli.command else {
            panic!("not a place command")
        };
        assert_eq!(
            Value::Array(items),
            serde_json::json!([{"menuItemId": "item-1", "quantity": 2}, {"menuItemId": "a:b", "quantity": 0}])
        );
    }

    #[test]
    fn completions_are_written_for_each_shell() {
        for shell in ["bash", "zsh", "fish"] {
            let Command::Completions { shell } = parsed(&["completions", shell]).unwrap().command
            else {
                panic!("not a completions command")
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "orderctl", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("redrive"), "{shell}: {script}");
        }
    }
}
