#!/usr/bin/env python3
"""WebSocket echo server (Python `websockets`, asyncio API) for interop tests.

    python3 tests/interop/py_echo_server.py --port 0 [--subprotocol chat] [--lifetime 60]

* Prints ``LISTENING <port>`` on stdout (flushed) once it accepts connections.
* Echoes every message: text as text, binary as binary (fragmented messages are
  reassembled and echoed as one message).
* A text message ``close:CODE:REASON`` (REASON may be empty or contain ':') makes
  it close that connection with CODE/REASON instead of echoing.
* Exits by itself after --lifetime seconds, or when its stdin reaches EOF (so a
  parent that spawns it with a piped stdin can stop it by dropping the pipe).
  When stdin is /dev/null, closed, or --ignore-stdin is given, stdin is not
  watched (otherwise /dev/null would stop it at once).
* permessage-deflate is off unless --compression deflate, so frames go on the
  wire exactly as sent; keepalive pings are off unless --ping-interval N.
  With --compression deflate, the --server-/--client-no-context-takeover and
  --server-/--client-max-window-bits options set the server's own parameters
  (RFC 7692 section 7.1; without any of them, `websockets`' defaults apply), and
  --report-extensions prints ``EXTENSIONS <negotiated extensions>`` (flushed)
  for every connection it accepts.

Requires: pip install 'websockets>=13'
"""
import argparse
import asyncio
import logging
import os
import stat
import sys
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

MAX_SIZE = 64 * 1024 * 1024  # comfortably above 16 MiB messages


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--subprotocol", action="append", default=[],
                    help="subprotocol to accept (repeatable); when given, clients must offer one")
    ap.add_argument("--lifetime", type=float, default=60.0, help="seconds before exiting (default 60)")
    ap.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    ap.add_argument("--compression", choices=["none", "deflate"], default="none")
    ap.add_argument("--server-no-context-takeover", action="store_true")
    ap.add_argument("--client-no-context-takeover", action="store_true")
    ap.add_argument("--server-max-window-bits", type=int, default=None)
    ap.add_argument("--client-max-window-bits", type=int, default=None)
    ap.add_argument("--report-extensions", action="store_true",
                    help="print EXTENSIONS <negotiated> for every connection")
    ap.add_argument("--ping-interval", type=float, default=None,
                    help="send keepalive pings every N seconds (default: off)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    return ap.parse_args()


def stdin_is_watchable():
    try:
        st = os.fstat(0)
    except OSError:
        return False  # fd 0 closed
    if stat.S_ISCHR(st.st_mode):
        try:
            if os.stat(os.devnull).st_rdev == st.st_rdev:
                return False  # /dev/null: EOF immediately, would stop us at once
        except OSError:
            pass
    return True


def watch_stdin(loop, stop):
    def run():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result("stdin closed"))
    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def deflate_options(args):
    """`serve` keyword arguments for the --compression/--*-window-bits/... options."""
    if args.compression != "deflate":
        return dict(compression=None)
    custom = (args.server_no_context_takeover or args.client_no_context_takeover
              or args.server_max_window_bits is not None or args.client_max_window_bits is not None)
    if not custom:
        return dict(compression="deflate")
    return dict(compression=None, extensions=[ServerPerMessageDeflateFactory(
        server_no_context_takeover=args.server_no_context_takeover,
        client_no_context_takeover=args.client_no_context_takeover,
        server_max_window_bits=args.server_max_window_bits,
        client_max_window_bits=args.client_max_window_bits,
    )])


REPORT_EXTENSIONS = False


async def echo(ws):
    if REPORT_EXTENSIONS:
        print(f"EXTENSIONS {ws.protocol.extensions!r}", flush=True)
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close:"):
                _, code, reason = (msg.split(":", 2) + [""])[:3]
                try:
                    await ws.close(int(code), reason)
                except (ValueError, TypeError) as e:  # bad code: 1011 via handler error
                    logging.warning("bad close request %r: %s", msg, e)
                    await ws.close(1011, "bad close request")
                return
            await ws.send(msg)
    except ConnectionClosed:
        pass


async def main():
    global REPORT_EXTENSIONS
    args = parse_args()
    REPORT_EXTENSIONS = args.report_extensions
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    if not args.ignore_stdin and stdin_is_watchable():
        watch_stdin(loop, stop)
    async with serve(
        echo, args.host, args.port,
        subprotocols=args.subprotocol or None,
        **deflate_options(args),
        max_size=MAX_SIZE,
        max_queue=64,
        ping_interval=args.ping_interval,
        ping_timeout=None if args.ping_interval is None else 20,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        try:
            why = await asyncio.wait_for(stop, args.lifetime)
        except asyncio.TimeoutError:
            why = "lifetime over"
        logging.info("exiting: %s", why)
        server.close()  # 1001 to any open connection
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
