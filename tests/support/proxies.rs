//! Real proxies for the client tests, started by the tests themselves: tinyproxy (HTTP
//! CONNECT, optionally with Basic auth) and Dante's `danted` (SOCKS5, optionally with the
//! username/password method), each from a config written to a temporary directory, on a free
//! 127.0.0.1 port, killed on drop. A test whose binary is not installed prints a `skipped:`
//! line and returns, or fails when `CI` is set (CI installs them: see `.ci/run`).
//!
//! Also a scripted fake proxy, for what the real ones don't do on demand (garbage, silence, an
//! endless head, a SOCKS failure code of our choosing) and to see the exact bytes a client sent.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The account Dante checks the username/password method against (its `username` method uses
/// the system's password database). Created by `.ci/run`, or here when running as root.
pub const SOCKS_USER: &str = "hybi-socks";
pub const SOCKS_PASSWORD: &str = "hybi-socks-pw";

/// Without a proxy (or its account): fails under CI (which installs them), else says so on
/// stderr, past the test harness's capture, like the interop tests.
pub fn skip(note: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    if ci {
        panic!("{note} (CI must provide it: see .ci/run)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {note}");
}

/// The path of an installed program, searched in `PATH` and the sbin directories (`danted`
/// lives in /usr/sbin, which a non-root `PATH` may lack).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running proxy: killed, and its directory removed, on drop.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Service {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The proxy's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hybi-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program` with the config `config(port, dir)` on a free port, and waits until the
/// port accepts. Tries a few ports (another process may take the free one first).
fn start(
    name: &'static str,
    program: &str,
    args: impl Fn(&PathBuf) -> Vec<String>,
    config: impl Fn(u16, &PathBuf) -> String,
) -> Option<Service> {
    let Some(binary) = find_binary(program) else {
        let package = if program == "danted" {
            "dante-server"
        } else {
            program
        };
        skip(&format!(
            "{program} not installed (apt-get install {package})"
        ));
        return None;
    };
    for _ in 0..3 {
        let dir = temp_dir(name);
        let port = free_port();
        let conf = dir.join("conf");
        std::fs::write(&conf, config(port, &dir)).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(&binary)
            .args(args(&conf))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut service = Service {
            name,
            port,
            child,
            dir,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if TcpStream::connect(service.addr()).is_ok() {
                return Some(service);
            }
            if let Ok(Some(_)) = service.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{name} did not start on port {port}:\n{}", service.log());
    }
    panic!("{name} did not start");
}

/// tinyproxy on a free port; with `auth`, Basic authentication with that user and password.
pub fn tinyproxy(auth: Option<(&str, &str)>) -> Option<Service> {
    let auth = auth
        .map(|(u, p)| format!("BasicAuth {u} {p}\n"))
        .unwrap_or_default();
    start(
        "tinyproxy",
        "tinyproxy",
        |conf| vec!["-d".into(), "-c".into(), conf.display().to_string()],
        |port, dir| {
            // No Allow line: any client (all are local); no ConnectPort line: any port.
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Info\n\
                 PidFile \"{}\"\n{auth}",
                dir.join("pid").display()
            )
        },
    )
}

/// danted on a free port; with `auth`, only the username/password method (checked against
/// the system account [`SOCKS_USER`], see [`socks_user`]).
pub fn danted(auth: bool) -> Option<Service> {
    let method = if auth { "username" } else { "none" };
    start(
        "danted",
        "danted",
        |conf| {
            vec![
                "-f".into(),
                conf.display().to_string(),
                "-N".into(),
                "1".into(),
            ]
        },
        |port, dir| {
            // As root (CI): privileged operations (reading the password database) as root, the
            // rest as nobody; as another user, everything as that user. `external: lo` lets it
            // reach targets on 127.0.0.1 and ::1.
            let users = if is_root() {
                "user.privileged: root\nuser.unprivileged: nobody\n"
            } else {
                ""
            };
            format!(
                "logoutput: {log}\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: lo\n\
                 clientmethod: none\n\
                 socksmethod: {method}\n\
                 {users}\
                 client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 127.0.0.0/8 to: ::/0 }}\n",
                log = dir.join("log").display()
            )
        },
    )
}

/// Whether the tests run as root.
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    })
}

/// Makes sure the account Dante's username method checks exists with [`SOCKS_PASSWORD`]:
/// `.ci/run` creates it; as root the tests create it if missing (a system account without a
/// home or a login shell) and set its password. `false` (after [`skip`]) when not root.
pub fn socks_user() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if !is_root() {
            // Dante checks the password against the shadow file, which only root reads.
            skip("Dante's username method needs root (to read the password database)");
            return false;
        }
        let exists = Command::new("id")
            .arg(SOCKS_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !exists {
            let created = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SOCKS_USER,
                ])
                .status()
                .is_ok_and(|s| s.success());
            if !created {
                skip(&format!("could not create the account {SOCKS_USER}"));
                return false;
            }
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{SOCKS_USER}:{SOCKS_PASSWORD}\n").as_bytes())
            .unwrap();
        chpasswd.wait().unwrap().success()
    })
}

/// What the fake proxy does with each connection.
#[derive(Clone)]
pub enum Script {
    /// Reads the request head (HTTP) and answers these bytes, then closes.
    Answer(&'static [u8]),
    /// Reads the request head, then closes without a word.
    Close,
    /// Reads the request head, then says nothing (and keeps the connection open).
    Silent,
    /// Reads the request head, then sends header lines forever.
    Endless,
    /// SOCKS5: reads the greeting, answers these bytes and closes.
    Socks(&'static [u8]),
    /// A working HTTP CONNECT proxy: answers 200 and relays to the target it was asked for.
    Tunnel,
}

/// A scripted proxy on 127.0.0.1: runs `script` for each connection and records the bytes each
/// client sent first (the HTTP request head, or the SOCKS greeting).
pub struct FakeProxy {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeProxy {
    pub fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let record = received.clone();
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let (script, record) = (script.clone(), record.clone());
                thread::spawn(move || serve(tcp, script, record));
            }
        });
        Self { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads received so far, as text.
    pub fn heads(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .collect()
    }
}

fn serve(mut tcp: TcpStream, script: Script, record: Arc<Mutex<Vec<Vec<u8>>>>) {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if let Script::Socks(answer) = script {
        let mut greeting = [0u8; 3];
        if tcp.read_exact(&mut greeting).is_ok() {
            record.lock().unwrap().push(greeting.to_vec());
            let _ = tcp.write_all(answer);
        }
        // Read what follows (the request), so the close is a FIN, not a reset.
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.read(&mut [0u8; 512]);
        return;
    }
    let Some(head) = crate::servers::read_head(&mut tcp) else {
        return;
    };
    record.lock().unwrap().push(head.clone());
    match script {
        Script::Answer(answer) => {
            let _ = tcp.write_all(answer);
        }
        Script::Close | Script::Socks(_) => {}
        Script::Silent => thread::sleep(Duration::from_secs(10)),
        Script::Endless => {
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n");
            while tcp
                .write_all(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
                .is_ok()
            {}
        }
        Script::Tunnel => {
            let head = String::from_utf8_lossy(&head).into_owned();
            let authority = head.split(' ').nth(1).unwrap_or("").to_owned();
            let Ok(target) = TcpStream::connect(authority.as_str()) else {
                let _ = tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                return;
            };
            tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            relay(tcp, target);
        }
    }
}

/// Copies bytes both ways until either side ends.
fn relay(client: TcpStream, target: TcpStream) {
    let _ = client.set_read_timeout(None);
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let a = pipe(client.try_clone().unwrap(), target.try_clone().unwrap());
    let b = pipe(target, client);
    let _ = a.join();
    let _ = b.join();
}
