//! A local stand-in for the three providers' APIs, serving the recorded
//! answers in `fixtures/providers/` sliced to the requested range (as the
//! real APIs do), with scripted faults and a log of every request.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::fixtures;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub headers: Vec<String>,
    pub at: Instant,
}

/// A scripted answer for the next request whose path and query contain `matching`.
pub struct Fault {
    pub matching: String,
    pub status: u16,
    pub body: String,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    faults: VecDeque<Fault>,
    delay: Duration,
}

pub struct ProviderServer {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl ProviderServer {
    pub fn start() -> ProviderServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        ProviderServer { url, state }
    }

    /// Answer the next `times` requests containing `matching` with `status` and `body`.
    pub fn fail(&self, matching: &str, times: usize, status: u16, body: &str) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..times {
            state.faults.push_back(Fault {
                matching: matching.to_string(),
                status,
                body: body.to_string(),
            });
        }
    }

    /// Wait this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn seen_for(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| format!("{}?{}", s.path, s.query).contains(needle))
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        headers.push(header.trim().to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (fault, delay) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            path: path.to_string(),
            query: query.to_string(),
            headers,
            at: Instant::now(),
        });
        let i = s.faults.iter().position(|f| target.contains(&f.matching));
        (i.and_then(|i| s.faults.remove(i)), s.delay)
    };
    std::thread::sleep(delay);
    let (status, body) = match fault {
        Some(f) => (f.status, f.body),
        None => answer(path, query),
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    let mut out = stream;
    // A scripted redirect's body is where it points.
    if (300..400).contains(&status) {
        let _ = write!(
            out,
            "HTTP/1.1 {status} Moved\r\nLocation: {body}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn recorded(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(fixtures().join("providers").join(name)).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

fn answer(path: &str, query: &str) -> (u16, String) {
    let number = |name| param(query, name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    if let Some(symbol) = path.strip_prefix("/v8/finance/chart/") {
        let symbol = symbol.replace("%26", "&");
        let Some(mut doc) = recorded(&format!("yahoo_{symbol}.json")) else {
            let error = json!({"chart": {"result": null, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}});
            return (404, error.to_string());
        };
        let series = &mut doc["chart"]["result"][0];
        let keep: Vec<bool> = series["timestamp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (number("period1")..number("period2")).contains(&t.as_i64().unwrap()))
            .collect();
        slice(&mut series["timestamp"], &keep);
        for column in ["open", "high", "low", "close", "volume"] {
            slice(&mut series["indicators"]["quote"][0][column], &keep);
        }
        if series["indicators"]["adjclose"].is_array() {
            slice(&mut series["indicators"]["adjclose"][0]["adjclose"], &keep);
        }
        return (200, doc.to_string());
    }
    if path == "/time_series" {
        let symbol = param(query, "symbol").unwrap_or("");
        let Some(mut doc) = recorded(&format!("twelvedata_{symbol}.json")) else {
            let error = json!({"code": 400, "message": format!("**symbol** not found: {symbol}"), "status": "error"});
            return (200, error.to_string());
        };
        let (from, to) = (
            param(query, "start_date").unwrap_or(""),
            param(query, "end_date").unwrap_or("~"),
        );
        let values = doc["values"].as_array_mut().unwrap();
        values.retain(|v| (from..=to).contains(&v["datetime"].as_str().unwrap()));
        return (200, doc.to_string());
    }
    if path == "/api/v1/stock/candle" {
        let symbol = param(query, "symbol").unwrap_or("");
        let Some(mut doc) = recorded(&format!("finnhub_{symbol}.json")) else {
            return (200, json!({"s": "no_data"}).to_string());
        };
        let keep: Vec<bool> = doc["t"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (number("from")..=number("to")).contains(&t.as_i64().unwrap()))
            .collect();
        for column in ["t", "o", "h", "l", "c", "v"] {
            slice(&mut doc[column], &keep);
        }
        return (200, doc.to_string());
    }
    (404, json!({"error": "no such endpoint"}).to_string())
}

fn slice(column: &mut Value, keep: &[bool]) {
    let values = column.as_array().unwrap();
    let kept: Vec<Value> = values
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| v.clone())
        .collect();
    *column = Value::Array(kept);
}
