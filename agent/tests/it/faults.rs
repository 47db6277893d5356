//! A fault-injecting HTTP proxy in front of the stand-ins, on 127.0.0.1: each request is matched against rules
//! (method, a part of the path), and a matching one is answered with an error without reaching AWS, or passed on and
//! its answer lost (the connection closes before the client hears back: the call happened, the caller retries), or
//! dropped before it is passed on. With a seed and a rate it faults requests at random, reproducibly.
//! It sees and records every request, so a test can say what reached the stand-ins.
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass the request on, then close the client's connection without its answer.
    LoseAnswer,
    /// Close the connection before passing the request on.
    Drop,
    /// Pass the request on, answer with the headers and half the body, then close the connection.
    Truncate,
    /// Hold the request this many milliseconds, then pass it on.
    Delay(u64),
    /// Answer with this HTTP status and AWS error code (not retried by the SDK when it is a 4xx).
    Refuse(u16, &'static str),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    /// A part of the request's path (and query), or of its body when that is small.
    pub path_contains: String,
    pub fault: Fault,
    /// How many matching requests get the fault; later ones pass.
    pub times: usize,
}

impl Rule {
    pub fn new(method: &'static str, path_contains: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path_contains: path_contains.into(),
            fault,
            times,
        }
    }
}

/// Faults at random: each request with probability `rate`, the fault chosen among `kinds`, from `seed`.
#[derive(Debug, Clone)]
pub struct RandomFaults {
    pub seed: u64,
    pub rate: f64,
    pub kinds: Vec<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<(Rule, usize)>,
    random: Option<(RandomFaults, u64)>,
    /// Every request seen: "METHOD path", and the fault it got.
    seen: Vec<(String, Option<Fault>)>,
    /// When each of `seen` arrived.
    arrived: Vec<std::time::Instant>,
}

pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream_url: &str, rules: Vec<Rule>) -> FaultProxy {
        FaultProxy::start_with(upstream_url, rules, None).await
    }

    pub async fn start_with(
        upstream_url: &str,
        rules: Vec<Rule>,
        random: Option<RandomFaults>,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream_url.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
            random: random.map(|r| {
                let s = r.seed.max(1);
                (r, s)
            }),
            seen: vec![],
            arrived: vec![],
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, state) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &state).await;
                });
            }
        });
        FaultProxy { url, state, task }
    }

    /// The requests seen so far, as "METHOD path", with the fault each got.
    pub fn seen(&self) -> Vec<(String, Option<Fault>)> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests seen so far, as "METHOD path", with when each arrived.
    pub fn seen_at(&self) -> Vec<(String, std::time::Instant)> {
        let s = self.state.lock().unwrap();
        let paths = s.seen.iter().map(|(p, _)| p.clone());
        paths.zip(s.arrived.iter().copied()).collect()
    }

    /// How many requests got a fault.
    pub fn faulted(&self) -> usize {
        self.seen().iter().filter(|(_, f)| f.is_some()).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fault for a request, if any: a rule matches the method and a part of the path, or of a small body (where
/// query-protocol services such as STS name the action).
fn choose(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> Option<Fault> {
    let body = if body.len() <= 4096 {
        String::from_utf8_lossy(body).into_owned()
    } else {
        String::new()
    };
    let mut s = state.lock().unwrap();
    let mut fault = None;
    for (rule, used) in s.rules.iter_mut() {
        let matches = path.contains(&rule.path_contains) || body.contains(&rule.path_contains);
        if rule.method == method && matches && *used < rule.times {
            *used += 1;
            fault = Some(rule.fault);
            break;
        }
    }
    if fault.is_none()
        && let Some((random, x)) = s.random.as_mut()
    {
        // xorshift64: reproducible from the seed, no dependency.
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        let roll = (*x >> 11) as f64 / (1u64 << 53) as f64;
        if roll < random.rate && !random.kinds.is_empty() {
            fault = Some(random.kinds[(*x % random.kinds.len() as u64) as usize]);
        }
    }
    s.seen.push((format!("{method} {path}"), fault));
    s.arrived.push(std::time::Instant::now());
    fault
}

/// One request off `stream`: its head (request line and headers) and body.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Vec<u8>, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 65536];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = buf.drain(..head_end).collect();
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let header = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // Up to and including the last chunk and its (empty or trailer) end.
        loop {
            if let Some(i) = buf.windows(5).position(|w| w == b"0\r\n\r\n")
                && (i == 0 || buf[i - 1] == b'\n')
            {
                break buf.drain(..i + 5).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    } else {
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..len).collect()
    };
    Some((head, body))
}

fn with_connection_close(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if line.is_empty() {
            break;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// The service a request is for, from its SigV4 credential scope (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
fn service_of(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("authorization:"))
        .and_then(|auth| auth.split("credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(3))
        .unwrap_or_default()
        .to_string()
}

/// An error answer in the service's own protocol, as AWS sends it: the SDK reads the code (and so decides whether to
/// retry) from it, and an answer in another service's shape has no code it can read.
fn refusal(service: &str, status: u16, code: &str) -> Vec<u8> {
    const MESSAGE: &str = "injected by the test's fault proxy";
    let (content_type, body) = match service {
        // restJson1 (Lambda's 429: `{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}`).
        "lambda" | "apigateway" => (
            "application/json",
            format!(r#"{{"Type":"User","message":"{MESSAGE}"}}"#),
        ),
        // awsQuery.
        "sts" => (
            "text/xml",
            format!(
                r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{MESSAGE}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"#
            ),
        ),
        // S3's REST-XML.
        _ => (
            "application/xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{MESSAGE}</Message><RequestId>fault</RequestId></Error>"#
            ),
        ),
    };
    format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\nx-amzn-RequestId: fault\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some((head, body)) = read_request(&mut client, &mut buf).await {
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let fault = choose(state, &method, &path, &body);
        match fault {
            Some(Fault::Drop) => return Ok(()),
            Some(Fault::Delay(ms)) => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await
            }
            Some(Fault::Refuse(status, code)) => {
                client
                    .write_all(&refusal(&service_of(&head), status, code))
                    .await?;
                continue;
            }
            _ => {}
        }
        let mut server = TcpStream::connect(upstream).await?;
        server.write_all(&with_connection_close(&head)).await?;
        server.write_all(&body).await?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).await?;
        if fault == Some(Fault::LoseAnswer) {
            return Ok(());
        }
        if fault == Some(Fault::Truncate)
            && let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let body = answer.len() - (head_end + 4);
            client.write_all(&answer[..head_end + 4 + body / 2]).await?;
            return Ok(());
        }
        client.write_all(&answer).await?;
        // The upstream answered with `Connection: close`; so does this connection.
        return Ok(());
    }
    Ok(())
}
