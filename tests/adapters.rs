//! One scripted scenario through the core `Pair`, the blocking adapter (over a Unix socket
//! pair) and the tokio adapter (over an in-memory duplex pipe): the event transcripts of both
//! sides must be identical.
//!
//! The script is request/response (each step waits for its answer), so the transcript does
//! not depend on how the bytes were chunked.

mod support;
use hybi::{ClientRequest, CloseCode, Error, Event, Message, MessageKind};
use support::*;

/// The client's steps.
enum Step {
    Send(Message),
    Fragments(&'static [&'static str]),
    Ping(&'static [u8]),
    Close(u16, &'static str),
}

fn script() -> Vec<Step> {
    vec![
        Step::Send(Message::text("hello")),
        Step::Send(Message::binary(vec![1, 2, 3])),
        Step::Ping(b"p"),
        Step::Fragments(&["frag", "me", "nt"]),
        Step::Send(Message::text("κόσμε")),
        Step::Close(1000, "bye"),
    ]
}

const CLIENT: &[&str] = &[
    "text \"hello\"",
    "binary [1, 2, 3]",
    "pong [112]",
    "text \"fragment\"",
    "text \"κόσμε\"",
    "close-received 1000 \"\"",
    "closed 1000 \"\" Local clean=true error=",
];

const SERVER: &[&str] = &[
    "text \"hello\"",
    "binary [1, 2, 3]",
    "ping [112]",
    "text \"fragment\"",
    "text \"κόσμε\"",
    "close-received 1000 \"bye\"",
    "closed 1000 \"bye\" Remote clean=true error=",
];

fn closed_line(e: &Error) -> String {
    match e {
        Error::Closed(o) => describe(&Event::Closed(Box::new(o.clone()))),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn core_pair() {
    let mut p = Pair::new();
    p.take_logs();
    let mut client_log = Vec::new();
    let mut server_log = Vec::new();
    for step in script() {
        match step {
            Step::Send(m) => p.client.send(m).unwrap(),
            Step::Fragments(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    p.client
                        .send_fragment(MessageKind::Text, part.as_bytes(), i + 1 == parts.len())
                        .unwrap();
                }
            }
            Step::Ping(payload) => p.client.send_ping(payload).unwrap(),
            Step::Close(code, reason) => p.client.close(CloseCode::from(code), reason).unwrap(),
        }
        // Drive by hand so the server echoes like the adapters' echo loops.
        loop {
            let c = take_output(&mut p.client);
            p.server.handle_input(&c);
            let mut echoed = false;
            while let Some(ev) = p.server.next_event() {
                server_log.push(describe(&ev));
                if let Event::Message(m) = ev {
                    p.server.send(m).unwrap();
                    echoed = true;
                }
            }
            let s = take_output(&mut p.server);
            p.client.handle_input(&s);
            if p.server.wants_shutdown() {
                p.client.handle_eof();
            }
            client_log.extend(drain_events(&mut p.client));
            if c.is_empty() && s.is_empty() && !echoed {
                break;
            }
        }
    }
    assert_eq!(client_log, CLIENT);
    assert_eq!(server_log, SERVER);
}

#[cfg(unix)]
#[test]
fn blocking_adapter() {
    use hybi::blocking;
    use std::os::unix::net::UnixStream;
    let (a, b) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut ws = blocking::accept(b).unwrap();
        let mut log = Vec::new();
        loop {
            match ws.recv_event() {
                Ok(ev) => {
                    log.push(describe(&ev));
                    if let Event::Message(m) = ev {
                        ws.send_message(m).unwrap();
                    }
                }
                Err(e) => {
                    log.push(closed_line(&e));
                    return log;
                }
            }
        }
    });
    let (mut ws, response) = blocking::client_with(
        a,
        ClientRequest::new("ws://localhost/").unwrap(),
        client_config(),
        Default::default(),
    )
    .unwrap();
    assert_eq!(response.status(), 101);
    let mut log = Vec::new();
    for step in script() {
        match step {
            Step::Send(m) => ws.send_message(m).unwrap(),
            Step::Fragments(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    ws.connection_mut()
                        .send_fragment(MessageKind::Text, part.as_bytes(), i + 1 == parts.len())
                        .unwrap();
                }
                ws.flush_queue().unwrap();
            }
            Step::Ping(payload) => ws.ping(payload).unwrap(),
            Step::Close(code, reason) => {
                ws.close_with(CloseCode::from(code), reason).unwrap();
                loop {
                    match ws.recv_event() {
                        Ok(ev) => log.push(describe(&ev)),
                        Err(e) => {
                            log.push(closed_line(&e));
                            break;
                        }
                    }
                }
                continue;
            }
        }
        log.push(describe(&ws.recv_event().unwrap()));
    }
    assert_eq!(log, CLIENT);
    assert_eq!(server.join().unwrap(), SERVER);
}

#[test]
fn tokio_adapter() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = tokio::io::duplex(64 << 10);
        let server = tokio::spawn(async move {
            let mut ws = hybi::tokio::accept(b).await.unwrap();
            let mut log = Vec::new();
            loop {
                match ws.recv_event().await {
                    Ok(ev) => {
                        log.push(describe(&ev));
                        if let Event::Message(m) = ev {
                            ws.send_message(m).await.unwrap();
                        }
                    }
                    Err(e) => {
                        log.push(closed_line(&e));
                        return log;
                    }
                }
            }
        });
        let (mut ws, _) = hybi::tokio::client_with(
            a,
            ClientRequest::new("ws://localhost/").unwrap(),
            client_config(),
            Default::default(),
        )
        .await
        .unwrap();
        let mut log = Vec::new();
        for step in script() {
            match step {
                Step::Send(m) => ws.send_message(m).await.unwrap(),
                Step::Fragments(parts) => {
                    for (i, part) in parts.iter().enumerate() {
                        ws.connection_mut()
                            .send_fragment(MessageKind::Text, part.as_bytes(), i + 1 == parts.len())
                            .unwrap();
                    }
                    ws.flush_queue().await.unwrap();
                }
                Step::Ping(payload) => ws.ping(payload).await.unwrap(),
                Step::Close(code, reason) => {
                    ws.close_with(CloseCode::from(code), reason).await.unwrap();
                    loop {
                        match ws.recv_event().await {
                            Ok(ev) => log.push(describe(&ev)),
                            Err(e) => {
                                log.push(closed_line(&e));
                                break;
                            }
                        }
                    }
                    continue;
                }
            }
            log.push(describe(&ws.recv_event().await.unwrap()));
        }
        assert_eq!(log, CLIENT);
        assert_eq!(server.await.unwrap(), SERVER);
    });
}
