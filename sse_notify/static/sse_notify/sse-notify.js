/*!
 * sse-notify: the browser client of the sse_notify Django app.
 * One file, no dependencies, no build step. Loaded by the {% sse_notify %} tag,
 * which renders its configuration as <script type="application/json" id="sse-notify-config">.
 *
 * What it does
 * - Opens ONE stream per browser (per signed-in user), not one per tab: tabs elect a
 *   leader with the Web Locks API; the leader streams and relays every event to the
 *   other tabs over a BroadcastChannel. When the leader tab closes, its lock is
 *   released and a waiting tab takes over, resuming from the last seq it saw.
 *   Without Web Locks (e.g. plain http on a non-localhost host) each tab streams alone.
 * - Streams with fetch() and parses Server-Sent Events itself, so it sees status
 *   codes: reconnects with exponential backoff and jitter after network errors,
 *   5xx and 429 (honouring Retry-After), resumes with the Last-Event-ID header,
 *   and stops on 401/403 (signed out). The first connect sends ?cursor=<the cursor
 *   the page was rendered at>, so nothing sent between render and connect is lost.
 * - Shows each notification once (de-duplicated by seq), as a toast, and keeps
 *   every [data-sse-notify-count] badge and [data-sse-notify-list] list live.
 *   User text is only ever set with textContent; links are followed only when
 *   they are http(s) or relative.
 *
 * DOM events (dispatched on document, in every tab):
 *   sse-notify:notification  detail = the notification {id, seq, title, body, level, url,
 *                            data, created, actor, unread}. Cancelable: preventDefault()
 *                            suppresses the toast and desktop notification.
 *   sse-notify:read          detail = {ids: [..] | null (all), read: bool, unread: n}
 *   sse-notify:unread        detail = {unread: n} whenever the count changes
 *   sse-notify:reset         detail = {cursor, unread, reason}: the list was reloaded
 *   sse-notify:preferences   detail = {preferences: [{category, in_app, desktop, email, ...}]}
 *   sse-notify:connection    detail = {state, leader}; state is one of "connecting",
 *                            "open", "reconnecting", "signed-out", "stopped"
 *
 * JS API (window.sseNotify):
 *   markRead(id) -> Promise<{id, read, unread}>     markAllRead() -> Promise<{marked, unread}>
 *   unreadCount, connection, isLeader, lastSeq      (read-only properties)
 *   refresh() -> Promise   reloads the unread count and the dropdown list
 *   enableDesktopNotifications() -> Promise<bool>   (call from a click: asks permission)
 *   disableDesktopNotifications(), desktopNotifications (bool)
 *   stop()                 closes this tab's part (stream or listener)
 *   safeLink(url) -> string | null                  the check used for every link
 */
(() => {
  "use strict";

  const configNode = document.getElementById("sse-notify-config");
  if (!configNode || window.sseNotify) return;
  const config = JSON.parse(configNode.textContent);

  const LEVELS = ["info", "success", "warning", "error"];
  const MAX_TOASTS = 4;
  const DESKTOP_KEY = "sse-notify:desktop";
  const KEY = `sse-notify:${config.user}`; // lock and channel name: one per signed-in user

  const state = {
    unread: Number(config.unread) || 0,
    lastSeq: Number(config.cursor) || 0,
    connection: "connecting",
    leader: false,
    stopped: false,
  };
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(KEY) : null;

  // ---------------------------------------------------------------- helpers

  function emit(name, detail, cancelable = false) {
    const event = new CustomEvent(`sse-notify:${name}`, { detail, cancelable });
    return document.dispatchEvent(event);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
    return node;
  }

  /** The absolute URL if a browser may follow it (http, https, relative), else null. */
  function safeLink(url) {
    if (typeof url !== "string" || !url.trim()) return null;
    if (/[\u0000-\u001f\\]/.test(url) || url.trim().startsWith("//")) return null;
    let parsed;
    try {
      parsed = new URL(url, window.location.href);
    } catch {
      return null;
    }
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  }

  function levelOf(n) {
    return LEVELS.includes(n.level) ? n.level : "info";
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  function csrfToken() {
    const name = `${config.csrfCookieName}=`;
    for (const part of document.cookie ? document.cookie.split(";") : []) {
      const item = part.trim();
      if (item.startsWith(name)) return decodeURIComponent(item.slice(name.length));
    }
    return config.csrfToken || "";
  }

  async function post(url, { keepalive = false } = {}) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      headers: {
        Accept: "application/json",
        "X-Requested-With": "XMLHttpRequest",
        [config.csrfHeaderName]: csrfToken(),
      },
    });
    if (!response.ok) throw new Error(`sse-notify: POST ${url} answered ${response.status}`);
    return response.json();
  }

  const relativeTime = (() => {
    const format = "RelativeTimeFormat" in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
    return (iso) => {
      const seconds = (Date.parse(iso) - Date.now()) / 1000;
      if (!format || Number.isNaN(seconds)) return "";
      if (Math.abs(seconds) < 45) return "just now";
      for (const [unit, size] of [["minute", 60], ["hour", 3600], ["day", 86400]]) {
        const value = Math.round(seconds / size);
        if (Math.abs(value) < (unit === "day" ? 30 : unit === "hour" ? 24 : 60)) return format.format(value, unit);
      }
      return new Date(iso).toLocaleDateString();
    };
  })();

  // ---------------------------------------------------------------- badge and list

  function setUnread(count) {
    const value = Math.max(0, Number(count) || 0);
    document.querySelectorAll("[data-sse-notify-count], [data-sse-notify-unread]").forEach((node) => {
      node.textContent = String(value);
      node.dataset.count = String(value);
    });
    if (value === state.unread) return;
    state.unread = value;
    emit("unread", { unread: value });
  }

  function buildItem(n) {
    const item = el("li", `sse-notify-item sse-notify-level-${levelOf(n)}${n.read ? "" : " is-unread"}`);
    item.dataset.id = String(n.id);
    item.dataset.seq = String(n.seq);
    const link = safeLink(n.url);
    const title = el(link ? "a" : "span", "sse-notify-item__title", n.title);
    if (link) title.href = link;
    item.append(title);
    if (n.body) {
      const body = n.body.length > 140 ? `${n.body.slice(0, 139)}…` : n.body;
      item.append(el("span", "sse-notify-item__body", body));
    }
    const time = el("time", "sse-notify-item__time", relativeTime(n.created));
    if (n.created) time.dateTime = n.created;
    item.append(time);
    return item;
  }

  function lists() {
    return document.querySelectorAll("[data-sse-notify-list]");
  }

  function updateEmpty(list) {
    const empty = list.querySelector("[data-sse-notify-empty]");
    if (empty) empty.hidden = Boolean(list.querySelector(".sse-notify-item"));
  }

  function addToLists(n) {
    lists().forEach((list) => {
      if (list.querySelector(`.sse-notify-item[data-id="${Number(n.id)}"]`)) return;
      list.prepend(buildItem(n));
      const limit = Number(list.dataset.limit) || 5;
      const items = list.querySelectorAll(".sse-notify-item");
      for (let i = limit; i < items.length; i++) items[i].remove();
      updateEmpty(list);
    });
  }

  function markInLists(ids, read) {
    const wanted = ids ? new Set(ids.map(String)) : null;
    document.querySelectorAll(".sse-notify-item[data-id], .sse-notify-inbox__item[data-id]").forEach((item) => {
      if (wanted && !wanted.has(item.dataset.id)) return;
      item.classList.toggle("is-unread", !read);
      // The inbox's no-JS form offers the opposite action.
      const button = item.querySelector("button[name=action]");
      if (button) {
        button.value = read ? "unread" : "read";
        button.textContent = read ? "Mark unread" : "Mark read";
      }
    });
  }

  /** On the inbox page, new arrivals are announced above the list (a reload shows them). */
  let inboxNew = 0;

  function noteInInbox() {
    const list = document.querySelector(".sse-notify-inbox__list");
    if (!list) return;
    inboxNew += 1;
    let banner = document.querySelector(".sse-notify-inbox__new");
    if (!banner) {
      banner = el("a", "sse-notify-inbox__new");
      banner.href = window.location.pathname;
      list.before(banner);
    }
    banner.textContent = `${inboxNew} new notification${inboxNew === 1 ? "" : "s"}: show`;
  }

  async function refresh() {
    const response = await fetch(config.listUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const page = await response.json();
    setUnread(page.unread);
    lists().forEach((list) => {
      list.querySelectorAll(".sse-notify-item").forEach((item) => item.remove());
      const limit = Number(list.dataset.limit) || 5;
      const empty = list.querySelector("[data-sse-notify-empty]");
      for (const n of page.results.slice(0, limit)) list.insertBefore(buildItem(n), empty);
      updateEmpty(list);
    });
  }

  // ---------------------------------------------------------------- toasts

  let toastRegion = null;

  function region() {
    if (!toastRegion || !toastRegion.isConnected) {
      toastRegion = el("div", "sse-notify-toasts");
      toastRegion.setAttribute("role", "status");
      toastRegion.setAttribute("aria-live", "polite");
      toastRegion.setAttribute("aria-atomic", "false");
      toastRegion.setAttribute("aria-label", "Notifications");
      document.body.append(toastRegion);
    }
    return toastRegion;
  }

  function dismiss(toast) {
    if (!toast || toast.dataset.leaving) return;
    toast.dataset.leaving = "1";
    toast._timer?.stop();
    const reduce = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches;
    toast.classList.add("is-leaving");
    setTimeout(() => toast.remove(), reduce ? 0 : 200);
  }

  function dismissFor(ids) {
    const wanted = ids ? new Set(ids.map(String)) : null;
    region().querySelectorAll(".sse-notify-toast").forEach((toast) => {
      if (!wanted || wanted.has(toast.dataset.id)) dismiss(toast);
    });
  }

  /** A countdown that pauses while the pointer or focus is on the toast. */
  function autoHide(toast, ms) {
    let remaining = ms;
    let started = 0;
    let timer = null;
    const resume = () => {
      if (timer !== null || toast.dataset.leaving) return;
      started = Date.now();
      timer = setTimeout(() => dismiss(toast), remaining);
      toast.classList.remove("is-paused");
    };
    const pause = () => {
      if (timer === null) return;
      clearTimeout(timer);
      timer = null;
      remaining = Math.max(500, remaining - (Date.now() - started));
      toast.classList.add("is-paused");
    };
    toast.addEventListener("mouseenter", pause);
    toast.addEventListener("focusin", pause);
    toast.addEventListener("mouseleave", resume);
    toast.addEventListener("focusout", (event) => {
      if (!toast.contains(event.relatedTarget)) resume();
    });
    resume();
    return { stop: () => clearTimeout(timer) };
  }

  function open(n) {
    const link = safeLink(n.url);
    const marking = markRead(n.id, { keepalive: Boolean(link) }).catch(() => null);
    if (link) {
      // keepalive lets the POST finish while the page unloads.
      window.location.assign(link);
    }
    return marking;
  }

  function showToast(n) {
    const level = levelOf(n);
    const toast = el("div", `sse-notify-toast sse-notify-level-${level}`);
    toast.dataset.id = String(n.id);
    const link = safeLink(n.url);

    const main = el("button", "sse-notify-toast__main");
    main.type = "button";
    main.append(el("span", "sse-notify-toast__icon"));
    const text = el("span", "sse-notify-toast__text");
    text.append(el("strong", "sse-notify-toast__title", n.title));
    if (n.body) text.append(el("span", "sse-notify-toast__body", n.body));
    const meta = [n.actor ? `from ${n.actor}` : "", link ? "Open" : "Mark read"].filter(Boolean).join(" · ");
    text.append(el("span", "sse-notify-toast__meta", meta));
    main.append(text);
    main.addEventListener("click", () => {
      dismiss(toast);
      open(n);
    });

    const close = el("button", "sse-notify-toast__close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss notification");
    close.addEventListener("click", () => dismiss(toast));

    toast.append(main, close);
    const timeout = Number(config.toastTimeout) || 0;
    if (timeout > 0) {
      const bar = el("span", "sse-notify-toast__progress");
      bar.style.animationDuration = `${timeout}ms`;
      toast.append(bar);
    }
    const stack = region();
    stack.prepend(toast);
    const toasts = stack.querySelectorAll(".sse-notify-toast:not(.is-leaving)");
    for (let i = MAX_TOASTS; i < toasts.length; i++) dismiss(toasts[i]);
    if (timeout > 0) toast._timer = autoHide(toast, timeout);
  }

  // ---------------------------------------------------------------- desktop notifications

  function desktopEnabled() {
    try {
      return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(DESKTOP_KEY) === "on";
    } catch {
      return false;
    }
  }

  async function enableDesktopNotifications() {
    if (!("Notification" in window)) return false;
    const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    if (permission !== "granted") return false;
    localStorage.setItem(DESKTOP_KEY, "on");
    syncDesktopButtons();
    return true;
  }

  function disableDesktopNotifications() {
    try {
      localStorage.removeItem(DESKTOP_KEY);
    } catch {
      /* storage disabled: nothing was stored */
    }
    syncDesktopButtons();
  }

  function syncDesktopButtons() {
    document.querySelectorAll("[data-sse-notify-desktop]").forEach((button) => {
      button.hidden = !("Notification" in window) || Notification.permission === "denied";
      button.textContent = desktopEnabled() ? "Turn off desktop alerts" : "Desktop alerts";
      button.setAttribute("aria-pressed", String(desktopEnabled()));
    });
  }

  let desktopBurst = [];

  function showDesktop(n) {
    // Only when this tab is hidden; the same tag in every hidden tab collapses them into one.
    if (document.visibilityState !== "hidden" || !desktopEnabled()) return;
    // A replay after a long disconnect must not pop up dozens of windows: past 3 in
    // 5 seconds, one summary replaces them.
    const now = Date.now();
    desktopBurst = desktopBurst.filter((t) => now - t < 5000);
    desktopBurst.push(now);
    const burst = desktopBurst.length > 3;
    try {
      const note = burst
        ? new Notification(`${state.unread} unread notifications`, { tag: "sse-notify-summary" })
        : new Notification(n.title, { body: n.body || "", tag: `sse-notify-${n.id}` });
      note.onclick = () => {
        window.focus();
        note.close();
        if (burst) window.location.assign(config.inboxUrl);
        else open(n);
      };
    } catch {
      /* some platforms allow Notification only from a service worker */
    }
  }

  // ---------------------------------------------------------------- events (from the stream or the leader)

  function handle(name, data) {
    switch (name) {
      case "ready":
        setUnread(data.unread);
        break;
      case "notification": {
        const seq = Number(data.seq);
        if (!(seq > state.lastSeq)) return; // seen already (replay after a reconnect or hand-over)
        state.lastSeq = seq;
        setUnread(data.unread);
        addToLists(data);
        noteInInbox();
        // in_app/desktop: the recipient's preferences for the category, fixed at send time.
        // In-app off: listed, but no toast and no desktop popup (and not in `unread`).
        if (emit("notification", data, true) && data.in_app !== false) {
          showToast(data);
          if (data.desktop !== false) showDesktop(data);
        }
        break;
      }
      case "preferences":
        // Changed in another tab, on another device or by an email's unsubscribe link.
        emit("preferences", data);
        break;
      case "read":
        setUnread(data.unread);
        markInLists(data.ids, data.read);
        if (data.read) dismissFor(data.ids);
        emit("read", data);
        break;
      case "reset":
        state.lastSeq = Number(data.cursor) || 0;
        setUnread(data.unread);
        refresh().catch(() => {});
        emit("reset", data);
        break;
      default:
        break;
    }
  }

  function setConnection(value) {
    if (state.connection === value) return;
    state.connection = value;
    document.documentElement.dataset.sseNotify = value;
    emit("connection", { state: value, leader: state.leader });
    if (state.leader) channel?.postMessage({ type: "state", state: value, unread: state.unread, lastSeq: state.lastSeq });
  }

  // ---------------------------------------------------------------- the stream (leader only)

  /** A WHATWG-conformant SSE parser fed with text chunks. */
  function sseParser(onEvent, onRetry, onActivity) {
    let buffer = "";
    let data = [];
    let event = "";
    let id = null;
    function line(text) {
      if (text === "") {
        if (data.length) onEvent(event || "message", data.join("\n"), id);
        data = [];
        event = "";
        return;
      }
      if (text.startsWith(":")) return; // comment: the heartbeat
      const colon = text.indexOf(":");
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && !value.includes("\u0000")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
    }
    return (chunk) => {
      onActivity();
      buffer += chunk;
      for (;;) {
        const at = buffer.search(/[\r\n]/);
        if (at === -1) break;
        if (buffer[at] === "\r" && at === buffer.length - 1) break; // maybe half of a CRLF
        const skip = buffer[at] === "\r" && buffer[at + 1] === "\n" ? 2 : 1;
        const text = buffer.slice(0, at);
        buffer = buffer.slice(at + skip);
        line(text);
      }
    };
  }

  let streamAbort = null;
  let wakeUp = null;
  let retryBase = Math.max(100, Number(config.retryMs) || 3000);

  function backoff(attempt) {
    const cap = Math.min(30000, retryBase * 16);
    const ceiling = Math.min(cap, retryBase * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
  }

  async function readStream(response, controller, onOpen) {
    const heartbeat = Number(config.heartbeatMs) || 15000;
    let watchdog = null;
    const alive = () => {
      clearTimeout(watchdog);
      // No byte for two heartbeats: the connection is dead without having said so.
      watchdog = setTimeout(() => controller.abort(), heartbeat * 2 + 5000);
    };
    const feed = sseParser(
      (name, raw) => {
        let data;
        try {
          data = JSON.parse(raw);
        } catch {
          return;
        }
        if (name === "ready") onOpen();
        handle(name, data);
        channel?.postMessage({ type: "event", name, data });
        if (name === "ready") setConnection("open");
      },
      (ms) => {
        retryBase = Math.max(100, ms);
      },
      alive,
    );
    alive();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(value);
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }

  async function streamLoop() {
    let attempt = 0;
    let first = true;
    while (state.leader && !state.stopped) {
      const controller = new AbortController();
      streamAbort = controller;
      setConnection(attempt === 0 && first ? "connecting" : "reconnecting");
      let status = 0;
      let retryAfter = 0;
      try {
        let url = config.streamUrl;
        const headers = { Accept: "text/event-stream" };
        if (first) {
          url += `${url.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(state.lastSeq)}`;
        } else {
          headers["Last-Event-ID"] = String(state.lastSeq);
        }
        first = false;
        const response = await fetch(url, {
          headers,
          credentials: "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        status = response.status;
        if (status === 200 && response.body) {
          // A stream that got as far as "ready" was healthy: the next failure starts the backoff afresh.
          await readStream(response, controller, () => {
            attempt = 0;
          });
        } else {
          retryAfter = Number(response.headers.get("Retry-After")) || 0;
          response.body?.cancel().catch(() => {});
        }
      } catch {
        // A network error, a proxy cut, or our own abort (stop, watchdog): retry below.
      }
      if (!state.leader || state.stopped) break;
      if (status === 401 || status === 403) {
        signedOut();
        return;
      }
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        console.warn(`sse-notify: the stream answered ${status}; not retrying`);
        setConnection("stopped");
        return;
      }
      setConnection("reconnecting");
      const delay = Math.max(backoff(attempt), retryAfter * 1000);
      attempt += 1;
      const wake = new AbortController();
      wakeUp = () => wake.abort();
      await sleep(delay, wake.signal);
      wakeUp = null;
    }
  }

  function signedOut() {
    state.stopped = true;
    setConnection("signed-out");
    channel?.postMessage({ type: "state", state: "signed-out" });
    releaseLeadership();
  }

  // ---------------------------------------------------------------- leader election

  let releaseLock = null;
  let lockWait = null;

  function lead() {
    state.leader = true;
    emit("connection", { state: state.connection, leader: true });
    streamLoop();
  }

  function releaseLeadership() {
    state.leader = false;
    streamAbort?.abort();
    wakeUp?.();
    releaseLock?.();
    releaseLock = null;
  }

  function elect() {
    if (!navigator.locks || !channel) {
      lead(); // no way to coordinate tabs: this one streams on its own
      return;
    }
    lockWait = new AbortController();
    navigator.locks
      .request(KEY, { signal: lockWait.signal }, () => {
        if (state.stopped) return undefined;
        return new Promise((resolve) => {
          releaseLock = resolve;
          lead();
        });
      })
      .catch(() => {}); // aborted while waiting
    // If another tab leads, it answers with its state.
    channel.postMessage({ type: "hello" });
  }

  channel?.addEventListener("message", ({ data: message }) => {
    if (!message || typeof message !== "object") return;
    if (message.type === "event" && !state.leader) {
      handle(message.name, message.data);
    } else if (message.type === "hello" && state.leader) {
      channel.postMessage({ type: "state", state: state.connection, unread: state.unread, lastSeq: state.lastSeq });
    } else if (message.type === "state" && !state.leader) {
      if (typeof message.unread === "number") setUnread(message.unread);
      if (typeof message.lastSeq === "number" && message.lastSeq > state.lastSeq) state.lastSeq = message.lastSeq;
      if (message.state === "signed-out") {
        state.stopped = true;
        lockWait?.abort();
      }
      setConnection(message.state);
    }
  });

  function stop() {
    state.stopped = true;
    lockWait?.abort();
    releaseLeadership();
    setConnection("stopped");
  }

  // A page put in the back/forward cache must not keep the stream (or the lock).
  window.addEventListener("pagehide", (event) => {
    if (event.persisted) stop();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && state.connection === "stopped") {
      state.stopped = false;
      elect();
    }
  });
  // Coming back online or to the tab: retry now rather than at the end of a long backoff.
  window.addEventListener("online", () => wakeUp?.());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") wakeUp?.();
  });

  // ---------------------------------------------------------------- marking read

  async function markRead(id, options = {}) {
    const url = config.markReadUrl.replace("{id}", encodeURIComponent(String(Number(id))));
    const result = await post(url, options);
    markInLists([id], true);
    dismissFor([id]);
    setUnread(result.unread);
    return result;
  }

  async function markAllRead() {
    const result = await post(config.markAllReadUrl);
    markInLists(null, true);
    dismissFor(null);
    setUnread(result.unread);
    return result;
  }

  function wirePage() {
    // The dropdown's "Mark all read" form works without JS; with JS it stays on the page.
    document.querySelectorAll("[data-sse-notify-menu] form[data-sse-notify-mark-all]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        markAllRead().catch(() => form.submit());
      });
    });
    // Opening an item from the list marks it read (keepalive: the page may be unloading).
    document.addEventListener("click", (event) => {
      const item = event.target instanceof Element ? event.target.closest(".sse-notify-item[data-id]") : null;
      if (!item || !item.classList.contains("is-unread")) return;
      markRead(item.dataset.id, { keepalive: true }).catch(() => {});
    });
    // The dropdown closes on a click outside it and on Escape (a bare <details> does neither).
    document.addEventListener("click", (event) => {
      document.querySelectorAll("details[data-sse-notify-menu][open]").forEach((menu) => {
        if (!menu.contains(event.target)) menu.open = false;
      });
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      document.querySelectorAll("details[data-sse-notify-menu][open]").forEach((menu) => {
        menu.open = false;
        menu.querySelector("summary")?.focus();
      });
    });
    document.querySelectorAll("[data-sse-notify-desktop]").forEach((button) => {
      button.addEventListener("click", () => {
        if (desktopEnabled()) disableDesktopNotifications();
        else enableDesktopNotifications();
      });
    });
    syncDesktopButtons();
    setUnread(state.unread);
    // Server-rendered times say when the page was made; say it relative to now.
    document.querySelectorAll(".sse-notify-item__time[datetime]").forEach((time) => {
      time.textContent = relativeTime(time.dateTime) || time.textContent;
    });
    region(); // the live region exists before anything is announced in it
  }

  // ---------------------------------------------------------------- public API

  window.sseNotify = Object.freeze({
    markRead: (id) => markRead(id),
    markAllRead,
    refresh,
    stop,
    safeLink,
    enableDesktopNotifications,
    disableDesktopNotifications,
    get desktopNotifications() {
      return desktopEnabled();
    },
    get unreadCount() {
      return state.unread;
    },
    get connection() {
      return state.connection;
    },
    get isLeader() {
      return state.leader;
    },
    get lastSeq() {
      return state.lastSeq;
    },
    config: Object.freeze({ ...config, csrfToken: undefined }),
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wirePage, { once: true });
  } else {
    wirePage();
  }
  elect();
})();
