//! A minimal W3C WebDriver client (the JSON-over-HTTP protocol chromedriver
//! speaks) on std sockets and serde_json: start chromedriver, open a
//! headless Chromium session, find elements, click, type, run scripts.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http;

/// The browser and driver CI installs (Debian packages `chromium` and
/// `chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver uses for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `wait_for` conditions may take.
pub const WAIT: Duration = Duration::from_secs(20);
/// Fresh chromedriver starts tried before a test gives up on a browser.
const SESSION_ATTEMPTS: usize = 3;

/// A chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium. Panics with a clear
    /// message when either is missing: the browser test must fail, never
    /// skip, where they are not installed.
    pub fn start() -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the UI test needs a real browser. Install the Debian \
                 packages `chromium` and `chromium-driver` (.ci/run does)."
            );
            let _ = package;
        }
        for attempt in 1..=SESSION_ATTEMPTS {
            match Self::start_once() {
                Ok(browser) => return browser,
                // A dropped connection while chromedriver starts Chromium
                // (seen once in CI: reset by peer on `POST /session`), or
                // the port taken between picking and binding it: start a
                // fresh driver on a fresh port. Printed, never silent.
                Err(error) => eprintln!(
                    "browser start {attempt} of {SESSION_ATTEMPTS} failed ({error}); {}",
                    if attempt < SESSION_ATTEMPTS {
                        "retrying"
                    } else {
                        "giving up"
                    }
                ),
            }
        }
        panic!("chromedriver never opened a browser session ({SESSION_ATTEMPTS} attempts)");
    }

    /// Starts chromedriver on a free port and opens a session; a
    /// connection-level failure comes back as an error (the driver is
    /// stopped), an answer that is not a session panics.
    fn start_once() -> Result<Browser, std::io::Error> {
        let port = super::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < WAIT,
                "chromedriver did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-dev-shm-usage",
                            "--disable-gpu",
                            "--window-size=1280,900",
                        ],
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let response = http::try_request(
            addr,
            "POST",
            "/session",
            &[("Content-Type", "application/json; charset=utf-8")],
            &serde_json::to_vec(&capabilities).unwrap(),
        )?;
        let created = response.json()["value"].take();
        assert_eq!(response.status, 200, "WebDriver POST /session: {created}");
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Ok(browser)
    }

    /// One WebDriver command; returns its `value`, panicking on errors.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let payload = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let response = http::request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json; charset=utf-8")],
            &payload,
        );
        let mut json = response.json();
        let value = json["value"].take();
        if response.status == 200 {
            Ok(value)
        } else {
            Err(value)
        }
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads a URL and waits for the page load.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.session_path("/url"), json!({ "url": url }));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.session_path("/url"), Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// History back.
    pub fn back(&self) {
        self.call("POST", &self.session_path("/back"), json!({}));
    }

    /// Every element matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.call(
            "POST",
            &self.session_path("/elements"),
            json!({"using": "css selector", "value": css}),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                Element(
                    e[ELEMENT_KEY]
                        .as_str()
                        .unwrap_or_else(|| panic!("not an element: {e}"))
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The first element matching, waiting up to [`WAIT`] for one.
    pub fn find(&self, css: &str) -> Element {
        let mut found = None;
        self.wait_for(&format!("an element matching {css}"), || {
            found = self.find_all(css).into_iter().next();
            found.is_some()
        });
        found.unwrap()
    }

    /// Clicks an element (scrolled into view by the driver).
    pub fn click(&self, element: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/click", element.0)),
            json!({}),
        );
    }

    /// Clears a text field and types into it.
    pub fn type_into(&self, element: &Element, text: &str) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/clear", element.0)),
            json!({}),
        );
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/value", element.0)),
            json!({ "text": text }),
        );
    }

    /// The rendered text of an element.
    pub fn text(&self, element: &Element) -> String {
        self.call(
            "GET",
            &self.session_path(&format!("/element/{}/text", element.0)),
            Value::Null,
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Runs a script in the page (WebDriver's own channel, which the page's
    /// CSP does not govern) and returns its result.
    pub fn script(&self, body: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            json!({ "script": body, "args": [] }),
        )
    }

    /// Browser console entries since the last call (Chromium's log
    /// endpoint; CSP violations show up here). A probe message logged
    /// first proves the log is really captured, so an empty answer means
    /// "nothing was logged", never "logs unavailable".
    pub fn console(&self) -> Vec<String> {
        const PROBE: &str = "helios-console-probe";
        self.script(&format!("console.error('{PROBE}');"));
        let entries: Vec<String> = self
            .call(
                "POST",
                &self.session_path("/se/log"),
                json!({"type": "browser"}),
            )
            .as_array()
            .expect("log entries")
            .iter()
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(
            entries.iter().any(|e| e.contains(PROBE)),
            "the browser log is not captured: {entries:?}"
        );
        entries.into_iter().filter(|e| !e.contains(PROBE)).collect()
    }

    /// Saves a PNG screenshot of the page (for people looking at the UI:
    /// tests call it when `HELIOS_UI_SCREENSHOTS` names a directory).
    pub fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("HELIOS_UI_SCREENSHOTS") else {
            return;
        };
        let png = self.call("GET", &self.session_path("/screenshot"), Value::Null);
        let bytes = decode_base64(png.as_str().unwrap());
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), bytes).unwrap();
    }

    /// Polls `done` until it holds, failing after [`WAIT`] with `what`.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &self.session_path(""), Value::Null);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
