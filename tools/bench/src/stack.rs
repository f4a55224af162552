//! A devstack of the benchmark's own (the `bench` ports of `infra/devstack/launcher.py`), running
//! the release binaries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Http, get_json};
use crate::{Error, fail};

/// Each order's decision deadline on the benchmark's stacks (the template's default is 900 s):
/// its timer fires, and is counted, within the run that placed the order; no order the stack
/// decides takes that long (the overload run's slowest, about 4 s).
pub const DECISION_DEADLINE_SECONDS: u32 = 10;

pub struct Stack {
    child: Child,
    pub state: Value,
    pub api: String,
    control: String,
    /// The emulator's endpoint (SQS, EventBridge).
    endpoint: String,
    pub logs: PathBuf,
    pub token: String,
}

impl Stack {
    /// Starts devstack on `template` with the binaries in `bin_dir` and the template parameters
    /// `parameters` (`NAME=VALUE ...`, as `sam deploy --parameter-overrides`); ready once the
    /// demo data is in the replicas.
    pub fn start(
        root: &Path,
        bin_dir: &Path,
        template: &Path,
        logs: &Path,
        parameters: &str,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(logs)?;
        for entry in std::fs::read_dir(logs)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log" || e == "json") {
                std::fs::remove_file(path)?;
            }
        }
        let parameters =
            format!("DecisionDeadlineSeconds={DECISION_DEADLINE_SECONDS} {parameters}");
        let state_path = logs.join("state.json");
        let python = root.join(".venv/bin/python");
        let output = std::fs::File::create(logs.join("devstack.log"))?;
        let child = Command::new(&python)
            .current_dir(root)
            .args(["-m", "infra.devstack", "--ports", "bench", "--template"])
            .arg(template)
            .args(["--parameter-overrides", parameters.trim()])
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--log-dir")
            .arg(logs)
            .args(["up", "--state"])
            .arg(&state_path)
            .args(["--demo-data", "infra/demo-data.json"])
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()?;
        let mut stack = Stack {
            child,
            state: Value::Null,
            api: String::new(),
            control: String::new(),
            endpoint: String::new(),
            logs: logs.to_owned(),
            token: String::new(),
        };
        let started = Instant::now();
        while !state_path.exists() {
            if stack.child.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(120) {
                return fail(format!(
                    "devstack did not start; see {}",
                    logs.join("devstack.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stack.state = serde_json::from_slice(&std::fs::read(&state_path)?)?;
        let url = |name: &str| {
            stack.state[name]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("devstack's state names no {name} URL"))
        };
        (stack.api, stack.control, stack.endpoint) =
            (url("api")?, url("control")?, url("endpoint")?);
        let token = Command::new(&python)
            .current_dir(root)
            .args([
                "-m",
                "infra.devstack",
                "token",
                "--sub",
                "consumer-1",
                "--state",
            ])
            .arg(&state_path)
            .stderr(Stdio::inherit())
            .output()?;
        stack.token = String::from_utf8(token.stdout)?
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        Ok(stack)
    }

    /// devstack's counters: each function's invocations, time and peak memory; every request the
    /// emulators served, by caller and operation, with what AWS bills beyond the request.
    pub async fn stats(&self, http: &Http) -> Result<Value, Error> {
        get_json(http, &format!("{}/stats", self.control), &[]).await
    }

    /// Each queue's messages visible, in flight and held back (devstack's `/_devstack/queues` on
    /// the emulator: not an AWS request, so not metered).
    pub async fn queues(&self, http: &Http) -> Result<Value, Error> {
        get_json(http, &format!("{}/_devstack/queues", self.endpoint), &[]).await
    }

    /// Stops devstack as `make run`'s Ctrl-C does: it stops its functions and emulators.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.terminate();
    }
}
