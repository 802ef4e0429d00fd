//! A lying host: an HTTP proxy in front of the real `bridle-host` that forwards every request
//! but can rewrite chosen replies, or answer chosen requests itself without forwarding them.
//! The owner and agent tools must notice every lie that matters (tests/tests/review_cli.rs).
//!
//! ```ignore
//! let proxy = LyingProxy::start(&stack.host.url);
//! proxy.answer("POST", "/v1/sessions/", |_req| (200, json!({"sessions": [session]})));
//! proxy.rewrite("GET", "/v1/status", |_req, reply| { reply["receipt"] = Value::Null; });
//! ```
//!
//! Rules are tried in the order they were added; the first whose method and path prefix
//! match decides. HTTP/1.1, one request per connection (`Connection: close`).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the proxy received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/v1/status?nonce=0x…`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The body as JSON (null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.path.split_once('?')?.1;
        q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }
}

type Answer = Arc<dyn Fn(&Request) -> (u16, Value) + Send + Sync>;
type Rewrite = Arc<dyn Fn(&Request, &mut Value) + Send + Sync>;

#[derive(Clone)]
enum Action {
    Answer(Answer),
    Rewrite(Rewrite),
    Withhold(Answer),
}

struct Rule {
    method: String,
    prefix: String,
    action: Action,
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    /// (method, path) of every request forwarded to the real host.
    forwarded: Mutex<Vec<(String, String)>>,
    stop: AtomicBool,
}

/// The proxy; stopped on drop.
pub struct LyingProxy {
    pub url: String,
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
}

impl LyingProxy {
    /// Listen on a free localhost port, forwarding to `upstream` (a base URL).
    pub fn start(upstream: &str) -> LyingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            rules: Mutex::new(Vec::new()),
            forwarded: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, http) = (Arc::clone(&s), http.clone());
                std::thread::spawn(move || {
                    let _ = serve(&s, &http, conn);
                });
            }
        });
        LyingProxy { url: format!("http://{addr}"), shared, addr }
    }

    fn add(&self, method: &str, prefix: &str, action: Action) {
        self.shared.rules.lock().unwrap().push(Rule { method: method.to_string(), prefix: prefix.to_string(), action });
    }

    /// Answer requests to `method` + a path starting with `prefix` with `f` instead of
    /// forwarding them.
    pub fn answer(&self, method: &str, prefix: &str, f: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static) {
        self.add(method, prefix, Action::Answer(Arc::new(f)));
    }

    /// Forward requests to `method` + a path starting with `prefix` (the real host acts on
    /// them), keep the real reply, and answer `f`'s instead: a host that withholds what the
    /// enclave signed and says it refused.
    pub fn withhold(&self, method: &str, prefix: &str, f: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static) {
        self.add(method, prefix, Action::Withhold(Arc::new(f)));
    }

    /// Forward requests to `method` + a path starting with `prefix`, then change the JSON
    /// reply with `f`.
    pub fn rewrite(&self, method: &str, prefix: &str, f: impl Fn(&Request, &mut Value) + Send + Sync + 'static) {
        self.add(method, prefix, Action::Rewrite(Arc::new(f)));
    }

    /// Tell the truth again.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How many requests to `method` + `prefix` reached the real host.
    pub fn forwarded(&self, method: &str, prefix: &str) -> usize {
        self.shared.forwarded.lock().unwrap().iter().filter(|(m, p)| m == method && p.starts_with(prefix)).count()
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Request { method, path, headers, body })
}

fn respond(conn: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status < 400 { "OK" } else { "Error" },
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

fn serve(s: &Shared, http: &reqwest::blocking::Client, mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let req = read_request(&mut conn)?;
    // The first matching rule's action, cloned out so that it runs without the lock.
    let action = {
        let rules = s.rules.lock().unwrap();
        rules.iter().find(|r| r.method == req.method && req.path.starts_with(&r.prefix)).map(|r| r.action.clone())
    };
    let (rewrite, withhold) = match action {
        Some(Action::Answer(f)) => {
            let (status, v) = f(&req);
            return respond(&mut conn, status, v.to_string().as_bytes());
        }
        Some(Action::Rewrite(f)) => (Some(f), None),
        Some(Action::Withhold(f)) => (None, Some(f)),
        None => (None, None),
    };
    s.forwarded.lock().unwrap().push((req.method.clone(), req.path.clone()));
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut up = http.request(method, format!("{}{}", s.upstream, req.path)).body(req.body.clone());
    for (k, v) in &req.headers {
        if !["host", "content-length", "connection"].contains(&k.to_ascii_lowercase().as_str()) {
            up = up.header(k, v);
        }
    }
    let (status, body) = match up.send() {
        Ok(r) => (r.status().as_u16(), r.bytes().map(|b| b.to_vec()).unwrap_or_default()),
        Err(e) => {
            (502, serde_json::json!({"error": {"code": "internal", "message": e.to_string()}}).to_string().into())
        }
    };
    if let Some(f) = withhold {
        let (status, v) = f(&req);
        return respond(&mut conn, status, v.to_string().as_bytes());
    }
    if let Some(f) = rewrite {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
            f(&req, &mut v);
            return respond(&mut conn, status, v.to_string().as_bytes());
        }
    }
    respond(&mut conn, status, &body)
}
