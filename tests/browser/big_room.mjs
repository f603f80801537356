// The chat page in a big room (a benchmark, not part of CI): joins ROOM on CHAT_URL in headless
// Chromium while a load tool keeps the room full and churning, and reports how long the
// welcome took, what the page shows (count, list length) and how responsive it stays (the
// longest gap between 50 ms timer ticks over HOLD_S seconds, and the page's own long tasks).
//
//   target/release/examples/chat_load --url ws://127.0.0.1:9020/chat --clients 10000 \
//       --mode storm --rate 10 --churn 10 --seconds 120 &
//   CHAT_URL=http://127.0.0.1:9020/ ROOM=load CHROMIUM=/usr/bin/chromium node tests/browser/big_room.mjs
import { chromium } from "playwright-core";
import path from "node:path";
import { fileURLToPath } from "node:url";

const CHAT_URL = process.env.CHAT_URL || "http://127.0.0.1:8080/";
const ROOM = process.env.ROOM || "load";
const HOLD_S = Number(process.env.HOLD_S || 20);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const here = path.dirname(fileURLToPath(import.meta.url));
const shot = path.join(here, "..", "..", "target", "chat-big-room.png");

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${CHAT_URL}?room=${encodeURIComponent(ROOM)}`);
  await page.waitForFunction(() => document.querySelector("#status")?.textContent.trim() === "OPEN");
  const t0 = Date.now();
  await page.fill("#nick", `viewer${Math.floor(Math.random() * 1e6)}`);
  await page.click("#join");
  await page.waitForFunction(() => document.querySelector("#me")?.hidden === false, null, { timeout: 30_000 });
  const welcomeMs = Date.now() - t0;
  // Responsiveness: a 50 ms timer in the page; the longest gap between its ticks.
  await page.evaluate(() => {
    window.__gaps = [];
    window.__longTasks = 0;
    let last = performance.now();
    window.__timer = setInterval(() => { const now = performance.now(); window.__gaps.push(now - last); last = now; }, 50);
    new PerformanceObserver((l) => { window.__longTasks += l.getEntries().length; }).observe({ entryTypes: ["longtask"] });
  });
  await page.waitForTimeout(HOLD_S * 1000);
  const r = await page.evaluate(() => {
    clearInterval(window.__timer);
    const g = window.__gaps.slice().sort((a, b) => a - b);
    return {
      count: document.querySelector("#count").textContent,
      listed: document.querySelectorAll("#online li").length,
      more: document.querySelector("#online-more").textContent,
      notices: document.querySelectorAll("#log .notice").length,
      messages: document.querySelectorAll("#log .msg").length,
      gapP50: g[Math.floor(g.length / 2)],
      gapMax: g[g.length - 1],
      longTasks: window.__longTasks,
    };
  });
  await page.screenshot({ path: shot });
  console.log(`big room ${ROOM}: welcome after ${welcomeMs} ms; count ${r.count}, ${r.listed} names listed (${r.more}); ` +
    `${r.messages} messages and ${r.notices} notices in ${HOLD_S} s; 50 ms timer gaps p50 ${r.gapP50.toFixed(1)} ms, ` +
    `max ${r.gapMax.toFixed(1)} ms; long tasks ${r.longTasks}; page errors ${errors.length}; screenshot ${shot}`);
  process.exitCode = errors.length ? 1 : 0;
} finally {
  await browser.close();
}
