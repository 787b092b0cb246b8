//! `imgshare serve` under a bounded loopback load: a mix of list, read, create, tag and member
//! requests on keep-alive connections. No answer may be a 5xx and the server's resident memory
//! must stay flat. `IMGSHARE_LOAD_SECS` (default 10) and `IMGSHARE_LOAD_CONNECTIONS` (default
//! 8) size the run; the figures of a 30 s run are in `docs/RELIABILITY.md`.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{find, start};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of a process in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    addr: String,
    token: String,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: &str, token: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            addr: addr.to_owned(),
            token: token.to_owned(),
            reader: BufReader::new(stream),
        }
    }

    /// Sends one request and reads the whole answer: (status, body).
    fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Auth-Token: {}\r\n",
            self.addr, self.token
        );
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("Content-Length: 0\r\n\r\n");
        }
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {status_line:?}"));
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body).unwrap();
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    latencies_us: Vec<u64>,
    server_errors: Vec<String>,
}

fn drive(addr: &str, token: &str, image_id: &str, worker: usize, until: Instant) -> Tally {
    let mut connection = Connection::open(addr, token);
    let mut tally = Tally::default();
    let mut created: Option<String> = None;
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // Mostly reads, as a catalogue is used; every round also writes.
        let (method, path, body) = match round % 8 {
            0 => (
                "POST",
                "/v2/images".to_owned(),
                Some(format!(r#"{{"name": "load-{worker}-{round}"}}"#)),
            ),
            1 => match &created {
                Some(id) => ("PUT", format!("/v2/images/{id}/tags/t{}", round % 16), None),
                None => ("GET", format!("/v2/images/{image_id}"), None),
            },
            2 | 5 => ("GET", "/v2/images?limit=20".to_owned(), None),
            3 => ("GET", format!("/v2/images/{image_id}/members"), None),
            4 => match &created {
                Some(id) => (
                    "DELETE",
                    // The tag this connection put three rounds ago.
                    format!("/v2/images/{id}/tags/t{}", (round - 3) % 16),
                    None,
                ),
                None => ("GET", "/v2/images".to_owned(), None),
            },
            _ => ("GET", format!("/v2/images/{image_id}"), None),
        };
        let started = Instant::now();
        let (status, answer) = connection.send(method, &path, body.as_deref());
        tally
            .latencies_us
            .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        *tally.statuses.entry(status).or_default() += 1;
        if status >= 500 {
            tally
                .server_errors
                .push(format!("{method} {path} -> {status} {answer}"));
        }
        if method == "POST" && status == 201 {
            let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
            created = value["id"].as_str().map(str::to_owned);
        }
    }
    tally
}

#[test]
fn serve_under_bounded_load_answers_without_5xx_and_keeps_memory_flat() {
    let seconds = env_number("IMGSHARE_LOAD_SECS", 10);
    let connections = usize::try_from(env_number("IMGSHARE_LOAD_CONNECTIONS", 8)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, lines) = start(
        &dir.path().join("load.db"),
        &["--demo", "--profile", "glance"],
    );
    let pid = server.0.id();
    let addr = find(&lines, "listening on http://").to_owned();
    let token = find(&lines, "export TOKEN_PRODUCER=")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let image_id = find(&lines, "export IMAGE_ID_PRODUCER=").to_owned();

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    // Memory is compared from the end of a warm-up (a fifth of the run), when the allocator,
    // SQLite's page caches and the connection pool have reached their working size.
    let warm_up = Duration::from_secs(seconds) / 5;
    let (tallies, samples) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|worker| {
                let (addr, token, image_id) = (&addr, &token, &image_id);
                scope.spawn(move || drive(addr, token, image_id, worker, until))
            })
            .collect();
        let sampler = scope.spawn(move || {
            let mut samples = Vec::new();
            std::thread::sleep(warm_up);
            while Instant::now() < until {
                samples.push(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(500));
            }
            samples.push(rss_kib(pid));
            samples
        });
        let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (tallies, sampler.join().unwrap())
    });
    let elapsed = started.elapsed().as_secs_f64();

    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut latencies: Vec<u64> = Vec::new();
    let mut server_errors = Vec::new();
    for tally in tallies {
        for (status, count) in tally.statuses {
            *statuses.entry(status).or_default() += count;
        }
        latencies.extend(tally.latencies_us);
        server_errors.extend(tally.server_errors);
    }
    latencies.sort_unstable();
    let total = latencies.len();
    let percentile = |p: usize| latencies[(total * p / 100).min(total - 1)];
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let peak = samples.iter().copied().max().unwrap();
    let step = samples.len().div_ceil(10).max(1);
    let trajectory: Vec<u64> = samples.iter().step_by(step).map(|kib| kib / 1024).collect();
    println!(
        "load: {total} requests in {elapsed:.1} s over {connections} connections \
         ({:.0} req/s); statuses {statuses:?}; latency p50 {} us, p99 {} us, max {} us; \
         RSS after warm-up {first} KiB, at end {last} KiB, peak {peak} KiB \
         (MiB over the run: {trajectory:?})",
        total as f64 / elapsed,
        percentile(50),
        percentile(99),
        latencies[total - 1],
    );
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:#?}");
    assert!(total > 0);
    assert!(
        statuses
            .keys()
            .all(|status| matches!(status, 200 | 201 | 204)),
        "unexpected statuses: {statuses:?}"
    );
    // Flat: growth after warm-up within a quarter of the warm size or 16 MiB, whichever is
    // larger (the database grows by every write, and SQLite caches some of it).
    let allowance = (first / 4).max(16 * 1024);
    assert!(
        last <= first + allowance,
        "memory grew from {first} KiB to {last} KiB"
    );
}
