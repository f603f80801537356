//! permessage-deflate (RFC 7692) interop with peers nobody here wrote, over 127.0.0.1 TCP:
//! Python `websockets` (v13+) and Node `ws` (pinned in `tests/interop/node/package.json`).
//!
//! Both directions, each with three parameter sets: the defaults; no context takeover both ways;
//! small windows (9 and 10 bits, one per direction). Each parameter is asked for by one side and
//! imposed by the other, so both halves of the negotiation logic meet a foreign one:
//!
//! - hybi's tokio client runs the checklist of `tests/interop/mod.rs` plus JSON-like chat text
//!   of 0 B to 1 MiB against `py_echo_server.py` / `node/echo_server.mjs`; with no context
//!   takeover and small windows its messages go out fragmented (compressed, RSV1 on the first
//!   frame only);
//! - `py_client.py --json` / `node/client.mjs` run their scripted checks against hybi's tokio
//!   echo server;
//! - a zip bomb from Python (64 MiB of zeros, about 64 KiB compressed) is refused by hybi's
//!   server with 1009 (message too big) at its 1 MiB limit.
//!
//! Every case checks that permessage-deflate was negotiated, with the expected parameters, as
//! both hybi (the 101's `Sec-WebSocket-Extensions`) and the peer report it.
//!
//! Needs `python3` with `websockets` >= 13, and `npm ci` in `tests/interop/node` (Node 18+).
//! Without them the tests print a note to stderr and pass, unless `CI` is set: then they fail.

mod interop;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hybi::{Config, DeflateConfig, Initiator};
use interop::*;

/// What the scripted clients close with.
const SCRIPT_CLIENT_CLOSE: (u16, &str) = (4001, "bye");

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Without the peer: fails under CI, else prints `note` to stderr and returns `false`.
fn skip_unless(ok: bool, note: &str) -> bool {
    if ok {
        return true;
    }
    if ci() {
        panic!("{note} (CI must provide it)");
    }
    // Straight to stderr, past the test harness's capture, so a plain `cargo test` shows it.
    let _ = writeln!(std::io::stderr(), "skipped: {note}");
    false
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import websockets.asyncio.client, websockets.asyncio.server, \
             websockets.extensions.permessage_deflate",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    skip_unless(
        ok,
        "python3 with `websockets` >= 13 not found (pip install websockets); the Python \
         permessage-deflate interop tests did not run",
    )
}

fn have_node() -> bool {
    let modules = interop_dir()
        .join("node/node_modules/ws/package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    skip_unless(
        modules && node,
        "tests/interop/node/node_modules missing (run `npm ci` in tests/interop/node) or no \
         `node`; the Node `ws` permessage-deflate interop tests did not run",
    )
}

/// One parameter set of the matrix.
struct Case {
    name: &'static str,
    /// hybi's client: its settings (what it asks for), and a write fragment size.
    hybi_client: DeflateConfig,
    fragment: Option<usize>,
    /// The peer's echo server options (what it imposes).
    peer_server: &'static [&'static str],
    /// hybi's server: what it imposes.
    hybi_server: DeflateConfig,
    /// The peer client's options (what it asks for).
    peer_client: &'static [&'static str],
}

fn case(name: &str) -> Case {
    match name {
        // Each side's defaults.
        "default" => Case {
            name: "default",
            hybi_client: DeflateConfig::default(),
            fragment: None,
            peer_server: &[],
            hybi_server: DeflateConfig::default(),
            peer_client: &[],
        },
        // The client asks the server for server_no_context_takeover; the server imposes
        // client_no_context_takeover.
        "no_context_takeover" => Case {
            name: "no_context_takeover",
            hybi_client: DeflateConfig::default().with_server_no_context_takeover(true),
            fragment: Some(16 << 10),
            peer_server: &["--client-no-context-takeover"],
            hybi_server: DeflateConfig::default().with_client_no_context_takeover(true),
            peer_client: &["--server-no-context-takeover"],
        },
        // The client asks for a small server window; the server imposes a small client window.
        "window_bits" => Case {
            name: "window_bits",
            hybi_client: DeflateConfig::default().with_server_max_window_bits(9),
            fragment: Some(4 << 10),
            peer_server: &["--client-max-window-bits", "10"],
            hybi_server: DeflateConfig::default().with_client_max_window_bits(9),
            peer_client: &["--server-max-window-bits", "10"],
        },
        _ => unreachable!(),
    }
}

/// The parameters each case must end with, hybi as the client (`peer_default`: what the
/// peer's own defaults give in the "default" case).
fn expected_hybi_client(c: &Case, peer_default: Params) -> Params {
    match c.name {
        "default" => peer_default,
        "no_context_takeover" => (true, true, 15, 15),
        _ => (false, false, 9, 10),
    }
}

fn expected_hybi_server(c: &Case) -> Params {
    match c.name {
        "default" => (false, false, 15, 15),
        "no_context_takeover" => (true, true, 15, 15),
        _ => (false, false, 10, 9),
    }
}

// ------------------------------------------------------------------ peers

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Python,
    Node,
}

impl Peer {
    fn available(self) -> bool {
        match self {
            Peer::Python => have_python(),
            Peer::Node => have_node(),
        }
    }

    /// The peer's echo server with deflate on and `extra` options, on a free port.
    fn echo_server(self, extra: &[&str]) -> (ChildGuard, u16) {
        let lifetime = (TEST_TIMEOUT.as_secs() + 30).to_string();
        let mut cmd = match self {
            Peer::Python => {
                let mut cmd = Command::new("python3");
                cmd.arg(interop_dir().join("py_echo_server.py")).args([
                    "--compression",
                    "deflate",
                    "--report-extensions",
                ]);
                cmd
            }
            Peer::Node => {
                let mut cmd = Command::new("node");
                cmd.arg(interop_dir().join("node/echo_server.mjs"))
                    .arg("--deflate");
                cmd
            }
        };
        cmd.args(["--port", "0", "--subprotocol", SUBPROTOCOL])
            .args(extra)
            .args(["--lifetime", &lifetime]);
        let what = format!("{self:?} echo server");
        let mut server = ChildGuard::spawn(&what, &mut cmd);
        let line = server.next_line(Duration::from_secs(30));
        let port = line
            .as_deref()
            .and_then(|l| l.strip_prefix("LISTENING "))
            .and_then(|p| p.trim().parse::<u16>().ok());
        match port {
            Some(port) => (server, port),
            None => panic!(
                "{what} did not print `LISTENING <port>` (got {line:?}); stderr:\n{}",
                server.kill_and_stderr()
            ),
        }
    }

    /// What the peer's server reported about the connection (its `EXTENSIONS` line).
    fn server_params(self, server: &mut ChildGuard) -> Params {
        let line = server
            .next_line(Duration::from_secs(10))
            .expect("the echo server printed no EXTENSIONS line");
        let ext = line
            .strip_prefix("EXTENSIONS ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        match self {
            Peer::Python => python_params("server", ext),
            Peer::Node => params_of(ext),
        }
    }

    /// Runs the peer's scripted client against `port` with deflate on; checks that it passed
    /// and returns the parameters it reports.
    fn run_client(self, port: u16, extra: &[&str]) -> Params {
        let url = format!("ws://127.0.0.1:{port}/");
        let timeout = TEST_TIMEOUT.as_secs().to_string();
        let (mut cmd, summary) = match self {
            Peer::Python => {
                let mut cmd = Command::new("python3");
                cmd.arg(interop_dir().join("py_client.py")).arg(&url).args([
                    "--compression",
                    "deflate",
                    "--json",
                ]);
                (cmd, "py_client: ")
            }
            Peer::Node => {
                let mut cmd = Command::new("node");
                cmd.arg(interop_dir().join("node/client.mjs"))
                    .arg(&url)
                    .arg("--deflate");
                (cmd, "node_client: ")
            }
        };
        cmd.args(["--subprotocol", SUBPROTOCOL])
            .args(extra)
            .args(["--timeout", &timeout]);
        let what = format!("{self:?} client");
        let client = ChildGuard::spawn(&what, &mut cmd);
        let (status, lines, stderr) = client.wait(TEST_TIMEOUT + Duration::from_secs(15));
        let out = lines.join("\n");
        let summary = lines
            .iter()
            .rev()
            .find(|l| l.starts_with(summary))
            .unwrap_or_else(|| panic!("{what} printed no summary:\n{out}\nstderr:\n{stderr}"));
        let counts: Vec<u32> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(
            status.success() && matches!(counts[..], [passed, 0] if passed > 0),
            "{what}: {status}, {summary}\n{out}\nstderr:\n{stderr}"
        );
        let ext = lines
            .iter()
            .find_map(|l| l.strip_prefix("ok - extensions ("))
            .and_then(|l| l.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{what}: no extensions check:\n{out}"));
        assert!(
            ext.contains("eflate"),
            "{what}: permessage-deflate was not negotiated:\n{out}"
        );
        match self {
            Peer::Python => python_params("client", ext),
            Peer::Node => params_of(ext),
        }
    }

    /// The parameters the peer's default server settings give hybi's default offer.
    fn default_server_params(self) -> Params {
        match self {
            // `websockets`' default: 12-bit windows both ways.
            Peer::Python => (false, false, 12, 12),
            Peer::Node => (false, false, 15, 15),
        }
    }
}

/// hybi's tokio client ↔ the peer's echo server, with the case's parameters.
fn hybi_client_to(peer: Peer, name: &str) {
    if !peer.available() {
        return;
    }
    let c = case(name);
    let (mut server, port) = peer.echo_server(c.peer_server);
    let config = Config::default()
        .with_deflate(c.hybi_client)
        .with_write_fragment_size(c.fragment);
    let what = format!("hybi tokio client ↔ {peer:?} server, {name}");
    let (close, extensions) = block_on(&what, async move {
        tokio_client_run(port, config, deflate_checklist()).await
    });
    check_close(&what, &close, CLIENT_CLOSE, Initiator::Local);
    let want = expected_hybi_client(&c, peer.default_server_params());
    assert_eq!(negotiated(&what, &extensions), want, "{what}: hybi's view");
    assert_eq!(
        peer.server_params(&mut server),
        want,
        "{what}: the peer's view"
    );
}

/// The peer's scripted client ↔ hybi's tokio echo server, with the case's parameters.
fn peer_client_to_hybi(peer: Peer, name: &str) {
    peer_client_to_hybi_echoing(peer, name, false);
}

/// The same, with hybi's echo sent as prepared messages (framed, and without server context
/// takeover compressed, once for any number of recipients): the peer inflates and checks them.
fn peer_client_to_hybi_prepared(peer: Peer, name: &str) {
    peer_client_to_hybi_echoing(peer, name, true);
}

fn peer_client_to_hybi_echoing(peer: Peer, name: &str, prepared: bool) {
    if !peer.available() {
        return;
    }
    let c = case(name);
    let what = format!("{peer:?} client ↔ hybi tokio server, {name}, prepared: {prepared}");
    let config = Config::default().with_deflate(c.hybi_server);
    let (port, rx) = if prepared {
        hybi_tokio_server_prepared(config, 1)
    } else {
        hybi_tokio_server_reporting(config, 1)
    };
    let peer_view = peer.run_client(port, c.peer_client);
    let end = server_end(&rx);
    check_server_end(&what, &end, SCRIPT_CLIENT_CLOSE, Initiator::Remote);
    let want = expected_hybi_server(&c);
    assert_eq!(
        negotiated(&what, &end.extensions),
        want,
        "{what}: hybi's view"
    );
    assert_eq!(peer_view, want, "{what}: the peer's view");
}

macro_rules! matrix {
    ($($test:ident: $run:ident($peer:expr, $case:literal);)*) => {
        $(
            #[test]
            fn $test() {
                $run($peer, $case);
            }
        )*
    };
}

matrix! {
    hybi_client_to_python_default: hybi_client_to(Peer::Python, "default");
    hybi_client_to_python_no_context_takeover: hybi_client_to(Peer::Python, "no_context_takeover");
    hybi_client_to_python_window_bits: hybi_client_to(Peer::Python, "window_bits");
    python_client_to_hybi_default: peer_client_to_hybi(Peer::Python, "default");
    python_client_to_hybi_no_context_takeover: peer_client_to_hybi(Peer::Python, "no_context_takeover");
    python_client_to_hybi_window_bits: peer_client_to_hybi(Peer::Python, "window_bits");
    hybi_client_to_node_default: hybi_client_to(Peer::Node, "default");
    hybi_client_to_node_no_context_takeover: hybi_client_to(Peer::Node, "no_context_takeover");
    hybi_client_to_node_window_bits: hybi_client_to(Peer::Node, "window_bits");
    node_client_to_hybi_default: peer_client_to_hybi(Peer::Node, "default");
    node_client_to_hybi_no_context_takeover: peer_client_to_hybi(Peer::Node, "no_context_takeover");
    node_client_to_hybi_window_bits: peer_client_to_hybi(Peer::Node, "window_bits");
    python_client_to_hybi_prepared_no_context_takeover: peer_client_to_hybi_prepared(Peer::Python, "no_context_takeover");
    python_client_to_hybi_prepared_window_bits: peer_client_to_hybi_prepared(Peer::Python, "window_bits");
    node_client_to_hybi_prepared_no_context_takeover: peer_client_to_hybi_prepared(Peer::Node, "no_context_takeover");
    node_client_to_hybi_prepared_window_bits: peer_client_to_hybi_prepared(Peer::Node, "window_bits");
}

/// A zip bomb from `websockets`: 64 MiB of zeros, compressed to about 64 KiB, against hybi's
/// server with a 1 MiB message limit. hybi inflates no further than the limit and closes with
/// 1009; the Python client checks the code.
#[test]
fn python_zip_bomb_to_hybi_is_refused_with_1009() {
    if !have_python() {
        return;
    }
    let config = Config::default()
        .with_deflate(DeflateConfig::default())
        .with_max_message_size(1 << 20);
    let (port, rx) = hybi_tokio_server_reporting(config, 1);
    let mut cmd = Command::new("python3");
    cmd.arg(interop_dir().join("py_client.py"))
        .arg(format!("ws://127.0.0.1:{port}/"))
        .args(["--compression", "deflate", "--subprotocol", SUBPROTOCOL])
        .args(["--zip-bomb", "64", "--timeout"])
        .arg(TEST_TIMEOUT.as_secs().to_string());
    let client = ChildGuard::spawn("py_client.py --zip-bomb", &mut cmd);
    let (status, lines, stderr) = client.wait(TEST_TIMEOUT + Duration::from_secs(15));
    let out = lines.join("\n");
    assert!(
        status.success() && lines.iter().any(|l| l.starts_with("ok - zip bomb")),
        "py_client.py --zip-bomb: {status}\n{out}\nstderr:\n{stderr}"
    );
    let end = server_end(&rx);
    negotiated("zip bomb", &end.extensions);
    // The adapter reports the failure as the protocol error (its close frame said 1009).
    assert!(
        matches!(&end.error, hybi::Error::Protocol(e @ hybi::ProtocolError::MessageTooLarge { len, max })
            if *max == 1 << 20 && *len <= (1 << 20) + 1 && e.close_code().as_u16() == 1009),
        "hybi server: {:?}",
        end.error
    );
}
