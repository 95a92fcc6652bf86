//! Starts `mock_mongo.py` (MockupDB, from Debian's python3-mockupdb) for a
//! test and reads back what the driver sent it. Shared by the store's and
//! the collector's MongoDB tests (`#[path]`-included).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

/// The Python that has MockupDB: Debian's, not a pyenv shim.
const DEFAULT_PYTHON: &str = "/usr/bin/python3";

/// A running mock server; killed on drop.
pub struct MockMongo {
    child: Child,
    stdin: ChildStdin,
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl MockMongo {
    /// Starts a fresh mock. Fails the test loudly when MockupDB is missing
    /// (CI installs python3-mockupdb; this is not a skip).
    pub fn start() -> MockMongo {
        let python = std::env::var("HELIOS_TEST_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.into());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("store/tests/support/mock_mongo.py");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("commands.jsonl");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (needed for MockupDB): {e}"));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port: u16 = first.trim().parse().unwrap_or_else(|_| {
            panic!(
                "mock_mongo.py did not start (is python3-mockupdb installed for {python}? \
                 `apt-get install python3-mockupdb`); it printed {first:?}"
            )
        });
        let stdin = child.stdin.take().unwrap();
        MockMongo {
            child,
            stdin,
            port,
            log,
            _dir: dir,
        }
    }

    /// A connection string for the driver: direct, quick to give up.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=2000",
            self.port
        )
    }

    /// Sends one control update (see mock_mongo.py's docstring).
    pub fn control(&mut self, update: Value) {
        writeln!(self.stdin, "{update}").unwrap();
        self.stdin.flush().unwrap();
        // Let the mock's control thread apply it before the next request.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    /// Every logged command, oldest first.
    pub fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Logged commands named `name`.
    pub fn commands(&self, name: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|c| c["command"] == name)
            .collect()
    }

    /// How many times each id was stored (more than once only in the
    /// time-series mode, which does not enforce unique `_id`).
    pub fn stored(&self) -> HashMap<String, usize> {
        let mut stored = HashMap::new();
        for c in self.commands("insert") {
            for id in c["stored"].as_array().unwrap() {
                *stored.entry(id.as_str().unwrap().to_owned()).or_insert(0) += 1;
            }
        }
        stored
    }

    /// Ids sent in insert commands (whatever the outcome), with repeats.
    pub fn sent_ids(&self) -> Vec<String> {
        self.commands("insert")
            .iter()
            .flat_map(|c| c["body"]["documents"].as_array().unwrap().clone())
            .map(|d| d["_id"]["$oid"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for MockMongo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
