//! `imgshare-bench http`: requests per second of `GET /v2/images/{id}` and
//! `PATCH /v2/images/{id}` against the real router on a loopback socket, with keep-alive
//! connections driven by a small HTTP/1.1 client written here (no load generator to install).
//! With `--peer URL` the same requests then go to another Glance v2 server (a reference Glance
//! started by `peer/glance.sh`), identified by Glance's trusted-header identity instead of a
//! token, and the ratios are printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use clap::Args;
use imgshare_core::{Profile, Region};
use imgshare_server::{router, AppState, Identity, TokenStore};
use imgshare_store::{DbOptions, Durability, Engine, EngineOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `imgshare-bench http`.
#[derive(Args)]
pub(crate) struct HttpArgs {
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds per measured operation.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Sync the WAL at checkpoints only (`synchronous=NORMAL`) rather than every commit.
    #[arg(long)]
    pub durability_normal: bool,
    /// A reference Glance v2 server (`http://host:port`) to send the same requests to, after
    /// ours; it must take its identity from `X-Project-Id`/`X-Roles` headers (no Keystone).
    #[arg(long)]
    pub peer: Option<String>,
}

const TOKEN: &str = "bench-token";
const TENANT: &str = "111111";

/// Builds the `n`-th request of an operation.
type MakeRequest = Arc<dyn Fn(usize) -> Request + Send + Sync>;

struct Request {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// A server under test: where it listens and how a request says who sends it.
#[derive(Clone)]
struct Target {
    name: String,
    address: std::net::SocketAddr,
    /// Header lines (each ending in CRLF) that identify tenant `TENANT` with role `member`.
    identity: Arc<str>,
}

impl Request {
    fn bytes(&self, identity: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: bench\r\n{identity}Content-Length: {}\r\n",
            self.method,
            self.path,
            self.body.len()
        );
        if let Some(content_type) = self.content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response: its status, its body, and whether the server closes the connection after it.
struct Response {
    status: u16,
    body: Vec<u8>,
    closes: bool,
}

/// Sends one request on a keep-alive connection and reads the whole response.
async fn round_trip(stream: &mut BufReader<TcpStream>, request: &[u8]) -> Result<Response> {
    stream.get_mut().write_all(request).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let mut length = 0_usize;
    let mut closes = false;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
            if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close")
            {
                closes = true;
            }
            ensure!(
                !name.eq_ignore_ascii_case("transfer-encoding"),
                "chunked responses are not read by this client"
            );
        }
    }
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Response {
        status,
        body,
        closes,
    })
}

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    non_2xx: usize,
    /// Connections the server closed (each reopened, its time counted).
    reconnects: usize,
}

async fn load(
    target: &Target,
    connections: usize,
    duration: Duration,
    make: MakeRequest,
) -> Result<Figures> {
    let address = target.address;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let stop = Arc::clone(&stop);
        let make = Arc::clone(&make);
        let identity = Arc::clone(&target.identity);
        tasks.push(tokio::spawn(async move {
            let mut stream = BufReader::new(TcpStream::connect(address).await?);
            let mut latencies = Vec::new();
            let mut non_2xx = 0;
            let mut reconnects = 0;
            let mut sequence = connection;
            while !stop.load(Ordering::Relaxed) {
                let request = make(sequence).bytes(&identity);
                sequence += connections;
                let sent = Instant::now();
                let response = round_trip(&mut stream, &request).await?;
                if response.closes {
                    stream = BufReader::new(TcpStream::connect(address).await?);
                    reconnects += 1;
                }
                latencies.push(sent.elapsed());
                if !(200..300).contains(&response.status) {
                    non_2xx += 1;
                }
            }
            anyhow::Ok((latencies, non_2xx, reconnects))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut figures = Figures {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        non_2xx: 0,
        reconnects: 0,
    };
    for task in tasks {
        let (latencies, non_2xx, reconnects) = task.await??;
        figures.requests += latencies.len();
        figures.latencies.extend(latencies);
        figures.non_2xx += non_2xx;
        figures.reconnects += reconnects;
    }
    figures.elapsed = started.elapsed();
    figures.latencies.sort();
    Ok(figures)
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted
        .get(index)
        .map_or(0.0, |latency| latency.as_secs_f64() * 1e6)
}

/// `imgshare-bench http`.
pub(crate) fn http(args: &HttpArgs) -> Result<()> {
    ensure!(args.connections > 0, "--connections must be at least 1");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

async fn run(args: &HttpArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let durability = if args.durability_normal {
        Durability::Normal
    } else {
        Durability::Full
    };
    let engine = Engine::open(
        &dir.path().join("http.db"),
        EngineOptions {
            profile: Profile::glance(),
            db: DbOptions {
                durability,
                ..DbOptions::default()
            },
        },
    )?;
    let mut tokens = TokenStore::new();
    tokens.insert(
        TOKEN,
        Identity {
            tenant_id: TENANT.into(),
            user_id: "bench".into(),
            roles: vec!["member".into()],
        },
    );
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), Arc::new(tokens), Region::parse("DFW")?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ours = Target {
        name: "imgshare".into(),
        address: listener.local_addr()?,
        identity: format!("X-Auth-Token: {TOKEN}\r\n").into(),
    };
    tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let duration = Duration::from_secs(args.seconds.max(1));
    println!(
        "loopback, {} keep-alive connections, {} s per operation, imgshare durability {durability:?}, glance profile",
        args.connections,
        duration.as_secs()
    );
    let before = engine.group_commits();
    let mut figures = measure(&ours, args.connections, duration).await?;
    let after = engine.group_commits();
    // The same server's ceiling: a route through the same layers (token check included) that
    // touches no database.
    let ceiling = Arc::new(|_: usize| Request {
        method: "GET",
        path: format!("/v2/{TENANT}"),
        content_type: None,
        body: Vec::new(),
    });
    figures.push((
        "GET /v2/{tenant} (no db)",
        load(&ours, args.connections, duration, ceiling).await?,
    ));
    let groups = after.groups - before.groups;
    let commands = after.commands - before.commands;
    let mut measured = vec![(ours.clone(), figures)];
    if let Some(peer) = &args.peer {
        let peer = Target {
            name: format!("peer {peer}"),
            address: peer_address(peer).await?,
            identity: format!(
                "X-Identity-Status: Confirmed\r\nX-Project-Id: {TENANT}\r\n\
                 X-User-Id: bench\r\nX-Roles: member,reader\r\n"
            )
            .into(),
        };
        let figures = measure(&peer, args.connections, duration).await?;
        measured.push((peer, figures));
    }
    println!(
        "  {:<40} {:<24} {:>9} {:>10} {:>9} {:>9} {:>7} {:>6}",
        "server", "operation", "requests", "req/s", "p50 µs", "p99 µs", "non-2xx", "reconn"
    );
    for (target, operations) in &measured {
        for (operation, figures) in operations {
            println!(
                "  {:<40} {:<24} {:>9} {:>10.0} {:>9.0} {:>9.0} {:>7} {:>6}",
                target.name,
                operation,
                figures.requests,
                per_second(figures),
                percentile(&figures.latencies, 0.5),
                percentile(&figures.latencies, 0.99),
                figures.non_2xx,
                figures.reconnects
            );
        }
    }
    println!(
        "  imgshare group commit during the PATCHes: {commands} commands in {groups} groups ({:.1} per group)",
        commands as f64 / groups.max(1) as f64
    );
    if let Some((_, ours)) = measured.first() {
        if let [(_, get), _, (_, ceiling)] = ours.as_slice() {
            println!(
                "  GET /v2/images/{{id}} / GET /v2/{{tenant}} (no db) = {:.1} %",
                100.0 * per_second(get) / per_second(ceiling).max(1e-9)
            );
        }
    }
    if let [(_, ours), (_, peer)] = measured.as_slice() {
        for ((operation, ours), (_, peer)) in ours.iter().zip(peer) {
            println!(
                "  {operation}: imgshare / peer = {:.1} x the requests/s",
                per_second(ours) / per_second(peer).max(1e-9)
            );
        }
    }
    Ok(())
}

fn per_second(figures: &Figures) -> f64 {
    figures.requests as f64 / figures.elapsed.as_secs_f64().max(1e-9)
}

/// `http://host:port` (no path) to a socket address.
async fn peer_address(url: &str) -> Result<std::net::SocketAddr> {
    let authority = url
        .strip_prefix("http://")
        .context("--peer: an http:// URL")?
        .trim_end_matches('/');
    ensure!(
        !authority.contains('/'),
        "--peer: host and port only, no path"
    );
    tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("--peer: resolving {authority}"))?
        .next()
        .with_context(|| format!("--peer: {authority} resolves to no address"))
}

/// Creates one image on `target`, then loads it with GETs and with PATCHes of its name.
async fn measure(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Result<Vec<(&'static str, Figures)>> {
    let mut stream = BufReader::new(TcpStream::connect(target.address).await?);
    let create = Request {
        method: "POST",
        path: "/v2/images".into(),
        content_type: Some("application/json"),
        body: br#"{"name": "bench", "disk_format": "raw", "container_format": "bare"}"#.to_vec(),
    };
    let response = round_trip(&mut stream, &create.bytes(&target.identity)).await?;
    ensure!(
        response.status == 201,
        "{}: creating the image answered {}",
        target.name,
        response.status
    );
    let created: serde_json::Value = serde_json::from_slice(&response.body)?;
    let id = created
        .get("id")
        .and_then(serde_json::Value::as_str)
        .context("the created image has no id")?
        .to_owned();
    drop(stream);

    let get_path = format!("/v2/images/{id}");
    let get = Arc::new(move |_: usize| Request {
        method: "GET",
        path: get_path.clone(),
        content_type: None,
        body: Vec::new(),
    });
    let patch_path = format!("/v2/images/{id}");
    let patch = Arc::new(move |sequence: usize| Request {
        method: "PATCH",
        path: patch_path.clone(),
        content_type: Some("application/openstack-images-v2.1-json-patch"),
        body: format!(r#"[{{"op": "replace", "path": "/name", "value": "bench-{sequence}"}}]"#)
            .into_bytes(),
    });
    let operations: [(&'static str, MakeRequest); 2] = [
        ("GET /v2/images/{id}", get),
        ("PATCH /v2/images/{id}", patch),
    ];
    let mut measured = Vec::new();
    for (name, make) in operations {
        measured.push((name, load(target, connections, duration, make).await?));
    }
    Ok(measured)
}
