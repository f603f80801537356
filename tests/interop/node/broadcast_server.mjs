#!/usr/bin/env node
// Broadcast server (Node `ws`) for the fan-out comparisons with examples/fanout.rs.
//
//     (cd tests/interop/node && npm ci)
//     node tests/interop/node/broadcast_server.mjs [--port 9012] [--deflate] [--threshold 32]
//
// * Prints `node ws broadcast server listening on ws://127.0.0.1:PORT/` once it accepts
//   connections (`--port 0`: any free port).
// * Every message any client sends goes to ALL connected clients, the sender included, text as
//   text and binary as binary: the broadcast loop of the `ws` README, `client.send(data)` for
//   each open client (`ws` frames, and with --deflate compresses, the message once per client).
// * permessage-deflate only with --deflate: it then accepts the client's offer (a client that
//   asks for server_no_context_takeover gets it), level 6 (zlib's default, as hybi's), and
//   compresses messages of --threshold bytes or more (default 32, hybi's default; `ws`'s own
//   default is 1024). Compression runs on libuv's thread pool (`ws` limits it to 10 at once).
// * Queues are not bounded: a client that stops reading makes `bufferedAmount` grow.
// * Closes every client with 1001 and exits on SIGINT or SIGTERM.
import { WebSocketServer, WebSocket } from 'ws';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const flag = (name) => args.includes(name);

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(opt('--port', '9012')),
  perMessageDeflate: flag('--deflate') ? { threshold: Number(opt('--threshold', '32')) } : false,
  maxPayload: 64 * 1024 * 1024,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  ws.on('error', (e) => process.stderr.write(`connection error: ${e.message}\n`));
});

wss.on('listening', () => {
  process.stdout.write(`node ws broadcast server listening on ws://127.0.0.1:${wss.address().port}/\n`);
});

const stop = () => {
  for (const ws of wss.clients) ws.close(1001);
  wss.close();
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
