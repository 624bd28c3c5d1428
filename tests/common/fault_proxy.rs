//! A small HTTP/1.1 proxy on 127.0.0.1 between a client and a test server that injects one fault into a chosen
//! request: the n-th request matching a predicate (method, path, body) is answered with a status (500, 429), has
//! its connection reset before or after the server saw it, or is held (the test then kills the client).
//!
//! One request per connection: the proxy answers with `Connection: close`, so clients never reuse a connection
//! and every request is seen here whole.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to the matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a BigQuery-style JSON error, without forwarding.
    Status(u16),
    /// Close the connection without forwarding: the server never sees the request.
    ResetBefore,
    /// Forward, then close the connection without the response: the server did the work, the client
    /// does not know.
    ResetAfter,
    /// Do not forward and never answer; the connection stays open (for kill tests).
    Hold,
    /// Forward, then never answer (the server did the work; for kill tests).
    ForwardThenHold,
}

/// A request as the predicate sees it.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path with the query string.
    pub path: &'a str,
    pub body: &'a [u8],
}

impl Request<'_> {
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
    }

    /// The path without the query string ends with `suffix`.
    pub fn path_ends_with(&self, suffix: &str) -> bool {
        self.path.split('?').next().unwrap_or("").ends_with(suffix)
    }
}

type Predicate = Box<dyn Fn(&Request<'_>) -> bool + Send>;

struct Rule {
    matches: Predicate,
    occurrence: usize,
    seen: usize,
    fault: Fault,
}

#[derive(Default)]
struct State {
    rule: Option<Rule>,
    /// Requests the fault was applied to, as "METHOD path".
    fired: Vec<String>,
    /// Every request seen, as "METHOD path".
    log: Vec<String>,
    held: Vec<TcpStream>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:upstream_port`; it runs until the test process exits.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || handle(client, upstream_port, &state));
            }
        });
        FaultProxy { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, the `occurrence`-th request (1-based) for which `matches` holds gets `fault`.
    pub fn inject(
        &self,
        fault: Fault,
        occurrence: usize,
        matches: impl Fn(&Request<'_>) -> bool + Send + 'static,
    ) {
        let mut state = self.state.lock().expect("proxy state");
        state.rule = Some(Rule {
            matches: Box::new(matches),
            occurrence,
            seen: 0,
            fault,
        });
        state.fired.clear();
        state.log.clear();
    }

    /// No more faults; held connections are closed.
    pub fn clear(&self) {
        let mut state = self.state.lock().expect("proxy state");
        state.rule = None;
        for stream in state.held.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn fired(&self) -> Vec<String> {
        self.state.lock().expect("proxy state").fired.clone()
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("proxy state").log.clone()
    }

    /// Waits until the fault has been applied once.
    pub fn wait_fired(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if !self.fired().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request: head and a Content-Length body. `None` if the client went away.
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.read(&mut buffer).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = client.read(&mut buffer).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    }
    Some((head, data[head_end..head_end + length].to_vec()))
}

/// The head with `Connection: close` instead of whatever the sender said.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .filter(|line| {
            !line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("connection")
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

fn handle(mut client: TcpStream, upstream_port: u16, state: &Mutex<State>) {
    let Some((head, body)) = read_request(&mut client) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("").to_owned();
    let fault = {
        let Ok(mut state) = state.lock() else {
            return;
        };
        state.log.push(format!("{method} {path}"));
        let request = Request {
            method: &method,
            path: &path,
            body: &body,
        };
        let mut fault = None;
        if let Some(rule) = state.rule.as_mut()
            && (rule.matches)(&request)
        {
            rule.seen += 1;
            if rule.seen == rule.occurrence {
                fault = Some(rule.fault);
            }
        }
        if fault.is_some() {
            state.fired.push(format!("{method} {path}"));
        }
        fault
    };
    match fault {
        Some(Fault::Status(code)) => {
            let kind = if code == 429 {
                "RESOURCE_EXHAUSTED"
            } else {
                "INTERNAL"
            };
            let body = format!(
                "{{\"error\":{{\"code\":{code},\"message\":\"injected by the fault proxy\",\"status\":\"{kind}\"}}}}"
            );
            let response = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(response.as_bytes());
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::ResetBefore) => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::Hold) => {
            if let Ok(mut state) = state.lock() {
                state.held.push(client);
            }
        }
        Some(Fault::ResetAfter) => {
            let _ = forward(&head, &body, upstream_port);
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::ForwardThenHold) => {
            let _ = forward(&head, &body, upstream_port);
            if let Ok(mut state) = state.lock() {
                state.held.push(client);
            }
        }
        None => match forward(&head, &body, upstream_port) {
            Some(response) => {
                let _ = client.write_all(&response);
                let _ = client.shutdown(Shutdown::Both);
            }
            None => {
                let _ = client.shutdown(Shutdown::Both);
            }
        },
    }
}

/// Sends the request upstream and returns the whole response, re-headed with `Connection: close`.
fn forward(head: &str, body: &[u8], upstream_port: u16) -> Option<Vec<u8>> {
    let mut upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).ok()?;
    upstream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .ok()?;
    upstream.write_all(closing(head).as_bytes()).ok()?;
    upstream.write_all(body).ok()?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).ok()?;
    let end = find(&response, b"\r\n\r\n")? + 4;
    let response_head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut out = closing(&response_head).into_bytes();
    out.extend_from_slice(&response[end..]);
    Some(out)
}
