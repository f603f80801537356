//! The structure ARCHITECTURE.md describes, checked: the module graph of `src/` is one-way
//! (each top-level module imports only from the layers below it), the sans-IO core touches no
//! socket, thread or clock, and the adapters decide nothing about the protocol.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers of `src/`, bottom up: a module may import from the ones before it only.
const LAYERS: &[&str] = &[
    "role",
    "error",
    "frame",
    "utf8",
    "handshake",
    "extensions",
    "config",
    "conn",
    "testing",
    "http",
    "driver",
    "connect",
    "blocking",
    "tokio",
    "tls",
    "hyper",
    "http2",
    "axum",
];

/// The sans-IO core: no_std, no I/O, no clock.
const CORE: &[&str] = &[
    "role",
    "error",
    "frame",
    "utf8",
    "handshake",
    "extensions",
    "config",
    "conn",
];

/// The adapters: loops over the driver, with no protocol decisions of their own.
const ADAPTERS: &[&str] = &["blocking", "tokio"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src/` belongs to (`src/conn/send.rs` → `conn`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without comments (so docs that name other modules do not count).
fn code(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file refers to through `crate::` paths, with the line of each.
fn references(path: &Path) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in code(path).lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` lists are split by rustfmt one module per line in this crate.
            if !name.is_empty() && name.chars().next().unwrap().is_ascii_lowercase() {
                out.push((name, n + 1));
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in files(&src()) {
        let from = module_of(&file);
        if from == "lib" {
            continue;
        }
        let Some(&from_rank) = rank.get(from.as_str()) else {
            panic!(
                "{}: module {from} is not in LAYERS (add it where it belongs)",
                file.display()
            );
        };
        for (to, line) in references(&file) {
            if to == from {
                continue;
            }
            let Some(&to_rank) = rank.get(to.as_str()) else {
                panic!(
                    "{}:{line}: crate::{to} is not a module of LAYERS",
                    file.display()
                );
            };
            graph.entry(from.clone()).or_default().insert(to.clone());
            if to_rank > from_rank {
                wrong.push(format!("{}:{line}: {from} imports {to}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (each module may use only those before it in LAYERS):\n{}",
        wrong.join("\n")
    );
    // What the order implies, said plainly: no cycle.
    for (from, tos) in &graph {
        for to in tos {
            assert!(
                !graph.get(to).is_some_and(|back| back.contains(from)),
                "cycle: {from} <-> {to}"
            );
        }
    }
    // The graph is not trivially empty: the connection uses the codec and the handshake.
    assert!(graph["conn"].contains("frame") && graph["conn"].contains("handshake"));
}

#[test]
fn the_core_touches_no_socket_thread_or_clock() {
    let banned = [
        "std::io",
        "std::net",
        "std::thread",
        "std::time",
        "Instant::now",
        "tokio::",
    ];
    let mut found = Vec::new();
    for file in files(&src()) {
        if !CORE.contains(&module_of(&file).as_str()) {
            continue;
        }
        for (n, line) in code(&file).lines().enumerate() {
            for b in banned {
                if line.contains(b) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O or clocks in the core:\n{}",
        found.join("\n")
    );
}

/// Close codes and outcomes are decided by the core (and the driver), never built by an
/// adapter.
#[test]
fn adapters_construct_no_close_code_or_outcome() {
    let mut found = Vec::new();
    for file in files(&src()) {
        if !ADAPTERS.contains(&module_of(&file).as_str()) {
            continue;
        }
        for (n, line) in code(&file).lines().enumerate() {
            if line.contains("CloseCode::") || line.contains("CloseOutcome {") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "protocol decisions in an adapter:\n{}",
        found.join("\n")
    );
}

/// The adapters' loop files stay small: the logic is the driver's.
#[test]
fn adapter_loop_files_are_short() {
    for file in ["blocking/drive.rs", "tokio/drive.rs"] {
        let lines = fs::read_to_string(src().join(file))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 250, "src/{file} has {lines} lines (at most 250)");
    }
}
