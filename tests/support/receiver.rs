//! A real HTTP receiver for webhook tests: a server on `127.0.0.1:0` that
//! records every request and answers from a script (statuses, extra
//! headers, or hanging), then its default reply.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver as Rx, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with these extra headers.
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// This status with this body (instead of `ok`).
    WithBody(u16, String),
    /// Say nothing for this long, then close the connection.
    Hang(Duration),
}

/// A request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// `POST`, ...
    pub method: String,
    /// The request target.
    pub path: String,
    /// Headers as sent (names lowercased), in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Decides the answer to a request from the request itself: a receiver
/// that behaves like a real consumer (status, body).
pub type Judge = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

/// The receiver; it runs until the test process ends.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    rx: Mutex<Rx<Received>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Reply>>,
}

/// How long [`Receiver::next`] waits before failing the test: a failure
/// signal, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

impl Receiver {
    /// A receiver answering 200 unless scripted otherwise.
    pub fn start() -> Self {
        Self::with_default(Reply::Status(200))
    }

    /// A receiver answering `default` unless scripted otherwise.
    pub fn with_default(default: Reply) -> Self {
        Self::serving(default, None)
    }

    /// A receiver whose every answer `judge` decides from the request, as a
    /// real consumer's would be.
    pub fn behaving(judge: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static) -> Self {
        Self::serving(Reply::Status(200), Some(Arc::new(judge)))
    }

    fn serving(default: Reply, judge: Option<Judge>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let default = Arc::new(Mutex::new(default));
        let (s, d) = (script.clone(), default.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tx, s, d, j) = (tx.clone(), s.clone(), d.clone(), judge.clone());
                std::thread::spawn(move || serve(stream, &tx, &s, &d, j.as_ref()));
            }
        });
        Self {
            url,
            rx: Mutex::new(rx),
            script,
            default,
        }
    }

    /// Replies for the next requests, in order.
    pub fn script(&self, replies: Vec<Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// The reply once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        *self.default.lock().unwrap() = reply;
    }

    /// The next request received (fails the test after 30 s).
    pub fn next(&self) -> Received {
        self.rx
            .lock()
            .unwrap()
            .recv_timeout(PATIENCE)
            .expect("the receiver got nothing within 30 s")
    }

    /// Everything received so far that was not yet taken.
    pub fn drain(&self) -> Vec<Received> {
        self.rx.lock().unwrap().try_iter().collect()
    }
}

fn serve(
    stream: TcpStream,
    tx: &Sender<Received>,
    script: &Mutex<VecDeque<Reply>>,
    default: &Mutex<Reply>,
    judge: Option<&Judge>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let received = Received {
        method,
        path,
        headers,
        body,
    };
    let reply = match judge {
        Some(judge) => {
            let (status, body) = judge(&received);
            Reply::WithBody(status, body)
        }
        None => script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| default.lock().unwrap().clone()),
    };
    let _ = tx.send(received);
    let mut stream = stream;
    let (status, extra, body) = match reply {
        Reply::Hang(d) => {
            std::thread::sleep(d);
            return;
        }
        Reply::Status(s) => (s, vec![], "ok".to_owned()),
        Reply::WithHeaders(s, h) => (s, h, "ok".to_owned()),
        Reply::WithBody(s, b) => (s, vec![], b),
    };
    let mut resp = format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&body);
    let _ = stream.write_all(resp.as_bytes());
}

/// Checks a `push` (or `quarantine`) payload field by field against the
/// contract for the manifest `repo:tag` stored in `registry` (`host:port`):
/// ids are UUIDs, the timestamp is RFC 3339 UTC with fractions, the target
/// describes the stored manifest, and the request is a PUT from `host` whose
/// user agent starts with `agent`. Returns the user agent.
pub fn assert_push_event(
    e: &serde_json::Value,
    registry: &str,
    repo: &str,
    tag: &str,
    agent: &str,
) -> String {
    let url = format!("http://{registry}/v2/{repo}/manifests/{tag}");
    let stored = super::http("GET", &url, &[("Accept", ACCEPT_ALL)], &[]);
    assert_eq!(stored.status, 200, "{repo}:{tag} is not stored");
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["action", "id", "request", "target", "timestamp"]);
    assert_eq!(e["action"], "push");
    assert!(
        is_uuid(e["id"].as_str().unwrap()) && is_uuid(e["request"]["id"].as_str().unwrap()),
        "{e}"
    );
    let ts = e["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.contains('.') && humantime::parse_rfc3339(ts).is_ok(),
        "{ts}"
    );
    assert_eq!(
        e["target"],
        serde_json::json!({
            "mediaType": stored.header("content-type").unwrap(),
            "size": stored.body.len(),
            "digest": super::digest(&stored.body),
            "length": stored.body.len(),
            "repository": repo,
            "tag": tag,
        })
    );
    assert_eq!(e["request"]["host"], registry);
    assert_eq!(e["request"]["method"], "PUT");
    let ua = e["request"]["useragent"].as_str().unwrap().to_owned();
    assert!(
        ua.starts_with(agent),
        "user agent {ua:?} does not start with {agent:?}"
    );
    ua
}

/// Every manifest media type, for reading back what a client pushed.
const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether `s` is a UUID in its hyphenated form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Subscribes a receiver to every action of `registry` (`http://host:port`).
pub fn subscribe_all(registry: &str, name: &str) -> Receiver {
    let rx = Receiver::start();
    let body = serde_json::json!({"serviceUri": rx.url, "actions": ["push", "delete", "chart_push", "chart_delete", "quarantine"]});
    let r = super::http(
        "PUT",
        &format!("{registry}/api/webhooks/{name}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    rx
}
