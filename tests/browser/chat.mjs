// Browser end-to-end test for the hybi chat example (examples/chat/index.html).
//
//   CHAT_SERVER_BIN=target/debug/examples/chat_server REDIS_URL=redis://127.0.0.1:6379 \
//     CHROMIUM=/usr/bin/chromium node tests/browser/chat.mjs
//   CHAT_URL=http://127.0.0.1:8080/ CHROMIUM=/usr/bin/chromium node tests/browser/chat.mjs
//
// With CHAT_SERVER_BIN and REDIS_URL it starts two chat instances on that Redis itself
// (page A on instance A, page B on instance B) and, at the end, kills instance B with
// SIGKILL and starts it again on the same port: page B must reconnect by itself and
// show what it missed with no gap and no duplicate. With CHAT_URL only, both pages use
// that one server and the restart step is skipped. Needs a system Chromium (Debian:
// apt-get install chromium); uses playwright-core only (no browser download). Prints
// one `ok - ...` line per check and ends with `browser: N passed, M failed`; exits 1 on
// any failure. Saves screenshots of the pages to <repo>/target/chat-browser*.png.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";

let CHAT_URL = process.env.CHAT_URL || "http://127.0.0.1:8080/";
let CHAT_URL_B = CHAT_URL;
const SERVER_BIN = process.env.CHAT_SERVER_BIN;
const REDIS_URL = process.env.REDIS_URL;
const MANAGED = Boolean(SERVER_BIN && REDIS_URL);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OVERALL_TIMEOUT_MS = 150_000;
const STEP_TIMEOUT_MS = 10_000;

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const screenshotPath = path.join(repoRoot, "target", "chat-browser.png");
const screenshotPathB = path.join(repoRoot, "target", "chat-browser-b.png");

// ---- chat instances (managed mode) ----
const servers = [];
function startServer(name, port) {
  return new Promise((resolve, reject) => {
    const args = ["--port", String(port), "--redis", REDIS_URL, "--presence-ttl", "3"];
    const proc = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    servers.push(proc);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`instance ${name} did not start: ${out}`)), 20_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.]+:[0-9]+\/)/);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1], port: Number(new URL(m[1]).port) }); }
    });
    proc.stderr.on("data", (d) => { if (process.env.CHAT_VERBOSE) process.stderr.write(`[${name}] ${d}`); });
    proc.on("exit", (code) => { clearTimeout(timer); if (!out.includes("listening")) reject(new Error(`instance ${name} exited (${code})`)); });
  });
}
function killServers() {
  for (const p of servers) { try { p.kill("SIGKILL"); } catch {} }
}
process.on("exit", killServers);

let passed = 0;
let failed = 0;
let browser = null;
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exitCode = code;
}

const overall = setTimeout(() => {
  console.error(`FAIL - overall timeout: test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  failed++;
  finish(1);
  // Playwright kills the browser it launched on process exit.
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
overall.unref();

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
class StepFailed extends Error {}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// Poll `probe` (run in the page) until it returns a truthy value.
async function waitIn(page, what, probe, arg, timeoutMs = STEP_TIMEOUT_MS) {
  try {
    return await (await page.waitForFunction(probe, arg, { timeout: timeoutMs, polling: 50 })).jsonValue();
  } catch (err) {
    if (err && err.name === "TimeoutError") {
      const log = await page.evaluate(() => {
        const l = document.querySelector("#log");
        return l ? Array.from(l.children).slice(-8).map((c) => `[${c.className}] ${c.textContent}`).join(" | ") : "(no #log)";
      }).catch(() => "(page unavailable)");
      const status = await page.textContent("#status").catch(() => "?");
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; #status=${status}; last log entries: ${log}`);
    }
    throw err;
  }
}

const statusIs = (page, want) =>
  waitIn(page, `#status to read ${want}`, (w) => document.querySelector("#status")?.textContent.trim() === w, want);

const onlineIs = (page, nicks) =>
  waitIn(page, `#online to list exactly [${nicks.join(", ")}]`, (want) => {
    const got = Array.from(document.querySelectorAll("#online li")).map((li) => li.textContent.trim()).sort();
    return JSON.stringify(got) === JSON.stringify([...want].sort());
  }, nicks);

const countIs = (page, n) =>
  waitIn(page, `#count to read ${n}`, (want) => document.querySelector("#count")?.textContent.trim() === String(want), n);

// The ids of the messages shown, in page order.
const shownIds = (page) =>
  page.evaluate(() => Array.from(document.querySelectorAll("#log [data-id]")).map((n) => Number(n.dataset.id)));

const logHas = (page, selector, texts, what) =>
  waitIn(page, what, ({ selector, texts }) => {
    return Array.from(document.querySelectorAll(selector)).some((n) => texts.every((t) => n.textContent.includes(t)));
  }, { selector, texts });

// Entries already in the log (e.g. history left by an earlier run against the same
// server) must not satisfy a check: count matches before acting, then wait for more.
const countMatching = (page, selector, texts) =>
  page.evaluate(({ selector, texts }) =>
    Array.from(document.querySelectorAll(selector)).filter((n) => texts.every((t) => n.textContent.includes(t))).length,
  { selector, texts });

const logGains = (page, selector, texts, before, what) =>
  waitIn(page, what, ({ selector, texts, before }) =>
    Array.from(document.querySelectorAll(selector)).filter((n) => texts.every((t) => n.textContent.includes(t))).length > before,
  { selector, texts, before });

async function join(page, nick) {
  await page.fill("#nick", nick);
  await page.click("#join");
}

// ---- a small valid PNG (gradient), built in memory ----
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
async function makePng(w, h) {
  const { deflateSync } = await import("node:zlib");
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = 79 + Math.round((x / w) * 60);
      raw[o + 1] = 70 + Math.round((y / h) * 60);
      raw[o + 2] = 229;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0)),
  ]);
}

async function main() {
  console.log(MANAGED ? `browser: CHAT_SERVER_BIN=${SERVER_BIN} REDIS_URL=${REDIS_URL} CHROMIUM=${CHROMIUM}` : `browser: CHAT_URL=${CHAT_URL} CHROMIUM=${CHROMIUM}`);
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  }
  // launch() gives every run a fresh temporary --user-data-dir (Playwright refuses
  // --user-data-dir in args) and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  let serverB = null;
  if (MANAGED) {
    const a = await startServer("A", 0);
    serverB = await startServer("B", 0);
    CHAT_URL = a.url;
    CHAT_URL_B = serverB.url;
    console.log(`browser: instance A ${CHAT_URL}, instance B ${CHAT_URL_B}, Redis ${REDIS_URL}`);
  } else {
    console.log("browser: one server (set CHAT_SERVER_BIN and REDIS_URL for two instances and the restart)");
  }
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 720 }, deviceScaleFactor: 1 });
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const pageErrors = [];
  for (const [name, p] of [["A", a], ["B", b]]) {
    p.on("pageerror", (e) => pageErrors.push(`page ${name}: ${e.message}`));
  }

  await step("page A loads and its WebSocket opens", async () => {
    try {
      await a.goto(CHAT_URL, { timeout: STEP_TIMEOUT_MS });
    } catch (e) {
      throw new Error(`cannot load ${CHAT_URL}: ${e.message.split("\n")[0]} (is the chat server running?)`);
    }
    await statusIs(a, "OPEN");
  });

  await step("alice joins in page A (welcome, online list, input focused)", async () => {
    await join(a, "alice");
    await onlineIs(a, ["alice"]);
    await waitIn(a, "#input to be enabled and focused", () => {
      const i = document.querySelector("#input");
      return i && !i.disabled && document.activeElement === i;
    });
  });

  await step(`bob joins in page B (${MANAGED ? "on instance B" : "same server"})`, async () => {
    await b.goto(CHAT_URL_B, { timeout: STEP_TIMEOUT_MS });
    await statusIs(b, "OPEN");
    await join(b, "bob");
    await onlineIs(b, ["alice", "bob"]);
  });

  await step("page A shows bob's join notice, online list [alice, bob] and count 2", async () => {
    await logHas(a, "#log .notice", ["bob"], "a #log .notice mentioning bob");
    await onlineIs(a, ["alice", "bob"]);
    await countIs(a, 2);
    await countIs(b, 2);
  });

  await step("bob's message (Enter in #input) reaches page A with the sender", async () => {
    const want = ["hello from bob", "bob"];
    const [beforeA, beforeB] = [await countMatching(a, "#log .msg", want), await countMatching(b, "#log .msg", want)];
    await b.fill("#input", "hello from bob");
    await b.press("#input", "Enter");
    await logGains(a, "#log .msg", want, beforeA, 'a new #log .msg with "hello from bob" from bob');
    await logGains(b, "#log .msg", want, beforeB, "bob's own message echoed in page B");
    assert((await b.inputValue("#input")) === "", "#input was not cleared after sending");
  });

  await step("message text is rendered as text, not HTML", async () => {
    const evil = `<img src=x onerror="window.__xss=1"><b>bold?</b> & 'quotes' "too"`;
    const before = await countMatching(a, "#log .msg", [evil]);
    await b.fill("#input", evil);
    await b.click("#send");
    await logGains(a, "#log .msg", [evil], before, "the HTML-looking message as literal text");
    const bad = await a.evaluate(() => ({
      xss: window.__xss === 1,
      tags: document.querySelectorAll("#log .msg b, #log .msg img").length,
    }));
    assert(!bad.xss && bad.tags === 0, `user text was interpreted as HTML (${JSON.stringify(bad)})`);
  });

  const png = await makePng(96, 64);
  await step(`alice sends a ${png.length}-byte PNG via #file; page B shows it as .binary with an image`, async () => {
    const want = ["alice", `${png.length} bytes`];
    const before = await countMatching(b, "#log .binary", want);
    await a.setInputFiles("#file", { name: "gradient.png", mimeType: "image/png", buffer: png });
    await logGains(b, "#log .binary", want, before, `a new #log .binary "alice sent ${png.length} bytes" in page B`);
    await waitIn(b, "the PNG to render in page B", () =>
      Array.from(document.querySelectorAll("#log .binary img")).some((i) => i.complete && i.naturalWidth === 96));
    await waitIn(a, "the PNG to render in page A (sender gets its own upload)", () =>
      Array.from(document.querySelectorAll("#log .binary img")).some((i) => i.complete && i.naturalWidth === 96));
  });

  await step("non-image binary shows a hex preview of the first 16 bytes", async () => {
    const bytes = Buffer.from(Array.from({ length: 20 }, (_, i) => (i * 17 + 3) & 0xff));
    await a.setInputFiles("#file", { name: "data.bin", mimeType: "application/octet-stream", buffer: bytes });
    const hex = Array.from(bytes.subarray(0, 16), (x) => x.toString(16).padStart(2, "0")).join(" ");
    await logHas(b, "#log .binary", ["alice", "20 bytes", hex], `a .binary with hex preview "${hex}"`);
  });

  await step("#status reads OPEN on both pages", async () => {
    await statusIs(a, "OPEN");
    await statusIs(b, "OPEN");
  });

  await step(`screenshot of page A saved to ${path.relative(repoRoot, screenshotPath)}`, async () => {
    await a.fill("#input", "");
    fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await a.screenshot({ path: screenshotPath });
    assert(fs.statSync(screenshotPath).size > 1000, "screenshot file is suspiciously small");
  });

  await step("a second 'alice' is refused with an error", async () => {
    const ctxC = await browser.newContext();
    const c = await ctxC.newPage();
    c.on("pageerror", (e) => pageErrors.push(`page C: ${e.message}`));
    await c.goto(CHAT_URL_B, { timeout: STEP_TIMEOUT_MS });
    await statusIs(c, "OPEN");
    await join(c, "alice");
    await logHas(c, "#log .notice", ["already taken"], 'an error notice "nickname already taken"');
    await onlineIs(a, ["alice", "bob"]);
    await ctxC.close();
  });

  await step("carol joins and leaves in page C: pages A and B follow the deltas and the count", async () => {
    const ctxC = await browser.newContext();
    const c = await ctxC.newPage();
    c.on("pageerror", (e) => pageErrors.push(`page C: ${e.message}`));
    await c.goto(CHAT_URL_B, { timeout: STEP_TIMEOUT_MS });
    await statusIs(c, "OPEN");
    await join(c, "carol");
    await onlineIs(c, ["alice", "bob", "carol"]);
    await onlineIs(a, ["alice", "bob", "carol"]);
    await onlineIs(b, ["alice", "bob", "carol"]);
    await countIs(a, 3);
    await c.click("#leave");
    await statusIs(c, "CLOSED");
    await onlineIs(a, ["alice", "bob"]);
    await onlineIs(b, ["alice", "bob"]);
    await countIs(a, 2);
    await countIs(b, 2);
    await logHas(a, "#log .notice", ["carol", "left"], "a notice that carol left in page A");
    await ctxC.close();
  });

  if (MANAGED) {
    await step("instance B is killed (SIGKILL) and restarted: page B reconnects by itself, no gap, no duplicate", async () => {
      const before = await shownIds(b);
      serverB.proc.kill("SIGKILL");
      await waitIn(b, "page B to notice the lost connection", () => document.querySelector("#status")?.textContent.trim() !== "OPEN");
      // Messages page B misses while its server is down, sent from page A (instance A).
      for (const t of ["missed one", "missed two", "missed three"]) {
        await a.fill("#input", t);
        await a.press("#input", "Enter");
      }
      await logHas(a, "#log .msg", ["missed three"], "page A's own third message");
      serverB = await startServer("B again", serverB.port);
      // bob's old presence expires (ttl 3 s) before the name is free: the page keeps retrying.
      await waitIn(b, "page B to rejoin and show the missed messages", () =>
        document.querySelector("#status")?.textContent.trim() === "OPEN" &&
        Array.from(document.querySelectorAll("#log .msg")).some((n) => n.textContent.includes("missed three")),
        undefined, 45_000);
      await onlineIs(b, ["alice", "bob"]);
      await onlineIs(a, ["alice", "bob"]);
      await a.fill("#input", "after the restart");
      await a.press("#input", "Enter");
      await logHas(b, "#log .msg", ["after the restart"], "a live message after the reconnection in page B");
      const ids = await shownIds(b);
      const fresh = ids.slice(before.length);
      assert(JSON.stringify(ids.slice(0, before.length)) === JSON.stringify(before), "page B's earlier messages changed");
      for (let i = 1; i < ids.length; i++) {
        assert(ids[i] === ids[i - 1] + 1, `page B shows ids ${JSON.stringify(ids)}: a gap or a duplicate at ${ids[i]}`);
      }
      const texts = await b.evaluate(() => Array.from(document.querySelectorAll("#log .msg .text")).map((n) => n.textContent));
      for (const t of ["missed one", "missed two", "missed three", "after the restart"]) {
        assert(texts.filter((x) => x === t).length === 1, `"${t}" is shown ${texts.filter((x) => x === t).length} times in page B`);
      }
      console.log(`    page B ids after the restart: ${JSON.stringify(fresh)}`);
    });

    await step(`screenshot of page B saved to ${path.relative(repoRoot, screenshotPathB)}`, async () => {
      await b.screenshot({ path: screenshotPathB });
    });
  }

  await step("bob leaves (close 1000): page A shows the leave and updates the online list", async () => {
    await b.click("#leave");
    await statusIs(b, "CLOSED");
    await waitIn(b, "the close code 1000 to be shown in page B", () =>
      (document.body.innerText || "").includes("1000"));
    await logHas(a, "#log .notice", ["bob", "left"], "a #log .notice that bob left");
    await onlineIs(a, ["alice"]);
  });

  await step("no uncaught JavaScript errors in the pages", async () => {
    assert(pageErrors.length === 0, pageErrors.join("; "));
  });
}

try {
  await main();
  await browser.close();
  killServers();
  clearTimeout(overall);
  finish(failed === 0 ? 0 : 1);
} catch (err) {
  if (!(err instanceof StepFailed)) {
    failed++;
    console.error(`FAIL - ${err && err.message ? err.message : err}`);
  }
  if (browser) await browser.close().catch(() => {});
  killServers();
  clearTimeout(overall);
  finish(1);
}
