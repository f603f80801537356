//! The chat example on several instances sharing one Redis: real `redis-server` and real
//! server processes over loopback.
//!
//! Each test starts its own `redis-server` on a free port (no persistence) and its chat
//! instances as child processes: this test binary run again with `CHAT_SERVER_ARGS` set, which
//! makes its `child_server` test the chat server's `main` (so `kill -9` kills a real server).
//! Without `redis-server` on the PATH the tests print `skipped: redis-server not installed`
//! (and fail when `CI` is set: `.ci/run` installs it).

#[allow(dead_code)]
#[path = "../examples/chat_server.rs"]
mod chat_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hybi::tokio::{MaybeTlsStream, WebSocketStream};
use hybi::{ClientRequest, CloseCode, Config, Message, Timeouts};
use serde_json::{json, Value};
use tokio::time::timeout;

type Ws = WebSocketStream<MaybeTlsStream>;

const ARGS_VAR: &str = "CHAT_SERVER_ARGS";

/// In a child process: the chat server (arguments separated by newlines in CHAT_SERVER_ARGS).
/// In the test run itself: nothing.
#[test]
fn child_server() {
    let Ok(args) = std::env::var(ARGS_VAR) else {
        return;
    };
    let args = args.split('\n').map(String::from).collect();
    let code = chat_server::main_with_args(args);
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

/// A child process, killed (SIGKILL) and reaped when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server not installed (CI must have it: apt-get install redis-server)"
        );
        eprintln!("skipped: redis-server not installed (apt-get install redis-server)");
    }
    found
}

/// Sends PING until Redis answers PONG.
fn wait_for_redis(port: u16, deadline: Duration) {
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0; 16];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read(&mut buf)
                    .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
            {
                return;
            }
        }
        assert!(
            start.elapsed() < deadline,
            "redis-server on port {port} did not answer within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` on `port`: no persistence, loopback only.
fn redis(port: u16) -> Proc {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_for_redis(port, Duration::from_secs(10));
    Proc { child }
}

/// A chat instance on Redis `port`, with its address once it listens.
fn instance(name: &str, redis_port: u16, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec![
        "--port".to_owned(),
        "0".to_owned(),
        "--redis".to_owned(),
        format!("redis://127.0.0.1:{redis_port}"),
        "--rate".to_owned(),
        "0".to_owned(),
        "--workers".to_owned(),
        "1".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
        .env(ARGS_VAR, args.join("\n"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a chat instance");
    // Killed if it does not start.
    let mut proc = Proc { child };
    let stdout = proc.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The test harness may print "test child_server ... " before it on the same line.
        const LINE: &str = "chat server listening on http://";
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find(LINE) {
                let _ = tx.send(line[at + LINE.len()..].trim_end_matches('/').to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            proc.kill9();
            panic!("chat instance {name} did not start within 30 s")
        });
    (proc, addr.parse().unwrap())
}

async fn connect(addr: SocketAddr) -> Ws {
    let request = ClientRequest::new(&format!("ws://{addr}/chat"))
        .unwrap()
        .protocol("chat");
    let (ws, _) = hybi::tokio::connect_with(
        request,
        hybi::ConnectOptions::default()
            .with_config(Config::default())
            .with_timeouts(Timeouts::default()),
    )
    .await
    .expect("connect");
    ws
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send_message(value.to_string()).await.unwrap();
}

async fn recv_json(ws: &mut Ws) -> Value {
    match ws.recv().await.expect("recv") {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("JSON"),
        Message::Binary(b) => panic!("expected JSON text, got {} binary bytes", b.len()),
    }
}

async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Joins `room` as `nick` on the instance at `addr`: the client and its welcome.
async fn join(addr: SocketAddr, nick: &str, room: &str, since: Option<u64>) -> (Ws, Value) {
    let mut ws = connect(addr).await;
    let mut j = json!({"type": "join", "nick": nick, "room": room});
    if let Some(s) = since {
        j["since"] = json!(s);
    }
    send_json(&mut ws, j).await;
    let welcome = recv_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{nick}: {welcome}");
    (ws, welcome)
}

/// The nicks that joined and left in a join/leave/presence object.
fn changes(v: &Value) -> Vec<(bool, String)> {
    match v["type"].as_str() {
        Some("join") => vec![(true, v["nick"].as_str().unwrap().to_owned())],
        Some("leave") => vec![(false, v["nick"].as_str().unwrap().to_owned())],
        Some("presence") => v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"] == "join", c["nick"].as_str().unwrap().to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads until a presence change `(joined, nick)` arrives.
async fn wait_change(ws: &mut Ws, joined: bool, nick: &str) -> Value {
    loop {
        let v = recv_json(ws).await;
        if changes(&v).iter().any(|(j, n)| *j == joined && n == nick) {
            return v;
        }
    }
}

fn ids(history: &Value) -> Vec<u64> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect()
}

async fn within<F: std::future::Future>(secs: u64, what: &str, f: F) -> F::Output {
    timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

#[tokio::test]
async fn two_instances_share_rooms_presence_history_and_nicks() {
    if !redis_installed() {
        return;
    }
    let port = free_port();
    let _redis = redis(port);
    let (_a, a) = instance("A", port, &[]);
    let (_b, b) = instance("B", port, &[]);
    within(60, "two instances", async {
        let (mut alice, w) = join(a, "alice", "lobby", None).await;
        assert_eq!(w["online"], json!(["alice"]));
        let (mut bob, w) = join(b, "bob", "lobby", None).await;
        // Presence is merged: bob, on B, sees alice, on A.
        assert_eq!(w["online"], json!(["alice", "bob"]));
        assert_eq!(w["count"], 2);
        let j = wait_change(&mut alice, true, "bob").await;
        assert_eq!(j["count"], 2);
        // Nicknames are unique per room across instances, case-insensitively.
        let mut dup = connect(b).await;
        send_json(&mut dup, json!({"type": "join", "nick": "ALICE"})).await;
        assert_eq!(
            recv_json(&mut dup).await,
            json!({"type": "error", "text": "nickname already taken"})
        );
        // Another room, on B.
        let (mut carol, w) = join(b, "carol", "dev", None).await;
        assert_eq!(w["online"], json!(["carol"]));

        // Messages cross within a room, with one id sequence.
        for i in 1..=3 {
            send_json(
                &mut alice,
                json!({"type": "message", "text": format!("a{i}")}),
            )
            .await;
            send_json(
                &mut bob,
                json!({"type": "message", "text": format!("b{i}")}),
            )
            .await;
        }
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let m = recv_type(&mut bob, "message").await;
            assert_eq!(m["room"], "lobby");
            seen.push((
                m["id"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            ));
        }
        let mut on_a = Vec::new();
        while on_a.len() < 6 {
            let m = recv_type(&mut alice, "message").await;
            on_a.push((
                m["id"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            ));
        }
        assert_eq!(
            seen, on_a,
            "both instances deliver the same messages in the same order"
        );
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        // ... and never into another room: carol's first message is dev's own.
        send_json(&mut carol, json!({"type": "message", "text": "dev only"})).await;
        let m = recv_type(&mut carol, "message").await;
        assert_eq!(
            (m["room"].as_str(), m["text"].as_str(), m["id"].as_u64()),
            (Some("dev"), Some("dev only"), Some(1))
        );

        // A newcomer on B gets the history written through A (and B).
        let (dave, w) = join(b, "dave", "lobby", None).await;
        let texts: Vec<String> = w["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, seen.iter().map(|s| s.1.clone()).collect::<Vec<_>>());
        assert_eq!(w["last_id"], 6);
        assert_eq!(w["count"], 3);
        drop(dave);
    })
    .await;
}

#[tokio::test]
async fn resume_with_since_on_the_other_instance() {
    if !redis_installed() {
        return;
    }
    let port = free_port();
    let _redis = redis(port);
    let (_a, a) = instance("A", port, &[]);
    let (_b, b) = instance("B", port, &[]);
    within(60, "resume", async {
        let (mut alice, _) = join(a, "alice", "lobby", None).await;
        let (mut eve, _) = join(a, "eve", "lobby", None).await;
        for i in 1..=4 {
            send_json(
                &mut alice,
                json!({"type": "message", "text": format!("m{i}")}),
            )
            .await;
        }
        let mut last = 0;
        while last < 4 {
            last = recv_type(&mut eve, "message").await["id"].as_u64().unwrap();
        }
        // eve drops; alice goes on.
        eve.close_with(CloseCode::NORMAL, "").await.unwrap();
        drop(eve);
        for i in 5..=9 {
            send_json(
                &mut alice,
                json!({"type": "message", "text": format!("m{i}")}),
            )
            .await;
        }
        let mut newest = 0;
        while newest < 9 {
            newest = recv_type(&mut alice, "message").await["id"]
                .as_u64()
                .unwrap();
        }
        // eve comes back on B with since: exactly what she missed, in order.
        let (mut eve, w) = join(b, "eve", "lobby", Some(last)).await;
        assert_eq!(ids(&w["history"]), [5, 6, 7, 8, 9]);
        let texts: Vec<&str> = w["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["m5", "m6", "m7", "m8", "m9"]);
        assert_eq!(w["truncated"], false);
        // And the next one live, no duplicate of the history before it.
        send_json(&mut alice, json!({"type": "message", "text": "m10"})).await;
        let m = recv_type(&mut eve, "message").await;
        assert_eq!(
            (m["id"].as_u64(), m["text"].as_str()),
            (Some(10), Some("m10"))
        );
    })
    .await;
}

#[tokio::test]
async fn killed_instance_users_leave_on_the_other() {
    if !redis_installed() {
        return;
    }
    let port = free_port();
    let _redis = redis(port);
    // A short presence TTL so the test is quick; the default (15 s) gives 20 s at most.
    let (mut a_proc, a) = instance("A", port, &["--presence-ttl", "2"]);
    let (_b, b) = instance("B", port, &["--presence-ttl", "2"]);
    within(60, "kill -9", async {
        let (_alice, _) = join(a, "alice", "lobby", None).await;
        let (_ann, _) = join(a, "ann", "lobby", None).await;
        let (mut bob, w) = join(b, "bob", "lobby", None).await;
        assert_eq!(w["count"], 3);
        let killed = Instant::now();
        a_proc.kill9();
        // Both leave, in one coalesced notice (or two), within ttl + ttl/3 + a margin.
        let mut left = Vec::new();
        let mut notices = 0;
        let mut count = 3;
        while left.len() < 2 {
            let v = recv_json(&mut bob).await;
            // Skip bob's own join.
            let c: Vec<_> = changes(&v)
                .into_iter()
                .filter(|(joined, _)| !joined)
                .collect();
            if c.is_empty() {
                continue;
            }
            notices += 1;
            left.extend(c.into_iter().map(|(_, nick)| nick));
            count = v["count"].as_u64().unwrap();
        }
        left.sort();
        assert_eq!(left, ["alice", "ann"]);
        assert_eq!(count, 1);
        assert_eq!(notices, 1, "one coalesced notice per room");
        let waited = killed.elapsed();
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        eprintln!("users of the killed instance left after {waited:?}");
        // Their nicknames are free again.
        let (_alice, w) = join(b, "alice", "lobby", None).await;
        assert_eq!(w["online"], json!(["bob", "alice"]));
    })
    .await;
}

#[tokio::test]
async fn redis_restart_is_survived() {
    if !redis_installed() {
        return;
    }
    let port = free_port();
    let mut redis_proc = redis(port);
    let (_a, a) = instance("A", port, &[]);
    let (_b, b) = instance("B", port, &[]);
    within(90, "redis restart", async {
        let (mut alice, _) = join(a, "alice", "lobby", None).await;
        let (mut bob, _) = join(b, "bob", "lobby", None).await;
        send_json(&mut alice, json!({"type": "message", "text": "before"})).await;
        assert_eq!(recv_type(&mut bob, "message").await["id"], 1);

        redis_proc.kill9();
        // The instances keep running and tell senders the room is unavailable.
        let error = loop {
            send_json(&mut alice, json!({"type": "message", "text": "while down"})).await;
            let v = recv_json(&mut alice).await;
            if v["type"] == "error" {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(error, json!({"type": "error", "room": "lobby", "text": "room temporarily unavailable, try again"}));

        // Redis comes back (empty: no persistence); messages cross again without a restart.
        let _redis = redis(port);
        let start = Instant::now();
        let mut attempt = 0;
        let got = loop {
            attempt += 1;
            send_json(&mut alice, json!({"type": "message", "text": format!("after {attempt}")})).await;
            let deadline = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(deadline);
            let mut got = None;
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    m = bob.recv() => match m {
                        Ok(Message::Text(t)) => {
                            let v: Value = serde_json::from_str(t.as_str()).unwrap();
                            if v["type"] == "message" {
                                got = Some(v);
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => panic!("bob lost: {e}"),
                    },
                }
            }
            if let Some(v) = got {
                break v;
            }
            assert!(start.elapsed() < Duration::from_secs(40), "no message crossed within 40 s of Redis coming back ({attempt} tries)");
        };
        // Ids keep increasing: the instances reseeded the counter from what they had seen.
        assert!(got["id"].as_u64().unwrap() >= 2, "{got}");
        eprintln!("messages crossed again {:?} after Redis came back", start.elapsed());
        // Presence was re-registered: a newcomer sees both.
        let (_c, w) = join(b, "carol", "lobby", None).await;
        let mut online: Vec<&str> = w["online"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        online.sort();
        assert_eq!(online, ["alice", "bob", "carol"]);
    })
    .await;
}
