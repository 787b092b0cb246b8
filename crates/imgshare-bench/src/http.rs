//! `imgshare-bench http`: requests per second of `GET /v2/images/{id}` and
//! `PATCH /v2/images/{id}` against the real router on a loopback socket, with keep-alive
//! connections driven by a small HTTP/1.1 client written here (no load generator to install).

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
}

const TOKEN: &str = "bench-token";

/// Builds the `n`-th request of an operation.
type MakeRequest = Arc<dyn Fn(usize) -> Request + Send + Sync>;

struct Request {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: bench\r\nX-Auth-Token: {TOKEN}\r\nContent-Length: {}\r\n",
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

/// Sends one request on a keep-alive connection and reads the whole response: status and body.
async fn round_trip(stream: &mut BufReader<TcpStream>, request: &[u8]) -> Result<(u16, Vec<u8>)> {
    stream.get_mut().write_all(request).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let mut length = 0_usize;
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
        }
    }
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).await?;
    Ok((status, body))
}

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    non_2xx: usize,
}

async fn load(
    address: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
    make: MakeRequest,
) -> Result<Figures> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let stop = Arc::clone(&stop);
        let make = Arc::clone(&make);
        tasks.push(tokio::spawn(async move {
            let mut stream = BufReader::new(TcpStream::connect(address).await?);
            let mut latencies = Vec::new();
            let mut non_2xx = 0;
            let mut sequence = connection;
            while !stop.load(Ordering::Relaxed) {
                let request = make(sequence).bytes();
                sequence += connections;
                let sent = Instant::now();
                let (status, _) = round_trip(&mut stream, &request).await?;
                latencies.push(sent.elapsed());
                if !(200..300).contains(&status) {
                    non_2xx += 1;
                }
            }
            anyhow::Ok((latencies, non_2xx))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut figures = Figures {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        non_2xx: 0,
    };
    for task in tasks {
        let (latencies, non_2xx) = task.await??;
        figures.requests += latencies.len();
        figures.latencies.extend(latencies);
        figures.non_2xx += non_2xx;
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
            tenant_id: "111111".into(),
            user_id: "bench".into(),
            roles: vec!["member".into()],
        },
    );
    let state = AppState::new(Arc::new(engine), Arc::new(tokens), Region::parse("DFW")?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router(state)).await });

    // One image to read and update.
    let mut stream = BufReader::new(TcpStream::connect(address).await?);
    let create = Request {
        method: "POST",
        path: "/v2/images".into(),
        content_type: Some("application/json"),
        body: br#"{"name": "bench", "disk_format": "raw", "container_format": "bare"}"#.to_vec(),
    };
    let (status, body) = round_trip(&mut stream, &create.bytes()).await?;
    ensure!(status == 201, "creating the image answered {status}");
    let created: serde_json::Value = serde_json::from_slice(&body)?;
    let id = created
        .get("id")
        .and_then(serde_json::Value::as_str)
        .context("the created image has no id")?
        .to_owned();
    drop(stream);

    let duration = Duration::from_secs(args.seconds.max(1));
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
    println!(
        "loopback, {} keep-alive connections, {} s per operation, durability {durability:?}, glance profile",
        args.connections,
        duration.as_secs()
    );
    println!(
        "  {:<28} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "operation", "requests", "req/s", "p50 µs", "p99 µs", "non-2xx"
    );
    let operations: [(&str, MakeRequest); 2] = [
        ("GET /v2/images/{id}", get),
        ("PATCH /v2/images/{id}", patch),
    ];
    for (name, make) in operations {
        let figures = load(address, args.connections, duration, make).await?;
        println!(
            "  {:<28} {:>9} {:>10.0} {:>9.0} {:>9.0} {:>7}",
            name,
            figures.requests,
            figures.requests as f64 / figures.elapsed.as_secs_f64().max(1e-9),
            percentile(&figures.latencies, 0.5),
            percentile(&figures.latencies, 0.99),
            figures.non_2xx
        );
    }
    Ok(())
}
