//! Running the real `imgshare serve` from a test.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Kills the server when the test ends, passed or not.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value after `prefix` on the first line of `lines` that starts with it.
pub(crate) fn find<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"))
}

/// Starts `imgshare serve --db DB --listen 127.0.0.1:0 EXTRA...` and reads its banner up to the
/// `listening on http://ADDR` line.
pub(crate) fn start(db: &Path, extra: &[&str]) -> (Server, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_imgshare"))
        .arg("serve")
        .arg("--db")
        .arg(db)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let lines = banner(&mut server);
    (server, lines)
}

/// Reads the server's stdout up to the `listening on http://ADDR` line.
pub(crate) fn banner(server: &mut Server) -> Vec<String> {
    let stdout = server.0.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("listening on http://");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}
