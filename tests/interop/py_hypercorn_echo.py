"""A WebSocket echo server on Hypercorn (ASGI), for tests/http2.rs: Hypercorn speaks HTTP/2
(h2c with prior knowledge, or TLS with ALPN h2), advertises SETTINGS_ENABLE_CONNECT_PROTOCOL
and maps an extended CONNECT (RFC 8441) to an ASGI WebSocket scope; permessage-deflate is
negotiated by wsproto underneath. Nobody here wrote any of that.

The app echoes text and binary messages, and understands two text commands:
- `version?`: answers `http_version=<the scope's http_version>` (`2` over HTTP/2);
- `close:CODE:REASON`: closes with that code and reason.
Each WebSocket's end is printed as `END <path> <http_version> <close code>` on stdout.

Usage: py_hypercorn_echo.py [--certfile F --keyfile F] [--lifetime SECONDS]
Prints `LISTENING <port>` once it listens on 127.0.0.1; exits when stdin closes.
"""

import argparse
import asyncio
import socket
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only"})
        return
    version = scope.get("http_version")
    message = await receive()
    assert message["type"] == "websocket.connect", message
    subprotocol = "chat" if "chat" in scope.get("subprotocols", []) else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    code = None
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            code = message.get("code")
            break
        text = message.get("text")
        if text is not None:
            if text == "version?":
                await send({"type": "websocket.send", "text": f"http_version={version}"})
            elif text.startswith("close:"):
                _, close_code, reason = text.split(":", 2)
                await send({"type": "websocket.close", "code": int(close_code), "reason": reason})
                code = int(close_code)
                break
            else:
                await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    print(f"END {scope['path']} {version} {code}", flush=True)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--lifetime", type=float, default=120)
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    if args.certfile:
        config.certfile = args.certfile
        config.keyfile = args.keyfile
    config.accesslog = None
    config.errorlog = "-"
    config.websocket_max_message_size = 4 * 1024 * 1024
    # Hypercorn closes an HTTP/2 connection `keep_alive_timeout` (5 s) after it last looked
    # idle, open WebSocket streams or not; the tests keep one busy for longer than that.
    config.keep_alive_timeout = 120

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stdin_closed():
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    loop.run_in_executor(None, stdin_closed)
    loop.call_later(args.lifetime, stop.set)
    print(f"LISTENING {port}", flush=True)
    await serve(app, config, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    asyncio.run(main())
