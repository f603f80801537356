#!/usr/bin/env node
// Scripted WebSocket client (Node `ws`) for hybi's interop tests (tests/interop_deflate.rs).
//
//     node tests/interop/node/client.mjs ws://127.0.0.1:PORT/ [--subprotocol chat] [--timeout 60]
//         [--deflate] [--server-no-context-takeover] [--client-no-context-takeover]
//         [--server-max-window-bits N] [--client-max-window-bits N]
//
// Runs against an ECHO server and checks every echo: JSON-like chat text of 0 B to 1 MiB,
// text, empty text, UTF-8 with 4-byte code points, binary of 0/125/126/65535/65536/1 MiB
// bytes, a fragmented text and a fragmented binary message (3 frames each), a ping whose pong
// must come back, then a close with 4001 "bye" that the server must echo.
//
// With --deflate, permessage-deflate (RFC 7692) is offered with the given parameters and every
// message is compressed (threshold 0); `ok - extensions (...)` shows the server's answer.
// Prints `ok - ...` / `FAIL - ...: why` per step, then `node_client: N passed, M failed`;
// exit code 0 only when everything passed.
import WebSocket from 'ws';

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const flag = (name) => args.includes(name);
const RECV_TIMEOUT = 15000;

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

let passed = 0;
let failed = 0;
const ok = (name, detail) => {
  passed++;
  console.log(`ok - ${name}${detail ? ` (${detail})` : ''}`);
};
const fail = (name, why) => {
  failed++;
  console.log(`FAIL - ${name}: ${why}`);
};

// Deterministic pseudo-random bytes (xorshift).
function bytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

// Chat-like JSON text of exactly n characters (ASCII).
function jsonText(n, seed) {
  const words = ['hello', 'alice', 'bob', 'the', 'meeting', 'is', 'at', 'noon', 'ok', 'see',
    'you', 'there', 'thanks', 'lunch', 'deploy', 'done', 'review', 'please'];
  const r = bytes(4 * (Math.floor(n / 16) + 64), seed);
  let k = 0;
  const next = () => r[k++ % r.length];
  let s = '[';
  for (let i = 0; s.length <= n; i++) {
    const count = 3 + (next() % 18);
    const text = Array.from({ length: count }, () => words[next() % words.length]).join(' ');
    const from = ['alice', 'bob', 'carol'][next() % 3];
    s += JSON.stringify({ type: 'message', from, text, ts: 1732147200000 + 1000 * i }) + ',';
  }
  return s.slice(0, n);
}

// Messages arrive in order; each step takes the next one.
const inbox = [];
const waiters = [];
function nextMessage() {
  if (inbox.length) return Promise.resolve(inbox.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), RECV_TIMEOUT);
    waiters.push((m) => { clearTimeout(t); resolve(m); });
  });
}

function same(got, want) {
  if (typeof want === 'string') {
    if (got.isBinary) throw new Error('sent text, got binary');
    const t = got.data.toString('utf8');
    if (t !== want) throw new Error(`text differs: sent ${want.length} chars, got ${t.length}`);
  } else {
    if (!got.isBinary) throw new Error('sent binary, got text');
    if (!got.data.equals(want)) throw new Error(`binary differs: sent ${want.length} bytes, got ${got.data.length}`);
  }
}

async function step(name, fn) {
  try {
    ok(name, await fn());
  } catch (e) {
    fail(name, e.message);
  }
}

async function run(ws) {
  const echo = async (m) => {
    ws.send(m, { binary: typeof m !== 'string' });
    same(await nextMessage(), m);
  };
  for (const n of [0, 1, 31, 32, 33, 200, 4096, 65536, 1 << 20]) {
    await step(`JSON text ${n} bytes`, () => echo(jsonText(n, n)));
  }
  await step('text "hello"', () => echo('hello'));
  await step('empty text', () => echo(''));
  await step('UTF-8 text with 4-byte code points', () => echo('4-byte: 😀 🌍 𐍈 𝄞, é 中文'));
  for (const n of [0, 125, 126, 65535, 65536, 1 << 20]) {
    await step(`binary ${n} bytes`, () => echo(bytes(n, n)));
  }
  await step('fragmented text (3 frames)', async () => {
    const parts = ['{"type":"message",', '"text":"fragmented 😀 ', 'end"}'];
    parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
    same(await nextMessage(), parts.join(''));
  });
  await step('fragmented binary (3 frames)', async () => {
    const parts = [bytes(1000, 1), bytes(70000, 2), bytes(3, 3)];
    parts.forEach((p, i) => ws.send(p, { binary: true, fin: i === parts.length - 1 }));
    same(await nextMessage(), Buffer.concat(parts));
  });
  await step('ping with payload answered by pong', () => new Promise((resolve, reject) => {
    const payload = Buffer.from('interop-ping-\x00\xff', 'latin1');
    const t = setTimeout(() => reject(new Error('no pong')), RECV_TIMEOUT);
    ws.once('pong', (p) => {
      clearTimeout(t);
      if (p.equals(payload)) resolve(); else reject(new Error(`pong payload ${p.toString('hex')}`));
    });
    ws.ping(payload);
  }));
  await step('close 4001 "bye" (clean close handshake)', () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no close within 5 s')), 5000);
    ws.once('close', (code, reason) => {
      clearTimeout(t);
      if (code === 4001) resolve(`server echoed ${code} ${JSON.stringify(reason.toString())}`);
      else reject(new Error(`closed with ${code} ${reason}`));
    });
    ws.close(4001, 'bye');
  }));
}

async function main() {
  const sub = opt('--subprotocol');
  const ws = new WebSocket(url, sub ? [sub] : [], {
    perMessageDeflate: deflate,
    maxPayload: 64 * 1024 * 1024,
    handshakeTimeout: 10000,
  });
  let extensions = '';
  ws.on('upgrade', (res) => { extensions = res.headers['sec-websocket-extensions'] || ''; });
  ws.on('message', (data, isBinary) => {
    const m = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
    const w = waiters.shift();
    if (w) w(m); else inbox.push(m);
  });
  ws.on('error', (e) => console.log(`# error: ${e.message}`));
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  } catch (e) {
    fail('connect', e.message);
    return;
  }
  ok('connect', url);
  if (sub) {
    await step('subprotocol', async () => {
      if (ws.protocol !== sub) throw new Error(`negotiated ${JSON.stringify(ws.protocol)}`);
      return `negotiated ${JSON.stringify(ws.protocol)}`;
    });
  }
  if (deflate) {
    await step('extensions', async () => {
      if (!extensions.includes('permessage-deflate')) throw new Error('permessage-deflate was not negotiated');
      return extensions;
    });
  }
  await run(ws);
}

const timeout = Number(opt('--timeout', '60')) * 1000;
const timer = setTimeout(() => {
  fail('overall', `did not finish within ${timeout / 1000} s`);
  console.log(`node_client: ${passed} passed, ${failed} failed`);
  process.exit(1);
}, timeout);
main().then(() => {
  clearTimeout(timer);
  console.log(`node_client: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
});
