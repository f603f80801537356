// The chat over HTTPS in headless Chromium: its WebSocket over HTTP/2 (RFC 8441).
//
//   cargo build --example chat_server
//   CHAT_SERVER_BIN=target/debug/examples/chat_server CHROMIUM=/usr/bin/chromium \
//     node tests/browser/chat_h2.mjs
//
// Runs twice, each time with its own chat server (`--tls-self-signed --port 0`) and its own
// Chromium (`--ignore-certificate-errors`):
//
// - "h2": Chromium's defaults. The page must come over HTTP/2 (DevTools: the document's
//   response protocol is "h2"), and Chromium then opens the page's WebSocket on that same
//   connection as an extended CONNECT: the DevTools handshake status is 200, not 101, and the
//   request carries no Sec-WebSocket-Key. The server must have counted it as HTTP/2 (its
//   `/stats`) and logged it ("websocket opened over HTTP/2").
// - "http1" (the control): `--disable-http2`. The same checks must see "http/1.1", 101, a
//   Sec-WebSocket-Key, and the server's HTTP/1.1 count and log line.
//
// In both, alice (page A) and bob (page B, another browser context) chat both ways.
// Uses playwright-core only (no browser download). Prints `ok - ...` per check and ends with
// `browser h2: N passed, M failed`; exits 1 on any failure.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import fs from "node:fs";

const SERVER_BIN = process.env.CHAT_SERVER_BIN || "target/debug/examples/chat_server";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OVERALL_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 10_000;

let passed = 0;
let failed = 0;
const servers = [];
const browsers = [];

function killServers() {
  for (const p of servers) { try { p.kill("SIGKILL"); } catch {} }
}
process.on("exit", killServers);

const overall = setTimeout(() => {
  console.error(`FAIL - overall timeout: not finished within ${OVERALL_TIMEOUT_MS / 1000} s (${passed} passed so far)`);
  console.log(`browser h2: ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
overall.unref();

class StepFailed extends Error {}

async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    const msg = (err && err.message ? err.message : String(err)).split("\n").slice(0, 6).join("\n    ");
    console.error(`FAIL - ${name}\n    ${msg}`);
    throw new StepFailed(name);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// A chat server with a self-signed certificate on a free port; resolves once it listens.
// Its stderr (one line per WebSocket) is kept in `log`.
function startServer() {
  return new Promise((resolve, reject) => {
    const proc = spawn(SERVER_BIN, ["--port", "0", "--tls-self-signed"], { stdio: ["ignore", "pipe", "pipe"] });
    servers.push(proc);
    const server = { proc, url: null, log: "" };
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the chat server did not start: ${out} ${server.log}`)), 20_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (https:\/\/[0-9.]+:[0-9]+\/)/);
      if (m && !server.url) { clearTimeout(timer); server.url = m[1]; resolve(server); }
    });
    proc.stderr.on("data", (d) => {
      server.log += d;
      if (process.env.CHAT_VERBOSE) process.stderr.write(`[server] ${d}`);
    });
    proc.on("error", (e) => { clearTimeout(timer); reject(new Error(`cannot start ${SERVER_BIN}: ${e.message}`)); });
    proc.on("exit", (code) => { clearTimeout(timer); if (!server.url) reject(new Error(`the chat server exited (${code}): ${server.log}`)); });
  });
}

// What DevTools' Network domain says about a page: its document's protocol, its WebSocket
// handshakes (status, request headers).
async function watchNetwork(context, page) {
  const seen = { documents: [], sockets: new Map() };
  const cdp = await context.newCDPSession(page);
  cdp.on("Network.responseReceived", (e) => {
    if (e.type === "Document") seen.documents.push({ url: e.response.url, protocol: e.response.protocol, status: e.response.status });
  });
  cdp.on("Network.webSocketWillSendHandshakeRequest", (e) => {
    const s = seen.sockets.get(e.requestId) || {};
    s.requestHeaders = e.request.headers;
    seen.sockets.set(e.requestId, s);
  });
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
    const s = seen.sockets.get(e.requestId) || {};
    s.status = e.response.status;
    s.responseHeaders = e.response.headers;
    // Over HTTP/2 Chromium reports the headers it sent with the response too.
    s.responseRequestHeaders = e.response.requestHeaders;
    seen.sockets.set(e.requestId, s);
  });
  await cdp.send("Network.enable");
  return seen;
}

const hasHeader = (headers, name) =>
  Object.keys(headers || {}).some((k) => k.toLowerCase() === name.toLowerCase());

async function waitIn(page, what, probe, arg) {
  try {
    return await (await page.waitForFunction(probe, arg, { timeout: STEP_TIMEOUT_MS, polling: 50 })).jsonValue();
  } catch (err) {
    if (err && err.name === "TimeoutError") {
      const status = await page.textContent("#status").catch(() => "?");
      throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for ${what}; #status=${status}`);
    }
    throw err;
  }
}

async function until(what, probe) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statusIs = (page, want) =>
  waitIn(page, `#status to read ${want}`, (w) => document.querySelector("#status")?.textContent.trim() === w, want);

const logHas = (page, selector, texts, what) =>
  waitIn(page, what, ({ selector, texts }) =>
    Array.from(document.querySelectorAll(selector)).some((n) => texts.every((t) => n.textContent.includes(t))),
  { selector, texts });

// The server's counters, fetched by the page (same origin, over the page's connection).
const stats = (page) => page.evaluate(async () => (await fetch("/stats", { cache: "no-store" })).json());

async function run(mode) {
  const h2 = mode === "h2";
  const want = h2
    ? { protocol: "h2", status: 200, key: false, counter: "http2", log: "over HTTP/2" }
    : { protocol: "http/1.1", status: 101, key: true, counter: "http1", log: "over HTTP/1.1" };
  const server = await startServer();
  console.log(`browser h2: [${mode}] chat server at ${server.url}`);
  const args = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--ignore-certificate-errors",
  ];
  if (!h2) args.push("--disable-http2");
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000, args });
  browsers.push(browser);
  const pageErrors = [];
  const open = async (name) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(`page ${name}: ${e.message}`));
    const seen = await watchNetwork(context, page);
    return { page, seen };
  };
  const A = await open("A");
  const B = await open("B");

  for (const [name, p] of [["A", A], ["B", B]]) {
    await step(`[${mode}] page ${name} loads over ${want.protocol} and its WebSocket opens`, async () => {
      await p.page.goto(server.url, { timeout: STEP_TIMEOUT_MS });
      await statusIs(p.page, "OPEN");
      const doc = await until("the document's Network.responseReceived", () => p.seen.documents[0]);
      assert(doc.status === 200, `document status ${doc.status}`);
      assert(doc.protocol === want.protocol, `document protocol ${JSON.stringify(doc.protocol)}, want ${want.protocol}`);
    });

    await step(`[${mode}] page ${name}'s WebSocket handshake: status ${want.status}, ${want.key ? "a" : "no"} Sec-WebSocket-Key, deflate`, async () => {
      const ws = await until("Network.webSocketHandshakeResponseReceived", () =>
        [...p.seen.sockets.values()].find((s) => s.status !== undefined));
      assert(ws.status === want.status, `handshake status ${ws.status}, want ${want.status}`);
      const headers = { ...(ws.requestHeaders || {}), ...(ws.responseRequestHeaders || {}) };
      assert(Object.keys(headers).length > 0, "no handshake request headers reported");
      assert(hasHeader(headers, "sec-websocket-key") === want.key,
        `Sec-WebSocket-Key ${want.key ? "missing" : "present"}: ${JSON.stringify(headers)}`);
      assert(hasHeader(headers, "sec-websocket-protocol"), `no Sec-WebSocket-Protocol: ${JSON.stringify(headers)}`);
      // The chat negotiates permessage-deflate over either version.
      const answer = Object.entries(ws.responseHeaders || {}).find(([k]) => k.toLowerCase() === "sec-websocket-extensions");
      assert(answer && answer[1].includes("permessage-deflate"),
        `no permessage-deflate in the answer: ${JSON.stringify(ws.responseHeaders)}`);
    });
  }

  await step(`[${mode}] the server counted both WebSockets as ${want.counter} and logged them`, async () => {
    const s = await stats(A.page);
    const other = h2 ? "http1" : "http2";
    assert(s.websockets[want.counter] === 2 && s.websockets[other] === 0,
      `/stats says ${JSON.stringify(s)}, want ${want.counter}: 2, ${other}: 0`);
    const lines = server.log.split("\n").filter((l) => l.includes("websocket opened"));
    assert(lines.length === 2 && lines.every((l) => l.includes(want.log)),
      `server log lines: ${JSON.stringify(lines)}, want 2 "${want.log}"`);
  });

  await step(`[${mode}] alice and bob chat both ways`, async () => {
    await A.page.fill("#nick", "alice");
    await A.page.click("#join");
    await B.page.fill("#nick", "bob");
    await B.page.click("#join");
    await logHas(A.page, "#log .notice", ["bob"], "page A: bob's join notice");
    await B.page.fill("#input", `hello alice over ${mode}`);
    await B.page.press("#input", "Enter");
    await logHas(A.page, "#log .msg", [`hello alice over ${mode}`, "bob"], "page A: bob's message");
    await A.page.fill("#input", `hello bob over ${mode}`);
    await A.page.press("#input", "Enter");
    await logHas(B.page, "#log .msg", [`hello bob over ${mode}`, "alice"], "page B: alice's message");
  });

  await step(`[${mode}] no other WebSocket was opened, no JavaScript error`, async () => {
    const s = await stats(A.page);
    const total = s.websockets.http1 + s.websockets.http2;
    assert(total === 2, `${total} WebSockets opened (a reconnect?): ${JSON.stringify(s)}`);
    assert(pageErrors.length === 0, pageErrors.join("; "));
  });

  await browser.close();
  server.proc.kill("SIGTERM");
}

async function main() {
  console.log(`browser h2: CHAT_SERVER_BIN=${SERVER_BIN} CHROMIUM=${CHROMIUM}`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} not found (cargo build --example chat_server)`);
  await run("h2");
  await run("http1");
}

try {
  await main();
} catch (err) {
  if (!(err instanceof StepFailed)) {
    failed++;
    console.error(`FAIL - ${err && err.message ? err.message : err}`);
  }
}
for (const b of browsers) await b.close().catch(() => {});
killServers();
clearTimeout(overall);
console.log(`browser h2: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
