//! A keep-alive HTTP receiver for the webhook scenarios: answers every POST
//! with 204 and records, per delivery, how long after the event's own
//! `timestamp` it arrived.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    latencies: Arc<Mutex<Vec<Duration>>>,
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
        let sink = latencies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Ok(Self { url, latencies })
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

fn serve(stream: TcpStream, sink: &Mutex<Vec<Duration>>) {
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
        let sent = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| humantime::parse_rfc3339(v["timestamp"].as_str()?).ok());
        if let (Some(sent), Ok(mut l)) = (sent, sink.lock()) {
            l.push(arrived.duration_since(sent).unwrap_or_default());
        }
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
