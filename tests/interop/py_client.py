#!/usr/bin/env python3
"""Scripted WebSocket client (Python `websockets`, asyncio API) for interop tests.

    python3 tests/interop/py_client.py ws://127.0.0.1:PORT/ [--subprotocol NAME]

Runs against an ECHO server and checks every echo: text, empty text, binary of
0/125/126/65535/65536/1 MiB bytes (the 7-bit, 16-bit and 64-bit payload length
encodings on both sides of each boundary), UTF-8 text with 4-byte code points,
fragmented text (3 frames; via send(iterable), which adds an empty final frame;
and with a code point split across frames) and fragmented binary (3 frames),
a ping with payload whose pong
must come back, then a close with 4001 "bye" whose handshake must complete with
the server echoing code 4001, after which the server must close TCP promptly.

Prints one line per step (`ok - ...` / `FAIL - ...: why`) and finally
`py_client: N passed, M failed`. Exit code 0 only when everything passed.
The whole run is bounded by --timeout seconds (default 60).
permessage-deflate is off unless --compression deflate, so frames go on the
wire exactly as sent. With --compression deflate, the --server-/--client-no-
context-takeover and --server-/--client-max-window-bits options set the offer
(RFC 7692 section 7.1; without any of them, `websockets`' default offer), an
`ok - extensions (...)` line shows what was negotiated, and --json adds
JSON-like chat text messages of 0 B to 1 MiB to the checks. --zip-bomb N
replaces the checks with one message of N MiB of zeros that the server must
refuse with close code 1009 (message too big).

Requires: pip install 'websockets>=13'
"""
import argparse
import asyncio
import random
import sys
import time

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

MAX_SIZE = 64 * 1024 * 1024
RECV_TIMEOUT = 15.0
CLOSE_TIMEOUT = 5.0


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name, detail=""):
        self.passed += 1
        print(f"ok - {name}{(' (' + detail + ')') if detail else ''}", flush=True)

    def fail(self, name, why):
        self.failed += 1
        print(f"FAIL - {name}: {why}", flush=True)

    async def step(self, name, coro_fn):
        try:
            detail = await coro_fn()
        except asyncio.TimeoutError:
            self.fail(name, "timed out")
        except Exception as e:  # noqa: BLE001 - report anything, keep going
            self.fail(name, f"{type(e).__name__}: {e}")
        else:
            self.ok(name, detail or "")


def describe(x, limit=60):
    r = repr(x)
    return r if len(r) <= limit else r[:limit] + f"... ({len(x)} {'chars' if isinstance(x, str) else 'bytes'})"


async def expect_echo(ws, sent, fragments=None):
    """Send `sent` (or its `fragments`) and check the echo matches exactly, type included."""
    await ws.send(fragments if fragments is not None else sent)
    got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    if type(got) is not type(sent):
        kind = "text" if isinstance(sent, str) else "binary"
        raise AssertionError(f"sent {kind}, got {type(got).__name__} {describe(got)}")
    if got != sent:
        if isinstance(sent, bytes) and len(got) == len(sent):
            i = next(i for i in range(len(sent)) if got[i] != sent[i])
            raise AssertionError(f"payload differs at byte {i}")
        raise AssertionError(f"expected {describe(sent)}, got {describe(got)}")


async def send_frames(ws, text, chunks):
    """Send one message as exactly len(chunks) frames (first + continuations, FIN on
    the last). ws.send(iterable) would add an empty final continuation frame."""
    chunks = [c.encode() if isinstance(c, str) else c for c in chunks]
    async with ws.send_context():  # one context: no other frame can interleave
        if text:
            ws.protocol.send_text(chunks[0], fin=False)
        else:
            ws.protocol.send_binary(chunks[0], fin=False)
        for c in chunks[1:-1]:
            ws.protocol.send_continuation(c, fin=False)
        ws.protocol.send_continuation(chunks[-1], fin=True)


async def expect_echo_frames(ws, text, chunks):
    sent = b"".join(c.encode() if isinstance(c, str) else c for c in chunks)
    if text:
        sent = sent.decode("utf-8")
    await send_frames(ws, text, chunks)
    got = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    if type(got) is not type(sent):
        raise AssertionError(f"sent {'text' if text else 'binary'}, got {type(got).__name__} {describe(got)}")
    if got != sent:
        raise AssertionError(f"expected {describe(sent)}, got {describe(got)}")


def json_text(n, seed):
    """Chat-like JSON text of exactly `n` characters (ASCII, with some repetition)."""
    rng = random.Random(seed)
    words = ["hello", "alice", "bob", "the", "meeting", "is", "at", "noon", "ok", "see", "you",
             "there", "thanks", "lunch", "deploy", "done", "review", "please", "\\u00e9t\\u00e9"]
    parts, size, i = [], 0, 0
    while size < n + 1:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20)))
        m = ('{"type":"message","from":"%s","text":"%s","ts":%d}'
             % (rng.choice(["alice", "bob", "carol"]), text, 1732147200000 + 1000 * i))
        parts.append(m)
        size += len(m) + 1
        i += 1
    return ("[" + ",".join(parts))[:n]


def deflate_options(args):
    """`connect` keyword arguments for the --compression/--*-window-bits/... options."""
    if args.compression != "deflate":
        return dict(compression=None)
    custom = (args.server_no_context_takeover or args.client_no_context_takeover
              or args.server_max_window_bits is not None or args.client_max_window_bits is not None)
    if not custom:
        return dict(compression="deflate")
    return dict(compression=None, extensions=[ClientPerMessageDeflateFactory(
        server_no_context_takeover=args.server_no_context_takeover,
        client_no_context_takeover=args.client_no_context_takeover,
        server_max_window_bits=args.server_max_window_bits,
        client_max_window_bits=True if args.client_max_window_bits is None else args.client_max_window_bits,
    )])


async def run(args, r):
    rng = random.Random(6455)
    opts = dict(
        max_size=MAX_SIZE,
        **deflate_options(args),
        ping_interval=None,
        close_timeout=CLOSE_TIMEOUT,
        open_timeout=10,
    )
    if args.subprotocol:
        opts["subprotocols"] = args.subprotocol
    try:
        ws = await connect(args.url, **opts)
    except Exception as e:  # noqa: BLE001
        r.fail("connect", f"{type(e).__name__}: {e}")
        return
    r.ok("connect", f"{args.url}")

    if args.zip_bomb:
        async def zip_bomb():
            # Compresses to about 1/1000 of its size; the server must refuse it with 1009.
            try:
                await ws.send(bytes(args.zip_bomb << 20))
                await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
            except ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
            code = ws.close_code
            if code != 1009:
                raise AssertionError(f"closed with {code} {ws.close_reason!r}, expected 1009")
            return f"server closed with {code} {ws.close_reason!r}"
        await r.step(f"zip bomb: {args.zip_bomb} MiB of zeros", zip_bomb)
        return

    if args.subprotocol:
        async def check_subprotocol():
            if ws.subprotocol not in args.subprotocol:
                raise AssertionError(f"negotiated {ws.subprotocol!r}, offered {args.subprotocol}")
            return f"negotiated {ws.subprotocol!r}"
        await r.step("subprotocol", check_subprotocol)

    if args.compression == "deflate":
        async def check_extensions():
            # Reported, not checked: a server may decline compression.
            return ", ".join(repr(e) for e in ws.protocol.extensions) or "none"

        await r.step("extensions", check_extensions)

    await r.step('text "hello"', lambda: expect_echo(ws, "hello"))
    if args.json:
        for n in (0, 1, 31, 32, 33, 200, 4096, 65536, 1024 * 1024):
            await r.step(f"JSON text {n} bytes", lambda t=json_text(n, n): expect_echo(ws, t))
    await r.step("empty text (0 bytes)", lambda: expect_echo(ws, ""))
    for n in (0, 125, 126, 65535, 65536, 1024 * 1024):
        payload = rng.randbytes(n)
        await r.step(f"binary {n} bytes", lambda p=payload: expect_echo(ws, p))
    utf8 = "4-byte code points: \U0001F600 \U0001F30D \U00010348 \U0001D11E \u00e9\u4e2d\u6587 end"
    await r.step("UTF-8 text with 4-byte code points", lambda: expect_echo(ws, utf8))
    frags = ["fragment one, ", "fragment two \U0001F389, ", "fragment three"]
    await r.step("fragmented text (exactly 3 frames)", lambda: expect_echo_frames(ws, True, frags))
    await r.step("fragmented text via send(iterable) (3 fragments + empty final frame)",
                 lambda: expect_echo(ws, "".join(frags), frags))
    emoji = "\U0001F600".encode()  # 4 bytes, split 1+3 across frame boundaries
    split = [b"split code point: " + emoji[:1], emoji[1:] + b" and ", b"done"]
    await r.step("fragmented text with a 4-byte code point split across frames",
                 lambda: expect_echo_frames(ws, True, split))
    bfrags = [rng.randbytes(1000), rng.randbytes(70000), rng.randbytes(3)]
    await r.step("fragmented binary (exactly 3 frames)", lambda: expect_echo_frames(ws, False, bfrags))

    async def ping():
        t0 = time.monotonic()
        waiter = await ws.ping(b"interop-ping-\x00\xff")
        await asyncio.wait_for(waiter, RECV_TIMEOUT)  # resolves only on a pong with this payload
        await expect_echo(ws, "after ping")
        return f"pong in {(time.monotonic() - t0) * 1000:.1f} ms"
    await r.step("ping with payload answered by pong", ping)

    closed_in = [None]

    async def close():
        t0 = time.monotonic()
        await ws.close(4001, "bye")
        closed_in[0] = time.monotonic() - t0
        p = ws.protocol
        if p.close_sent is None or p.close_sent.code != 4001:
            raise AssertionError(f"close frame sent: {p.close_sent}")
        if p.close_rcvd is None:
            raise AssertionError("no close frame received from the server (close handshake incomplete)")
        if p.close_rcvd_then_sent:
            raise AssertionError("server closed first; expected it to answer our close")
        if p.close_rcvd.code != 4001:
            raise AssertionError(f"server answered close with {p.close_rcvd.code} {p.close_rcvd.reason!r}, "
                                 "expected the echoed 4001")
        if ws.state is not State.CLOSED:
            raise AssertionError(f"state is {ws.state.name}, expected CLOSED")
        return f"server echoed {p.close_rcvd.code} {p.close_rcvd.reason!r}; close_code={ws.close_code}"
    await r.step('close 4001 "bye" (clean close handshake)', close)

    async def tcp_closed():
        if closed_in[0] is None:
            raise AssertionError("close step did not complete")
        if closed_in[0] >= CLOSE_TIMEOUT - 0.5:
            raise AssertionError(f"server did not close the TCP connection within {CLOSE_TIMEOUT:.0f} s "
                                 "after the close handshake (RFC 6455 7.1.1)")
        return f"closed in {closed_in[0] * 1000:.1f} ms"
    await r.step("server closed TCP after the close handshake", tcp_closed)


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="ws://HOST:PORT/PATH of an echo server")
    ap.add_argument("--subprotocol", action="append", default=[],
                    help="subprotocol to offer (repeatable); the server must pick one of them")
    ap.add_argument("--compression", choices=["none", "deflate"], default="none")
    ap.add_argument("--server-no-context-takeover", action="store_true")
    ap.add_argument("--client-no-context-takeover", action="store_true")
    ap.add_argument("--server-max-window-bits", type=int, default=None)
    ap.add_argument("--client-max-window-bits", type=int, default=None)
    ap.add_argument("--zip-bomb", type=int, default=0, metavar="MIB",
                    help="only send MIB mebibytes of zeros and expect the server to close with 1009")
    ap.add_argument("--json", action="store_true", help="also echo JSON-like text of 0 B to 1 MiB")
    ap.add_argument("--timeout", type=float, default=60.0, help="overall time limit in seconds (default 60)")
    args = ap.parse_args()
    r = Runner()
    try:
        await asyncio.wait_for(run(args, r), args.timeout)
    except asyncio.TimeoutError:
        r.fail("overall", f"did not finish within {args.timeout:.0f} s")
    print(f"py_client: {r.passed} passed, {r.failed} failed", flush=True)
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
