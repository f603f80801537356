//! Interop with Python `websockets` (v13+), a peer nobody here wrote, over 127.0.0.1 TCP:
//!
//! - hybi's tokio and blocking clients run the checklist of `tests/interop/mod.rs` against
//!   `tests/interop/py_echo_server.py` (text, empty text, 4-byte UTF-8, binary at every
//!   length boundary and 1 MiB, fragmented messages, ping/pong, the "chat" subprotocol, a
//!   close with 4001 echoed and one with 4002 started by the server);
//! - `tests/interop/py_client.py` runs its own scripted checks against hybi's tokio and
//!   blocking echo servers; it must exit 0 with `py_client: N passed, 0 failed`.
//!
//! Needs `python3` with `websockets` (`pip install websockets`). Without it the tests print a
//! note and pass, unless `CI` is set: then they fail, because CI must have it installed.

mod interop;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hybi::{Config, Initiator};
use interop::*;

/// What `py_client.py` closes with.
const PY_CLIENT_CLOSE: (u16, &str) = (4001, "bye");

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// `true` when the Python peers can run. Without them: fails under CI, else skips with a note.
fn have_websockets() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import websockets.asyncio.client, websockets.asyncio.server",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    if ci {
        panic!(
            "the Python interop peers need python3 with `websockets` >= 13, which CI must \
             install: python3 -m pip install websockets"
        );
    }
    // Straight to stderr, past the test harness's capture, so a plain `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: pip install websockets (python3 with `websockets` >= 13 not found; \
         the Python interop tests did not run)"
    );
    false
}

/// `py_echo_server.py` on a free port, killed when the guard drops (its stdin stays open).
fn py_echo_server(extra: &[&str]) -> (ChildGuard, u16) {
    let mut cmd = Command::new("python3");
    cmd.arg(script("py_echo_server.py"))
        .args(["--port", "0", "--subprotocol", SUBPROTOCOL])
        .args(extra)
        .args(["--lifetime", &(TEST_TIMEOUT.as_secs() + 30).to_string()]);
    let mut server = ChildGuard::spawn("py_echo_server.py", &mut cmd);
    let line = server.next_line(Duration::from_secs(30));
    let port = line
        .as_deref()
        .and_then(|l| l.strip_prefix("LISTENING "))
        .and_then(|p| p.trim().parse::<u16>().ok());
    match port {
        Some(port) => (server, port),
        None => panic!(
            "py_echo_server.py did not print `LISTENING <port>` (got {line:?}); stderr:\n{}",
            server.kill_and_stderr()
        ),
    }
}

#[test]
fn hybi_tokio_client_to_python_server() {
    if !have_websockets() {
        return;
    }
    let (_server, port) = py_echo_server(&[]);
    block_on("hybi tokio client ↔ Python server", async {
        let c = tokio_client_checklist(port).await;
        check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
        let c = tokio_client_server_close(port).await;
        check_close("server close", &c, SERVER_CLOSE, Initiator::Remote);
    });
}

#[test]
fn hybi_blocking_client_to_python_server() {
    if !have_websockets() {
        return;
    }
    let (_server, port) = py_echo_server(&[]);
    with_timeout("hybi blocking client ↔ Python server", move || {
        let c = blocking_client_checklist(port);
        check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
        let c = blocking_client_server_close(port);
        check_close("server close", &c, SERVER_CLOSE, Initiator::Remote);
    });
}

/// Runs `py_client.py` against an echo server on `port`; checks its exit code and summary.
fn run_py_client(port: u16, extra: &[&str]) {
    let mut cmd = Command::new("python3");
    cmd.arg(script("py_client.py"))
        .arg(format!("ws://127.0.0.1:{port}/"))
        .args(["--subprotocol", SUBPROTOCOL])
        .args(extra)
        .args(["--timeout", &TEST_TIMEOUT.as_secs().to_string()]);
    let client = ChildGuard::spawn("py_client.py", &mut cmd);
    let (status, lines, stderr) = client.wait(TEST_TIMEOUT + Duration::from_secs(15));
    let out = lines.join("\n");
    let summary = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("py_client: "))
        .unwrap_or_else(|| panic!("py_client.py printed no summary:\n{out}\nstderr:\n{stderr}"));
    let counts: Vec<u32> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        status.success() && matches!(counts[..], [passed, 0] if passed > 0),
        "py_client.py: {status}, {summary}\n{out}\nstderr:\n{stderr}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("ok - subprotocol")),
        "no subprotocol check:\n{out}"
    );
}

#[test]
fn python_client_to_hybi_tokio_server() {
    if !have_websockets() {
        return;
    }
    let (port, rx) = hybi_tokio_server(Config::default(), 1);
    run_py_client(port, &[]);
    let end = server_end(&rx);
    check_server_end(
        "hybi tokio server",
        &end,
        PY_CLIENT_CLOSE,
        Initiator::Remote,
    );
}

#[test]
fn python_client_to_hybi_blocking_server() {
    if !have_websockets() {
        return;
    }
    let (port, rx) = hybi_blocking_server(Config::default(), 1);
    run_py_client(port, &[]);
    let end = server_end(&rx);
    check_server_end(
        "hybi blocking server",
        &end,
        PY_CLIENT_CLOSE,
        Initiator::Remote,
    );
}

/// The Python server pings every 50 ms while the checklist runs: hybi's clients answer
/// between (and while sending and receiving) large messages.
#[test]
fn hybi_clients_to_python_server_that_pings() {
    if !have_websockets() {
        return;
    }
    let (_server, port) = py_echo_server(&["--ping-interval", "0.05"]);
    block_on("hybi tokio client ↔ pinging Python server", async {
        let c = tokio_client_checklist(port).await;
        check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
    });
    with_timeout(
        "hybi blocking client ↔ pinging Python server",
        move || {
            let c = blocking_client_checklist(port);
            check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
        },
    );
}

/// A client offering permessage-deflate (as browsers and `websockets` do by default): hybi,
/// which has no extensions, declines it and everything goes through uncompressed.
#[test]
fn python_client_offering_deflate_to_hybi_tokio_server() {
    if !have_websockets() {
        return;
    }
    let (port, rx) = hybi_tokio_server(Config::default(), 1);
    run_py_client(port, &["--compression", "deflate"]);
    let end = server_end(&rx);
    check_server_end(
        "hybi tokio server",
        &end,
        PY_CLIENT_CLOSE,
        Initiator::Remote,
    );
}
