//! A keep-alive HTTP receiver for the webhook scenarios: answers every POST
//! with 204 and records, per delivery, how long after the event's own
//! `timestamp` it arrived, and what it was about.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    latencies: Arc<Mutex<Vec<Duration>>>,
    seen: Arc<Mutex<HashSet<String>>>,
}

/// Shared by the connections of one receiver.
struct Sink {
    latencies: Arc<Mutex<Vec<Duration>>>,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Receiver {
    /// Starts it on a free port; it runs until the process ends.
    pub fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let (l, s) = (latencies.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Sink {
                    latencies: l.clone(),
                    seen: s.clone(),
                };
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Ok(Self {
            url,
            latencies,
            seen,
        })
    }

    /// Whether an event `key(action, repository, digest, tag)` arrived.
    pub fn saw(&self, key: &str) -> bool {
        self.seen.lock().is_ok_and(|s| s.contains(key))
    }

    /// Deliveries received so far.
    pub fn count(&self) -> usize {
        self.latencies.lock().map_or(0, |l| l.len())
    }

    /// Takes the recorded latencies.
    pub fn take(&self) -> Vec<Duration> {
        self.latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// How [`Receiver::saw`] names an event.
pub fn key(action: &str, repository: &str, digest: &str, tag: &str) -> String {
    format!("{action} {repository} {digest} {tag}")
}

fn serve(stream: TcpStream, sink: &Sink) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let arrived = SystemTime::now();
        let event = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
        let sent = event["timestamp"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok());
        if let (Some(sent), Ok(mut l)) = (sent, sink.latencies.lock()) {
            l.push(arrived.duration_since(sent).unwrap_or_default());
        }
        let t = &event["target"];
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        if let Ok(mut seen) = sink.seen.lock() {
            seen.insert(key(
                &text(&event["action"]),
                &text(&t["repository"]),
                &text(&t["digest"]),
                &text(&t["tag"]),
            ));
        }
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
