#!/usr/bin/env node
// WebSocket echo server (Node `ws`) for hybi's interop tests (tests/interop_deflate.rs).
//
//     node tests/interop/node/echo_server.mjs [--port 0] [--subprotocol chat] [--lifetime 90]
//         [--deflate] [--server-no-context-takeover] [--client-no-context-takeover]
//         [--server-max-window-bits N] [--client-max-window-bits N]
//
// * Prints `LISTENING <port>` on stdout once it accepts connections, then
//   `EXTENSIONS <Sec-WebSocket-Extensions of its 101, or "">` for every connection.
// * Echoes every message, text as text and binary as binary (fragmented messages are
//   reassembled and echoed as one message). A text `close:CODE:REASON` makes it close that
//   connection with CODE/REASON instead.
// * permessage-deflate (RFC 7692) only with --deflate; every message is then compressed
//   (threshold 0); the other options set the server's parameters.
// * Exits after --lifetime seconds, or when its stdin reaches EOF.
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const flag = (name) => args.includes(name);

const deflate = flag('--deflate')
  ? {
      threshold: 0,
      // Only when asked: `false` would make `ws` decline offers that ask for it.
      ...(flag('--server-no-context-takeover') && { serverNoContextTakeover: true }),
      ...(flag('--client-no-context-takeover') && { clientNoContextTakeover: true }),
      ...(opt('--server-max-window-bits') && { serverMaxWindowBits: Number(opt('--server-max-window-bits')) }),
      ...(opt('--client-max-window-bits') && { clientMaxWindowBits: Number(opt('--client-max-window-bits')) }),
    }
  : false;
const subprotocol = opt('--subprotocol');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(opt('--port', '0')),
  perMessageDeflate: deflate,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (subprotocol && protocols.has(subprotocol) ? subprotocol : false),
});

let extensions = '';
wss.on('headers', (headers) => {
  const h = headers.find((l) => l.toLowerCase().startsWith('sec-websocket-extensions:'));
  extensions = h ? h.slice(h.indexOf(':') + 1).trim() : '';
});

wss.on('connection', (ws) => {
  process.stdout.write(`EXTENSIONS ${extensions}\n`);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text.startsWith('close:')) {
        const rest = text.slice('close:'.length);
        const i = rest.indexOf(':');
        const code = Number(i >= 0 ? rest.slice(0, i) : rest);
        ws.close(code, i >= 0 ? rest.slice(i + 1) : '');
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (e) => process.stderr.write(`connection error: ${e.message}\n`));
});

wss.on('listening', () => process.stdout.write(`LISTENING ${wss.address().port}\n`));

const stop = () => {
  for (const ws of wss.clients) ws.close(1001);
  wss.close();
  setTimeout(() => process.exit(0), 500).unref();
};
setTimeout(stop, Number(opt('--lifetime', '90')) * 1000).unref();
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
