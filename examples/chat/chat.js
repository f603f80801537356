"use strict";
(() => {
  const MAX_TEXT = 4000;
  const MAX_BINARY = 64 * 1024;
  const STATES = ["CONNECTING", "OPEN", "CLOSING", "CLOSED"];
  const CLOSE_NAMES = {
    1000: "normal closure", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
    1005: "no status received", 1006: "abnormal closure", 1007: "invalid payload data",
    1008: "policy violation", 1009: "message too big", 1010: "mandatory extension",
    1011: "internal error", 1012: "service restart", 1013: "try again later", 1015: "TLS handshake failure",
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), log: $("log"), empty: $("empty"), online: $("online"), count: $("count"),
    nick: $("nick"), join: $("join"), joinForm: $("join-form"), joinLayer: $("join-layer"),
    joinError: $("join-error"), input: $("input"), send: $("send"), file: $("file"),
    composer: $("composer"), banner: $("banner"), closeInfo: $("close-info"),
    reconnect: $("reconnect"), leave: $("leave"), me: $("me"), sidebar: $("sidebar"),
    room: $("room"), roomName: $("room-name"), onlineMore: $("online-more"),
  };
  // Reconnection: full-jitter exponential backoff, 0.5 s doubling to a 20 s cap.
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 20_000;
  // The member list shows at most this many names (the count is always exact).
  const LIST_CAP = 200;
  const fileIcon = $("file-icon");


  let ws = null;
  let myNick = null;        // nick confirmed by the server (welcome)
  let pendingNick = null;   // nick to send as soon as the socket is open
  let pendingBinary = [];   // announcements waiting for their bytes, in order
  let blobUrls = [];
  let reconnecting = false; // show a "Reconnected" notice after the next welcome
  // The room, from ?room= or the join form; validated by the server.
  let room = (new URLSearchParams(location.search).get("room") || "").trim().toLowerCase() || "lobby";
  // Resume: the newest message id shown, and whether to rejoin by ourselves after a drop.
  let lastId = null;
  let autoRejoin = false;   // set once joined; cleared when the user leaves
  let attempt = 0;          // reconnection attempts since the last welcome
  let retryTimer = null;
  // A gap in the ids: messages held back until the `history` answer fills it.
  let gapHeld = null;
  let joinedNick = null;    // the nick the server confirmed, for rejoining

  // ---------- helpers ----------
  function make(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function hue(s) {
    let h = 0;
    for (const ch of s) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }
  // The initial is drawn with CSS (attr(data-initial)) so that an element's
  // textContent is just the user's text (e.g. an #online li is exactly the nick).
  function avatar(nick) {
    const a = make("span", "avatar");
    a.dataset.initial = Array.from(nick || "?")[0] || "?";
    a.style.background = `hsl(${hue(nick || "")} 62% 52%)`;
    a.setAttribute("aria-hidden", "true");
    return a;
  }
  function fmtTime(ts) {
    if (typeof ts !== "number" || !isFinite(ts)) return "";
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function fmtBytes(n) {
    return `${n} byte${n === 1 ? "" : "s"}`;
  }
  function closeLabel(code) {
    const name = CLOSE_NAMES[code] || (code >= 4000 ? "application code" : "");
    return name ? `${code} (${name})` : String(code);
  }

  // ---------- log ----------
  // Follow the bottom of the log unless the user scrolled up to read.
  let stuck = true;
  function nearBottom() {
    const l = el.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }
  function scrollDown() {
    el.log.scrollTop = el.log.scrollHeight;
  }
  // Only an upward scroll (the user's) un-sticks; layout changes that shrink the
  // log never move scrollTop up, so they can't break the follow mode.
  let lastTop = 0;
  el.log.addEventListener("scroll", () => {
    const top = el.log.scrollTop;
    if (nearBottom()) stuck = true;
    else if (top < lastTop - 1) stuck = false;
    lastTop = top;
  }, { passive: true });
  // Keep following when the log resizes (banner shown, phone keyboard, image loaded).
  new ResizeObserver(() => { if (stuck) scrollDown(); }).observe(el.log);
  // The log keeps the newest LOG_CAP entries: a busy room must not grow the page forever.
  const LOG_CAP = 1000;
  function append(node) {
    el.empty.hidden = true;
    el.log.appendChild(node);
    while (el.log.childElementCount > LOG_CAP + 1) {
      const oldest = el.empty.nextElementSibling;
      const img = oldest.querySelector("img");
      if (img && img.src.startsWith("blob:")) {
        URL.revokeObjectURL(img.src);
        blobUrls = blobUrls.filter((u) => u !== img.src);
      }
      oldest.remove();
    }
    if (stuck) scrollDown();
    return node;
  }
  function clearLog() {
    for (const u of blobUrls) URL.revokeObjectURL(u);
    blobUrls = [];
    pendingBinary = [];
    el.log.replaceChildren(el.empty);
    el.empty.hidden = false;
  }
  function notice(text, extra) {
    return append(make("div", "notice" + (extra ? " " + extra : ""), text));
  }
  function bubbleFrame(cls, from, ts) {
    const row = make("div", cls + (from === myNick && myNick !== null ? " mine" : ""));
    row.appendChild(avatar(from));
    const bubble = make("div", "bubble");
    const meta = make("div", "meta");
    meta.appendChild(make("span", "from", from));
    const t = make("time", "time", fmtTime(ts));
    if (typeof ts === "number") {
      t.dateTime = new Date(ts).toISOString();
      t.title = new Date(ts).toLocaleString();
    }
    meta.appendChild(t);
    bubble.appendChild(meta);
    row.appendChild(bubble);
    return { row, bubble };
  }
  function renderMessage(m) {
    const { row, bubble } = bubbleFrame("msg", String(m.from ?? "?"), m.ts);
    if (m.id !== undefined) row.dataset.id = String(m.id);
    bubble.appendChild(make("div", "text", String(m.text ?? "")));
    return append(row);
  }
  function renderBinary(m, fromHistory) {
    const from = String(m.from ?? "?");
    const size = Number(m.size) || 0;
    const { row, bubble } = bubbleFrame("binary", from, m.ts);
    if (m.id !== undefined) row.dataset.id = String(m.id);
    const summary = make("div", "summary");
    summary.appendChild(fileIcon.content.cloneNode(true));
    summary.appendChild(make("span", "", `${from} sent ${fmtBytes(size)}`));
    bubble.appendChild(summary);
    if (fromHistory) bubble.appendChild(make("span", "note", "(earlier upload, content not kept)"));
    row.dataset.size = String(size);
    append(row);
    return { row, bubble, size };
  }
  function sniffImage(b) {
    if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 &&
        b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return "image/png";
    if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
    if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 &&
        (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return "image/gif";
    return null;
  }
  function hexPreview(b) {
    const parts = [];
    for (let i = 0; i < Math.min(16, b.length); i++) parts.push(b[i].toString(16).padStart(2, "0"));
    return (parts.join(" ") || "(empty)") + (b.length > 16 ? " …" : "");
  }
  function attachBytes(entry, buf) {
    const bytes = new Uint8Array(buf);
    const { row, bubble, size } = entry;
    if (bytes.length !== size) {
      bubble.appendChild(make("span", "note", `(announced ${fmtBytes(size)}, received ${fmtBytes(bytes.length)})`));
    }
    const mime = sniffImage(bytes);
    if (mime) {
      const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
      blobUrls.push(url);
      const img = make("img");
      img.alt = `image from ${row.querySelector(".from").textContent}`;
      img.decoding = "async";
      img.addEventListener("load", () => { if (stuck) scrollDown(); });
      img.src = url;
      bubble.appendChild(img);
    } else {
      const code = make("code", "hex", hexPreview(bytes));
      code.title = "first 16 bytes (hex)";
      bubble.appendChild(code);
    }
    row.classList.add("received");
    if (stuck) scrollDown();
  }


  // ---------- members: the welcome's list plus deltas ----------
  // Join order is kept by the Map; the DOM list holds at most LIST_CAP names and is updated
  // one element per change (no full re-render per notice).
  const members = new Map(); // nick -> <li> or null when not rendered
  let memberCount = 0;
  function memberItem(nick) {
    const li = make("li");
    li.dataset.nick = nick;
    li.appendChild(avatar(nick));
    li.appendChild(make("span", "name", nick));
    if (nick === myNick) li.classList.add("self");
    return li;
  }
  function showCount() {
    el.count.textContent = String(memberCount);
    const hidden = Math.max(memberCount, members.size) - el.online.childElementCount;
    el.onlineMore.hidden = hidden <= 0;
    el.onlineMore.textContent = hidden > 0 ? `and ${hidden} more` : "";
  }
  function addMember(nick) {
    if (members.has(nick)) return;
    let li = null;
    if (el.online.childElementCount < LIST_CAP) {
      li = memberItem(nick);
      el.online.appendChild(li);
    }
    members.set(nick, li);
  }
  function removeMember(nick) {
    if (!members.has(nick)) return;
    const li = members.get(nick);
    members.delete(nick);
    if (li) {
      li.remove();
      // Fill the freed place with the first member not shown.
      for (const [n, l] of members) {
        if (l === null) { const item = memberItem(n); el.online.appendChild(item); members.set(n, item); break; }
      }
    }
  }
  function resetMembers(list) {
    members.clear();
    el.online.replaceChildren();
    for (const n of list) addMember(String(n));
  }
  function setCount(c) {
    if (typeof c === "number" && isFinite(c)) memberCount = c;
    showCount();
  }

  // ---------- UI state ----------
  function updateStatus() {
    const s = ws ? STATES[ws.readyState] : "CLOSED";
    if (el.status.textContent !== s) el.status.textContent = s;
    if (el.status.dataset.state !== s) el.status.dataset.state = s;
    const open = ws && ws.readyState === WebSocket.OPEN;
    const chatting = open && myNick !== null;
    el.input.disabled = !chatting;
    el.send.disabled = !chatting;
    el.file.disabled = !chatting;
    el.composer.classList.toggle("disabled", !chatting);
    el.input.placeholder = chatting ? `Message as ${myNick}…` : (myNick ? "Disconnected" : "Join to start chatting…");
    el.leave.hidden = !chatting;
    el.reconnect.hidden = s !== "CLOSED";
    if (s === "CLOSED" && el.banner.hidden) showBanner("Disconnected.");
  }
  setInterval(updateStatus, 250);

  function showBanner(text, kind) {
    el.closeInfo.textContent = text;
    el.banner.className = "banner" + (kind ? " " + kind : "");
    el.banner.hidden = false;
  }
  function showJoin(errorText) {
    el.joinLayer.hidden = false;
    el.joinError.textContent = errorText || "";
    el.nick.disabled = false;
    el.join.disabled = false;
    el.nick.focus();
  }
  function hideJoin() {
    el.joinLayer.hidden = true;
    el.joinError.textContent = "";
  }
  function setMe() {
    el.me.hidden = myNick === null;
    el.me.replaceChildren();
    if (myNick !== null) {
      el.me.appendChild(document.createTextNode("Signed in as "));
      el.me.appendChild(make("b", "", myNick));
    }
  }


  // ---------- connection ----------
  function wsUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/chat`;
  }

  function connect() {
    if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!reconnecting) el.banner.hidden = true;
    pendingBinary = [];
    gapHeld = null;
    let sock;
    try {
      sock = new WebSocket(wsUrl(), "chat");
    } catch (e) {
      ws = null;
      updateStatus();
      showBanner(`Cannot connect: ${e.message}`);
      return;
    }
    sock.binaryType = "arraybuffer";
    ws = sock;
    updateStatus();

    sock.addEventListener("open", () => {
      if (sock !== ws) return;
      updateStatus();
      if (pendingNick !== null) sendJoin(pendingNick);
    });
    sock.addEventListener("message", (ev) => {
      if (sock !== ws) return;
      if (typeof ev.data === "string") onText(ev.data);
      else onBinary(ev.data);
    });
    sock.addEventListener("close", (ev) => {
      if (sock !== ws) return;
      onClose(ev);
    });
    sock.addEventListener("error", () => { if (sock === ws) updateStatus(); });
  }

  // Schedules a reconnection: a random wait up to min(20 s, 0.5 s * 2^attempt).
  function scheduleReconnect(why) {
    clearTimeout(retryTimer);
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
    const wait = Math.floor(Math.random() * ceiling);
    attempt++;
    showBanner(`${why} Reconnecting in ${(wait / 1000).toFixed(1)} s…`, "warn");
    el.reconnect.hidden = false;
    retryTimer = setTimeout(() => { retryTimer = null; reconnect(); }, wait);
  }

  function reconnect() {
    if (myNick !== null) pendingNick = myNick; // re-join with the same nick
    const had = myNick;
    reconnecting = had !== null || autoRejoin;
    if (had !== null) myNick = null;
    setMe();
    if (had === null && !autoRejoin) showJoin("");
    connect();
  }

  function sendJoin(nick) {
    pendingNick = null;
    el.joinError.textContent = "";
    el.nick.disabled = true;
    el.join.disabled = true;
    const join = { type: "join", nick, room };
    if (lastId !== null) join.since = lastId;
    ws.send(JSON.stringify(join));
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  // Shows a message or binary announcement unless it was shown already; a jump in the ids
  // (a message lost between servers) holds it back and asks for the gap with `history`.
  function onRoomMessage(m) {
    const id = Number(m.id);
    if (Number.isInteger(id) && lastId !== null) {
      if (id <= lastId) return "dup";
      if (gapHeld !== null) { gapHeld.push(m); return "held"; }
      if (id > lastId + 1) {
        gapHeld = [m];
        send({ type: "history", since: lastId });
        return "held";
      }
    }
    if (Number.isInteger(id)) lastId = id;
    if (m.type === "message") renderMessage(m);
    else if (m.type === "binary") return renderBinary(m, false);
    return "shown";
  }

  function renderHistoryEntry(h) {
    const id = Number(h && h.id);
    if (Number.isInteger(id) && lastId !== null && id <= lastId) return;
    if (Number.isInteger(id)) lastId = id;
    if (h && h.type === "message") renderMessage(h);
    else if (h && h.type === "binary") renderBinary(h, true);
  }

  function onText(data) {
    let m;
    try { m = JSON.parse(data); } catch { notice("Received invalid JSON from the server", "error"); return; }
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "welcome": {
        myNick = String(m.nick);
        joinedNick = myNick;
        room = String(m.room || room);
        el.room.textContent = `#${room}`;
        const hist = Array.isArray(m.history) ? m.history : [];
        const resumed = lastId !== null;
        if (resumed && typeof m.last_id === "number" && m.last_id < lastId) {
          // The server lost the room's history (restarted without Redis): start afresh.
          notice("The server restarted and lost this room's history", "divider");
          lastId = null;
        }
        if (!resumed) {
          clearLog();
          if (hist.length) notice(`Last ${hist.length} message${hist.length === 1 ? "" : "s"}`, "divider");
        } else if (m.truncated) {
          notice("Some messages were missed while disconnected", "divider");
        }
        for (const h of hist) renderHistoryEntry(h);
        if (lastId === null) lastId = typeof m.last_id === "number" ? m.last_id : 0;
        if (reconnecting) notice("Reconnected");
        reconnecting = false;
        attempt = 0;
        autoRejoin = true;
        resetMembers(Array.isArray(m.online) ? m.online : []);
        setCount(m.count);
        // More members than one page: fetch pages only while the list has room to show them
        // (a 10,000-member room shows its first LIST_CAP names and the count).
        if (m.next !== null && m.next !== undefined && members.size < LIST_CAP) send({ type: "who", after: m.next });
        el.sidebar.classList.remove("stale");
        setMe();
        hideJoin();
        el.banner.hidden = true;
        updateStatus();
        el.input.focus();
        stuck = true;
        scrollDown();
        break;
      }
      case "who":
        for (const n of Array.isArray(m.online) ? m.online : []) addMember(String(n));
        setCount(m.count);
        if (m.next !== null && m.next !== undefined && members.size < LIST_CAP) send({ type: "who", after: m.next });
        break;
      case "join": {
        const nick = String(m.nick);
        notice(nick === myNick ? `You joined #${room} as ${nick}` : `${nick} joined`, "join");
        addMember(nick);
        setCount(m.count);
        break;
      }
      case "leave": {
        const nick = String(m.nick);
        notice(`${nick} left`, "leave");
        removeMember(nick);
        setCount(m.count);
        break;
      }
      case "presence": {
        const changes = Array.isArray(m.changes) ? m.changes : [];
        const joined = [], left = [];
        for (const c of changes) {
          const nick = String(c && c.nick);
          if (c && c.type === "join") { addMember(nick); joined.push(nick); }
          else if (c && c.type === "leave") { removeMember(nick); left.push(nick); }
        }
        const list = (names) => names.length <= 3 ? names.join(", ") : `${names.slice(0, 3).join(", ")} and ${names.length - 3} more`;
        if (joined.length) notice(`${list(joined)} joined`, "join");
        if (left.length) notice(`${list(left)} left`, "leave");
        setCount(m.count);
        break;
      }
      case "history": {
        // The answer to a gap: show what was missed, then what was held back, in id order.
        const held = gapHeld || [];
        gapHeld = null;
        for (const h of Array.isArray(m.history) ? m.history : []) renderHistoryEntry(h);
        for (const h of held) {
          const r = onRoomMessage(h);
          if (r && typeof r === "object") pendingBinary.push(r);
        }
        break;
      }
      case "message":
        onRoomMessage(m);
        break;
      case "binary": {
        const r = onRoomMessage(m);
        // Its bytes follow at once: attach them, or drop them when it was a duplicate.
        pendingBinary.push(r && typeof r === "object" ? r : null);
        break;
      }
      case "error": {
        const text = String(m.text ?? "error");
        if (myNick === null && autoRejoin) {
          // Rejoining after a drop (e.g. the old session still holds the nickname until the
          // server that held it is declared dead): the retry goes on, no need to log each.
          el.closeInfo.textContent = `Rejoining: ${text}.`;
          break;
        }
        if (myNick === null) showJoin(text);
        notice(`Error: ${text}`, "error");
        break;
      }
      default:
        break; // ignore unknown types (forward compatible)
    }
  }

  function onBinary(buf) {
    if (pendingBinary.length) {
      const entry = pendingBinary.shift();
      if (entry) attachBytes(entry, buf);
      return;
    }
    const e = renderBinary({ from: "?", size: buf.byteLength, ts: Date.now() }, false);
    e.bubble.appendChild(make("span", "note", "(unannounced binary message)"));
    attachBytes(e, buf);
  }

  function onClose(ev) {
    const code = ev.code;
    const reason = ev.reason;
    const detail = `close code ${closeLabel(code)}${reason ? `, reason “${reason}”` : ""}`;
    el.sidebar.classList.add("stale");
    pendingBinary = [];
    gapHeld = null;
    const wasJoined = myNick !== null;
    if (wasJoined) myNick = null;
    updateStatus();
    // Rejoin by ourselves after a drop, unless the user left; the first join's refusal
    // (a bad or taken nickname) is the user's to fix.
    if (autoRejoin && code !== 1000) {
      if (wasJoined) {
        notice(code === 1001 ? `The server is going away${reason ? `: ${reason}` : ""} (1001)` :
          `Disconnected: ${closeLabel(code)}${reason ? ` — ${reason}` : ""}`, code === 1001 ? "going-away" : "error");
      }
      pendingNick = joinedNick || pendingNick;
      scheduleReconnect(`Connection lost — ${detail}.`);
      return;
    }
    let text;
    if (code === 1001) {
      text = `Server going away — ${detail}. The server is shutting down or restarting.`;
      notice(`The server is going away${reason ? `: ${reason}` : ""} (1001)`, "going-away");
    } else if (code === 1006) {
      text = `Connection lost — ${detail}; no close frame was received.`;
      notice("Connection lost (1006)", "error");
    } else {
      text = `Connection closed — ${detail}.`;
      notice(`Disconnected: ${closeLabel(code)}${reason ? ` — ${reason}` : ""}`, code === 1000 ? "" : "error");
    }
    showBanner(text, code === 1000 ? "neutral" : code === 1001 ? "warn" : "");
    el.reconnect.hidden = false;
    if (!wasJoined && !autoRejoin) {
      el.nick.disabled = false;
      el.join.disabled = false;
      if (!el.joinError.textContent) el.joinError.textContent = "Not connected — press Reconnect or Join.";
    }
  }

  // ---------- user actions ----------
  el.roomName.value = room;
  el.room.textContent = `#${room}`;
  el.joinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const nick = el.nick.value.trim();
    const len = Array.from(nick).length;
    if (len < 1 || len > 32) {
      el.joinError.textContent = "Nickname must be 1–32 characters.";
      el.nick.focus();
      return;
    }
    const wanted = el.roomName.value.trim().toLowerCase() || "lobby";
    if (wanted !== room) { room = wanted; lastId = null; }
    if (ws && ws.readyState === WebSocket.OPEN) {
      sendJoin(nick);
    } else {
      pendingNick = nick;
      el.joinError.textContent = "Connecting…";
      connect();
    }
  });

  el.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = el.input.value;
    if (!text.trim() || !ws || ws.readyState !== WebSocket.OPEN || myNick === null) return;
    if (Array.from(text).length > MAX_TEXT) {
      notice(`Message too long (max ${MAX_TEXT} characters)`, "error");
      return;
    }
    ws.send(JSON.stringify({ type: "message", text }));
    el.input.value = "";
    el.input.focus();
  });

  el.file.addEventListener("change", async () => {
    const f = el.file.files && el.file.files[0];
    el.file.value = "";
    if (!f) return;
    if (f.size > MAX_BINARY) {
      notice(`“${f.name}” is too large: ${fmtBytes(f.size)} (max 64 KiB)`, "error");
      return;
    }
    const buf = await f.arrayBuffer();
    if (!ws || ws.readyState !== WebSocket.OPEN || myNick === null) {
      notice("Not connected — file not sent", "error");
      return;
    }
    ws.send(buf);
    el.input.focus();
  });

  el.reconnect.addEventListener("click", () => {
    attempt = 0;
    reconnect();
  });

  el.leave.addEventListener("click", () => {
    if (ws && ws.readyState === WebSocket.OPEN) {
      autoRejoin = false;
      clearTimeout(retryTimer);
      ws.close(1000, "bye");
      updateStatus();
    }
  });

  window.addEventListener("beforeunload", () => {
    autoRejoin = false;
    if (ws && ws.readyState === WebSocket.OPEN) ws.close(1001, "page closed");
  });

  connect();
})();
