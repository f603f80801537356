"""A WebSocket-over-HTTP/2 (RFC 8441) client nobody here wrote, for tests/http2.rs: Python `h2`
(the HTTP/2 connection, flow control, the extended CONNECT) and the sans-I/O `Protocol` of
Python `websockets` (framing, masking, permessage-deflate, the closing handshake), created in
the OPEN state on each CONNECT stream once the server answered 200.

Against hybi's echo server (h2c, prior knowledge) it checks that the server advertised
SETTINGS_ENABLE_CONNECT_PROTOCOL, then runs three WebSockets at once on the one connection:

- `/py-deflate`: offers the "chat" subprotocol and permessage-deflate (negotiated with the
  websockets extension factory), echoes text (with 4-byte code points), binary of every length
  boundary up to 1 MiB, a ping, then closes with 4001 "bye";
- `/py-plain`: no extension; the same echoes, then asks the server to close with 4002;
- `/py-many`: 500 small messages sent at once, echoed in order, then closes with 4003.

Prints `ok <check>` or `FAIL <check>: <why>` per check and `py_h2_client: N passed, M failed`;
exits 0 only if nothing failed.

Usage: py_h2_client.py --port PORT
"""

import argparse
import asyncio
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.headers import build_extension, parse_extension
from websockets.protocol import Protocol, Side, State

passed = 0
failed = 0


def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {why}", flush=True)


class Stream:
    """One extended CONNECT stream and the WebSocket on it."""

    def __init__(self, client, stream_id):
        self.client = client
        self.id = stream_id
        self.response = asyncio.get_running_loop().create_future()
        self.ws = None
        self.outgoing = bytearray()
        self.end_after_outgoing = False
        self.end_sent = False
        self.ended = asyncio.Event()
        self.reset = None
        self.messages = asyncio.Queue()
        self.fragments = []
        self.fragment_opcode = None

    def on_data(self, data):
        self.ws.receive_data(data)
        self.on_ws_events()

    def on_end(self):
        if self.ws is not None:
            self.ws.receive_eof()
            self.on_ws_events()
        self.ended.set()
        self.messages.put_nowait(None)

    def on_ws_events(self):
        for frame in self.ws.events_received():
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.fragment_opcode = frame.opcode
                self.fragments = [frame.data]
            elif frame.opcode == Opcode.CONT:
                self.fragments.append(frame.data)
            else:
                self.messages.put_nowait((frame.opcode, bytes(frame.data)))
                continue
            if frame.fin:
                self.messages.put_nowait((self.fragment_opcode, b"".join(self.fragments)))
        self.flush_ws()

    def flush_ws(self):
        for chunk in self.ws.data_to_send():
            if chunk == b"":
                self.end_after_outgoing = True
            else:
                self.outgoing += chunk
        self.client.pump(self)

    async def next_message(self, timeout=20):
        return await asyncio.wait_for(self.messages.get(), timeout)


class Client:
    def __init__(self, reader, writer, authority):
        self.reader = reader
        self.writer = writer
        self.authority = authority
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.streams = {}
        self.settings = asyncio.Event()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    def pump(self, stream):
        """Sends what the stream has queued, as far as flow control allows."""
        while stream.outgoing:
            window = self.conn.local_flow_control_window(stream.id)
            size = min(window, self.conn.max_outbound_frame_size, len(stream.outgoing))
            if size <= 0:
                break
            self.conn.send_data(stream.id, bytes(stream.outgoing[:size]))
            del stream.outgoing[:size]
        if not stream.outgoing and stream.end_after_outgoing and not stream.end_sent:
            stream.end_sent = True
            try:
                self.conn.end_stream(stream.id)
            except h2.exceptions.StreamClosedError:
                # The server reset the stream after its END_STREAM: with NO_ERROR it needs
                # nothing more from us (RFC 9113 §8.1).
                pass
        self.flush()

    async def run(self):
        self.conn.initiate_connection()
        self.flush()
        while True:
            data = await self.reader.read(65536)
            if not data:
                break
            try:
                for event in self.conn.receive_data(data):
                    self.on_event(event)
            except Exception as e:
                import traceback
                traceback.print_exc()
                check("the HTTP/2 connection keeps working", False, repr(e))
                break
            self.flush()
        for stream in self.streams.values():
            if not stream.ended.is_set():
                stream.on_end()

    def on_event(self, event):
        stream = self.streams.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings.set()
        elif isinstance(event, h2.events.ResponseReceived) and stream:
            stream.response.set_result(dict(event.headers))
        elif isinstance(event, h2.events.DataReceived) and stream:
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream.ws is not None:
                stream.on_data(event.data)
        elif isinstance(event, h2.events.StreamEnded) and stream:
            stream.on_end()
        elif isinstance(event, h2.events.StreamReset) and stream:
            stream.reset = event.error_code
            if not stream.response.done():
                stream.response.set_exception(RuntimeError(f"reset {event.error_code}"))
            stream.on_end()
        elif isinstance(event, h2.events.WindowUpdated):
            targets = [stream] if stream else list(self.streams.values())
            for s in targets:
                if s.outgoing:
                    self.pump(s)

    async def open(self, path, protocols=(), deflate=False):
        stream_id = self.conn.get_next_available_stream_id()
        stream = Stream(self, stream_id)
        self.streams[stream_id] = stream
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority),
            ("sec-websocket-version", "13"),
        ]
        if protocols:
            headers.append(("sec-websocket-protocol", ", ".join(protocols)))
        factory = ClientPerMessageDeflateFactory()
        if deflate:
            offer = build_extension([(factory.name, factory.get_request_params())])
            headers.append(("sec-websocket-extensions", offer))
        self.conn.send_headers(stream_id, headers, end_stream=False)
        self.flush()
        response = await asyncio.wait_for(stream.response, 10)
        stream.ws = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
        answer = response.get("sec-websocket-extensions")
        if answer:
            name, params = parse_extension(answer)[0]
            stream.ws.extensions = [factory.process_response_params(params, [])]
        return stream, response


async def echo(stream, name, opcode, payload):
    if opcode == Opcode.TEXT:
        stream.ws.send_text(payload)
    else:
        stream.ws.send_binary(payload)
    stream.flush_ws()
    got = await stream.next_message()
    check(name, got == (opcode, payload), f"got {str(got)[:80]}")


async def echoes(stream, label):
    await echo(stream, f"{label}: text", Opcode.TEXT, "hello over HTTP/2".encode())
    await echo(stream, f"{label}: 4-byte UTF-8", Opcode.TEXT, "😀 🌍 𝄞 é 中文".encode())
    for size in (0, 125, 126, 65535, 65536, 1 << 20):
        payload = bytes((i * 31 + size) % 251 for i in range(size))
        await echo(stream, f"{label}: binary {size} bytes", Opcode.BINARY, payload)
    stream.ws.send_ping(b"h2-ping")
    stream.flush_ws()
    got = await stream.next_message()
    check(f"{label}: ping answered", got == (Opcode.PONG, b"h2-ping"), f"got {got}")


async def finish(stream, label, code, started_by_client):
    """Waits for the close handshake and the end of the stream."""
    got = await stream.next_message()
    ok = got is not None and got[0] == Opcode.CLOSE
    check(f"{label}: close frame received", ok, f"got {got}")
    if ok:
        received = int.from_bytes(got[1][:2], "big")
        check(f"{label}: close code {code}", received == code, f"got {received}")
    try:
        await asyncio.wait_for(stream.ended.wait(), 10)
        ended = True
    except asyncio.TimeoutError:
        ended = False
    # The server ends its side with END_STREAM, and may then reset the stream with NO_ERROR
    # (0) rather than wait for ours.
    check(f"{label}: stream ended by the server", ended and stream.reset in (None, 0),
          f"ended={ended} reset={stream.reset}")
    if stream.ws.close_rcvd is not None and stream.ws.close_sent is not None:
        check(f"{label}: closing handshake complete", True)
    else:
        check(f"{label}: closing handshake complete", False,
              f"rcvd={stream.ws.close_rcvd} sent={stream.ws.close_sent}")
    del started_by_client


async def deflate_stream(client):
    stream, response = await client.open("/py-deflate", ["chat"], deflate=True)
    check("deflate: status 200", response.get(":status") == "200", str(response))
    check("deflate: subprotocol chat", response.get("sec-websocket-protocol") == "chat",
          str(response))
    check("deflate: no Sec-WebSocket-Accept", "sec-websocket-accept" not in response)
    ext = response.get("sec-websocket-extensions", "")
    check("deflate: permessage-deflate negotiated", ext.startswith("permessage-deflate"), ext)
    await echo(stream, "deflate: compressible text", Opcode.TEXT, ("abc " * 5000).encode())
    await echoes(stream, "deflate")
    stream.ws.send_close(4001, "bye")
    stream.flush_ws()
    await finish(stream, "deflate", 4001, True)


async def plain_stream(client):
    stream, response = await client.open("/py-plain")
    check("plain: status 200", response.get(":status") == "200", str(response))
    check("plain: no extension", "sec-websocket-extensions" not in response, str(response))
    await echoes(stream, "plain")
    stream.ws.send_text(b"close:4002:server done")
    stream.flush_ws()
    await finish(stream, "plain", 4002, False)


async def many_stream(client):
    stream, _ = await client.open("/py-many")
    for i in range(500):
        stream.ws.send_text(f"message {i}".encode())
    stream.flush_ws()
    in_order = True
    for i in range(500):
        got = await stream.next_message()
        if got != (Opcode.TEXT, f"message {i}".encode()):
            in_order = False
            check("many: 500 echoes in order", False, f"echo {i}: {got}")
            break
    if in_order:
        check("many: 500 echoes in order", True)
    stream.ws.send_close(4003, "")
    stream.flush_ws()
    await finish(stream, "many", 4003, True)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    client = Client(reader, writer, f"127.0.0.1:{args.port}")
    runner = asyncio.create_task(client.run())
    await asyncio.wait_for(client.settings.wait(), 10)
    enabled = client.conn.remote_settings.enable_connect_protocol
    check("SETTINGS_ENABLE_CONNECT_PROTOCOL = 1", enabled == 1, f"got {enabled}")
    results = await asyncio.gather(
        deflate_stream(client), plain_stream(client), many_stream(client),
        return_exceptions=True,
    )
    for name, result in zip(("deflate", "plain", "many"), results):
        if isinstance(result, BaseException):
            check(f"{name}: no exception", False, repr(result))
    client.conn.close_connection()
    client.flush()
    writer.close()
    runner.cancel()
    print(f"py_h2_client: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(), 60)))
