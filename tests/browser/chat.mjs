// Browser end-to-end test for the hybi chat example (examples/chat/index.html).
//
//   CHAT_URL=http://127.0.0.1:8080/ CHROMIUM=/usr/bin/chromium node tests/browser/chat.mjs
//
// Needs a running chat server at CHAT_URL and a system Chromium (Debian: apt-get
// install chromium). Uses playwright-core only (no browser download). Prints one
// `ok - ...` line per check and ends with `browser: N passed, M failed`; exits 1 on
// any failure. Saves a screenshot of page A to <repo>/target/chat-browser.png.
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";

const CHAT_URL = process.env.CHAT_URL || "http://127.0.0.1:8080/";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const screenshotPath = path.join(repoRoot, "target", "chat-browser.png");

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
async function waitIn(page, what, probe, arg) {
  try {
    return await (await page.waitForFunction(probe, arg, { timeout: STEP_TIMEOUT_MS, polling: 50 })).jsonValue();
  } catch (err) {
    if (err && err.name === "TimeoutError") {
      const log = await page.evaluate(() => {
        const l = document.querySelector("#log");
        return l ? Array.from(l.children).slice(-8).map((c) => `[${c.className}] ${c.textContent}`).join(" | ") : "(no #log)";
      }).catch(() => "(page unavailable)");
      const status = await page.textContent("#status").catch(() => "?");
      throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for ${what}; #status=${status}; last log entries: ${log}`);
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
  console.log(`browser: CHAT_URL=${CHAT_URL} CHROMIUM=${CHROMIUM}`);
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

  await step("bob joins in page B", async () => {
    await b.goto(CHAT_URL, { timeout: STEP_TIMEOUT_MS });
    await statusIs(b, "OPEN");
    await join(b, "bob");
    await onlineIs(b, ["alice", "bob"]);
  });

  await step("page A shows bob's join notice and online list [alice, bob]", async () => {
    await logHas(a, "#log .notice", ["bob"], "a #log .notice mentioning bob");
    await onlineIs(a, ["alice", "bob"]);
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
    await c.goto(CHAT_URL, { timeout: STEP_TIMEOUT_MS });
    await statusIs(c, "OPEN");
    await join(c, "alice");
    await logHas(c, "#log .notice", ["already taken"], 'an error notice "nickname already taken"');
    await onlineIs(a, ["alice", "bob"]);
    await ctxC.close();
  });

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
  clearTimeout(overall);
  finish(failed === 0 ? 0 : 1);
} catch (err) {
  if (!(err instanceof StepFailed)) {
    failed++;
    console.error(`FAIL - ${err && err.message ? err.message : err}`);
  }
  if (browser) await browser.close().catch(() => {});
  clearTimeout(overall);
  finish(1);
}
