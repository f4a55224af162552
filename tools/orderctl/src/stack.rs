//! Where the stack's queues and tables are: the local stack's state file, or a deployed stack's
//! resources found by name (CloudFormation names them `<stack>-<LogicalId>-<suffix>`).

use std::collections::HashMap;
use std::path::Path;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::config::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read the local stack's state {0}: {1} (is `make run` up?)")]
    State(String, String),
    #[error("the stack has no {0}")]
    Missing(String),
    #[error("{0}")]
    Aws(String),
}

pub struct Stack {
    pub described_as: String,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Logical id to physical name: a queue's URL, a table's name.
    resources: HashMap<String, String>,
}

impl Stack {
    /// The local stack, from the state devstack writes (`.local/devstack.json`). Its calls sign
    /// with devstack's own key, which the emulator never faults.
    pub async fn local(state: &Path) -> Result<Self, StackError> {
        let unreadable = |e: String| StackError::State(state.display().to_string(), e);
        let text = std::fs::read_to_string(state).map_err(|e| unreadable(e.to_string()))?;
        let state: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        let endpoint = state["endpoint"].as_str().unwrap_or_default().to_owned();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new(
                state["region"].as_str().unwrap_or("us-east-1").to_owned(),
            ))
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "devstack",
            ))
            .load()
            .await;
        let resources = serde_json::from_value(state["resources"].clone())
            .map_err(|e| unreadable(e.to_string()))?;
        Ok(Self::new(
            format!("local stack at {endpoint}"),
            &config,
            resources,
        ))
    }

    /// A deployed stack, its resources found by the names CloudFormation gave them.
    pub async fn deployed(name: &str) -> Result<Self, StackError> {
        let config = shared::platform::aws::sdk_config_from_default_chains().await;
        let mut stack = Self::new(format!("stack {name}"), &config, HashMap::new());
        let queues = stack
            .sqs
            .list_queues()
            .queue_name_prefix(format!("{name}-"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws)?;
        for url in queues {
            if let Some(logical) = logical_id(name, url.rsplit('/').next().unwrap_or_default()) {
                stack.resources.insert(logical.to_owned(), url.clone());
            }
        }
        let tables = stack
            .dynamodb
            .list_tables()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws)?;
        for table in tables {
            if let Some(logical) = logical_id(name, &table) {
                stack.resources.insert(logical.to_owned(), table.clone());
            }
        }
        Ok(stack)
    }

    fn new(
        described_as: String,
        config: &aws_config::SdkConfig,
        resources: HashMap<String, String>,
    ) -> Self {
        Self {
            described_as,
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            resources,
        }
    }

    /// The physical name of a resource, by logical id (or by its physical name itself).
    pub fn resource(&self, logical_id: &str) -> Result<&str, StackError> {
        self.resources
            .get(logical_id)
            .or_else(|| {
                // A queue's name (the last part of its URL) or a table's name.
                self.resources
                    .values()
                    .find(|v| v.rsplit('/').next() == Some(logical_id))
            })
            .map(String::as_str)
            .ok_or_else(|| StackError::Missing(logical_id.to_owned()))
    }
}

pub fn aws(error: impl std::error::Error) -> StackError {
    // The SDK's Display is only the error's kind; the source chain says what went wrong.
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    StackError::Aws(text)
}

/// The logical id in a name CloudFormation generated for `stack`: `<stack>-<LogicalId>-<suffix>`.
pub fn logical_id<'a>(stack: &str, physical: &'a str) -> Option<&'a str> {
    let rest = physical.strip_prefix(stack)?.strip_prefix('-')?;
    let (logical, suffix) = rest.rsplit_once('-')?;
    (!logical.is_empty() && !suffix.is_empty() && !logical.contains('-')).then_some(logical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudformation_names_give_back_their_logical_id() {
        assert_eq!(
            logical_id("order-taking", "order-taking-OrderRepliesDLQ-AbCdEf123456"),
            Some("OrderRepliesDLQ")
        );
        assert_eq!(
            logical_id("order-taking", "order-taking-OrdersTable-1X2Y3Z"),
            Some("OrdersTable")
        );
        // Another stack whose name starts alike, and names that are not CloudFormation's.
        assert_eq!(
            logical_id("order-taking", "order-taking-test-OrdersTable-1X2Y3Z"),
            None
        );
        assert_eq!(logical_id("order-taking", "OrdersTable"), None);
        assert_eq!(logical_id("order-taking", "order-taking-OrdersTable"), None);
    }
}
