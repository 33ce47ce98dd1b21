//! A minimal W3C WebDriver client for the end-to-end page test, over plain HTTP/1.1 on loopback.
//!
//! Why not fantoccini or thirtyfour: both pull in an async HTTP stack (hyper, tokio, TLS) that
//! takes minutes to build on a two-core CI machine, for the dozen JSON requests this test sends to
//! a chromedriver on 127.0.0.1. The W3C protocol is JSON over HTTP, so std's `TcpStream` and
//! serde_json are enough: one request per connection (`Connection: close`), the answer read to the
//! end, `value.error` turned into an error message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key W3C WebDriver gives element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code points for special keys.
pub const KEY_ENTER: &str = "\u{E007}";
pub const KEY_CONTROL: &str = "\u{E009}";
pub const ARROW_DOWN: &str = "\u{E015}";

/// A free TCP port on loopback (bound once, then released for the child process to take).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// One HTTP/1.1 exchange; returns (status, body). The body is read by its `Content-Length` (or
/// its chunks): chromedriver keeps connections open despite `Connection: close`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect :{port}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send {method} {path}: {e}"))?;
    let what = format!("{method} {path}");
    let mut raw = Vec::new();
    let split = loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
        read_more(&mut stream, &mut raw, &what)?;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line in {head:?}"))?;
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let mut content = raw.split_off(split + 4);
    if let Some(length) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        while content.len() < length {
            read_more(&mut stream, &mut content, &what)?;
        }
        content.truncate(length);
    } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        while !content.windows(5).any(|w| w == b"0\r\n\r\n") {
            read_more(&mut stream, &mut content, &what)?;
        }
        content = dechunk(&content);
    } else if status != 204 && status != 304 {
        stream
            .read_to_end(&mut content)
            .map_err(|e| format!("read answer to {what}: {e}"))?;
    }
    Ok((status, String::from_utf8_lossy(&content).to_string()))
}

/// Appends what the stream has next; an error when it ended.
fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>, what: &str) -> Result<(), String> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream
        .read(&mut chunk)
        .map_err(|e| format!("read answer to {what}: {e}"))?;
    if n == 0 {
        return Err(format!("{what}: the connection closed mid-answer"));
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Joins the chunks of a chunked HTTP body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || body.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
    out
}

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it answers `/status`.
    pub fn start(chromedriver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, body)) = http(port, "GET", "/status", None)
                && body.contains("\"ready\":true")
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens a headless Chromium session with a fixed window size; downloads go to `downloads`.
    pub fn session(&self, chromium: &Path, width: u32, height: u32, downloads: &Path) -> Session {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", format!("--window-size={width},{height}")],
                "prefs": {
                    "download.default_directory": downloads.to_string_lossy(),
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let value = call(self.port, "POST", "/session", Some(&capabilities))
            .expect("new WebDriver session");
        let id = value["sessionId"].as_str().expect("sessionId").to_string();
        Session {
            port: self.port,
            id,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a WebDriver command; returns its `value`, or the driver's error as text.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let (status, text) = http(port, method, path, body)?;
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{method} {path}: not JSON ({e}): {text}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 || value.get("error").is_some() {
        return Err(format!(
            "{method} {path} -> {status}: {} {}",
            value["error"], value["message"]
        ));
    }
    Ok(value)
}

/// A browser session; deleted (browser closed) on drop.
pub struct Session {
    port: u16,
    id: String,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Element {
    fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

impl Session {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        call(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body.as_ref(),
        )
    }

    /// Navigates to `url` and waits for the load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .unwrap();
    }

    /// The first element matching the CSS selector, or an error.
    pub fn try_find(&self, css: &str) -> Result<Element, String> {
        let value = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(Element(
            value[ELEMENT_KEY]
                .as_str()
                .ok_or("no element reference")?
                .to_string(),
        ))
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> Element {
        self.wait_for(&format!("element {css}"), || self.try_find(css).ok())
    }

    /// Clicks an element (scrolled into view first, as a user would).
    pub fn click(&self, element: &Element) {
        self.cmd(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .unwrap();
    }

    /// Focuses an element and types `text` into it.
    pub fn type_into(&self, element: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .unwrap();
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Presses keys (WebDriver key actions): every key in `keys` goes down in order, then all up.
    pub fn chord(&self, keys: &[&str]) {
        let mut actions: Vec<Value> = keys
            .iter()
            .map(|k| json!({"type": "keyDown", "value": k}))
            .collect();
        actions.extend(
            keys.iter()
                .rev()
                .map(|k| json!({"type": "keyUp", "value": k})),
        );
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.cmd("POST", "/actions", Some(body)).unwrap();
        self.cmd("DELETE", "/actions", None).unwrap();
    }

    /// Drags with the mouse from the centre of `from` to the centre of `to`, in steps, as a
    /// person would (pointer down, several moves, pointer up).
    pub fn drag(&self, from: &Element, to: &Element) {
        let pointer = json!({"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "origin": from.reference(), "x": 0, "y": 0, "duration": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pause", "duration": 50},
            {"type": "pointerMove", "origin": "pointer", "x": 0, "y": 12, "duration": 50},
            {"type": "pointerMove", "origin": to.reference(), "x": 0, "y": -4, "duration": 250},
            {"type": "pointerMove", "origin": to.reference(), "x": 0, "y": 0, "duration": 50},
            {"type": "pointerUp", "button": 0},
        ]});
        self.cmd("POST", "/actions", Some(json!({ "actions": [pointer] })))
            .unwrap();
        self.cmd("DELETE", "/actions", None).unwrap();
    }

    /// Resizes the browser window (outer size, CSS pixels).
    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .unwrap();
    }

    /// Saves a PNG of the whole page: the window grows to the page's height (at most 3000 px)
    /// for the shot, then returns to `width` x `height`.
    pub fn full_page_screenshot(&self, path: &Path, width: u32, height: u32) {
        let page = self.script("return document.documentElement.scrollHeight;", vec![]);
        let page = page
            .as_u64()
            .unwrap_or(u64::from(height))
            .clamp(u64::from(height), 3000);
        // The window's frame takes some of its outer height; add it back.
        let frame = self.script("return window.outerHeight - window.innerHeight;", vec![]);
        let frame = frame.as_u64().unwrap_or(0);
        self.set_window(width, u32::try_from(page + frame).unwrap_or(3000));
        self.screenshot(path);
        self.set_window(width, height);
    }

    /// Saves a PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let value = self.cmd("GET", "/screenshot", None).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 screenshot"))
            .expect("valid base64");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The browser console's messages so far (Chromium's log extension; empty where unsupported).
    pub fn console(&self) -> Vec<String> {
        self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or(""),
                    entry["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Polls `probe` every 50 ms until it gives a value; panics after 10 s naming `what`.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 10 s waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `script` (a function body) returns true.
    pub fn wait_until(&self, what: &str, script: &str) {
        self.wait_for(what, || {
            (self.script(script, vec![]) == Value::Bool(true)).then_some(())
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.cmd("DELETE", "", None);
    }
}
