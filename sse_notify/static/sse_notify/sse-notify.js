/*!
 * sse-notify: the browser client of the sse_notify Django app.
 * One file, no dependencies, no build step. Loaded by the {% sse_notify %} tag,
 * which renders its configuration as <script type="application/json" id="sse-notify-config">.
 *
 * The file has two halves. The first is plain logic with no DOM (the SSE parser,
 * backoff, de-duplication, the link rule, badge and title text, relative times):
 * in Node it is module.exports, so tests/js/ runs it with `node --test tests/js/`.
 * The second (start()) runs only in a page that has the config element.
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
 *   and stops on 401/403 (signed out). An answer that is not text/event-stream
 *   (e.g. a login page after a redirect) stops it too: it is never read as a stream.
 *   The first connect sends ?cursor=<the cursor the page was rendered at>, so
 *   nothing sent between render and connect is lost.
 * - Shows each notification once (de-duplicated by seq), as a toast, and keeps
 *   every [data-sse-notify-count] badge and [data-sse-notify-list] list live.
 *   User text is only ever set with textContent. Links: the server decides (the
 *   payload's `href`, see sse_notify/links.py); the client shows a link exactly
 *   when there is one, and never follows javascript:, data: or vbscript:.
 * - Toasts: newest nearest the corner, at most MAX_VISIBLE_TOASTS at once and the
 *   rest collapsed into "+N more" (opens the list); errors and warnings stay until
 *   dismissed. Keyboard: Alt+T moves focus to the newest toast (and back), Escape
 *   dismisses the focused toast, and focus returns to where it was.
 *
 * DOM events (dispatched on document, in every tab):
 *   sse-notify:notification  detail = the notification {id, seq, title, body, level, url,
 *                            href, data, created, actor, unread}. Cancelable: preventDefault()
 *                            suppresses the toast and desktop notification.
 *   sse-notify:read          detail = {ids: [..] | null (all), read: bool, unread: n}
 *   sse-notify:unread        detail = {unread: n} whenever the count changes
 *   sse-notify:reset         detail = {cursor, unread, reason}: the list was reloaded
 *   sse-notify:preferences   detail = {preferences: [{category, in_app, desktop, email, ...}]}
 *   sse-notify:connection    detail = {state, leader}; state is one of "connecting",
 *                            "open", "reconnecting", "signed-out", "stopped"
 *
 * JS API (window.sseNotify):
 *   markRead(id) / markUnread(id) -> Promise<{id, read, unread}>
 *   markGroupRead(id) -> Promise<{id, ids, read, unread}>   (every member of id's group)
 *   markAllRead() -> Promise<{marked, unread}>
 *   unreadCount, connection, isLeader, lastSeq      (read-only properties)
 *   refresh() -> Promise   reloads the unread count and the dropdown list
 *   enableDesktopNotifications() -> Promise<bool>   (call from a click: asks permission)
 *   disableDesktopNotifications(), desktopNotifications (bool)
 *   stop()                 closes this tab's part (stream or listener)
 *   linkOf(notification) -> string | null           the link shown for a notification
 *   safeLink(url) -> string | null                  the same rule for a bare server-made href
 */
(function (factory) {
  "use strict";
  const core = factory();
  if (typeof module === "object" && module && module.exports) module.exports = core;
  if (typeof window !== "undefined" && typeof document !== "undefined" && window.document === document) {
    core.start(window, document);
  }
})(function factory() {
  "use strict";

  // ================================================================ plain logic (no DOM)

  const LEVELS = ["info", "success", "warning", "error"];
  /** Levels whose toasts hide by themselves; the others stay until dismissed. */
  const TRANSIENT_LEVELS = ["info", "success"];
  /** Toasts shown at once; more collapse into "+N more". */
  const MAX_VISIBLE_TOASTS = 3;
  /** Above this the badge says "99+". */
  const BADGE_CAP = 99;
  /** Backoff never waits longer than this between reconnects. */
  const MAX_BACKOFF_MS = 30000;
  /** How often relative times ("2 minutes ago") are brought up to date. */
  const TIME_REFRESH_MS = 30000;
  /** Alt+T reaches the toasts (as in common toast libraries); Escape dismisses one. */
  const TOAST_KEY = { code: "KeyT", label: "Alt+T" };
  /** Never links, whatever the server sent (defence in depth; the server refuses them first). */
  const NEVER_PROTOCOLS = ["javascript:", "data:", "vbscript:"];

  /** English defaults; the tag renders translated ones as config.strings. */
  const DEFAULT_STRINGS = Object.freeze({
    toastRegion: "Notifications ({key})",
    dismiss: "Dismiss notification",
    open: "Open",
    markRead: "Mark read",
    markUnread: "Mark unread",
    from: "from {name}",
    more: "+{n} more",
    moreLabel: "{n} more notifications: open the list",
    justNow: "just now",
    newOne: "1 new notification: show",
    newMany: "{n} new notifications: show",
    unreadSummary: "{n} unread notifications",
    desktopOn: "Desktop alerts",
    desktopOff: "Turn off desktop alerts",
    groupNew: "{n} new",
    groupCount: "{n} in this group",
    showAll: "Show all",
    markGroupRead: "Mark all read",
  });

  /** "{n} more" with {n: 3} -> "3 more"; unknown placeholders stay as written. */
  function format(template, values = {}) {
    return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
      Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole,
    );
  }

  /**
   * A WHATWG-conformant Server-Sent Events parser, fed with decoded text chunks
   * of any size. Lines end with CRLF, LF or CR (a CRLF may be split between
   * chunks); one leading BOM is dropped; `id` values containing NUL are ignored;
   * `retry` is honoured only when it is all ASCII digits. Calls
   * onEvent(type, data, lastEventId) for each event with data.
   */
  function createParser(onEvent, onRetry = () => {}) {
    let buffer = "";
    let data = "";
    let hasData = false;
    let type = "";
    let lastEventId = "";
    let started = false;
    let skipLF = false;

    function line(text) {
      if (text === "") {
        if (hasData) onEvent(type || "message", data, lastEventId);
        data = "";
        hasData = false;
        type = "";
        return;
      }
      if (text.charCodeAt(0) === 0x3a) return; // ":" a comment: the heartbeat
      const colon = text.indexOf(":");
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? "" : text.slice(colon + 1);
      if (value.charCodeAt(0) === 0x20) value = value.slice(1);
      if (field === "data") {
        data = hasData ? `${data}\n${value}` : value;
        hasData = true;
      } else if (field === "event") {
        type = value;
      } else if (field === "id") {
        if (!value.includes("\u0000")) lastEventId = value;
      } else if (field === "retry") {
        if (/^[0-9]+$/.test(value)) onRetry(Number(value));
      }
    }

    function feed(chunk) {
      if (!chunk) return;
      let text = String(chunk);
      if (!started) {
        started = true;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      let start = 0;
      if (skipLF && text.charCodeAt(0) === 0x0a) start = 1;
      skipLF = false;
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c !== 0x0a && c !== 0x0d) continue;
        line(buffer + text.slice(start, i));
        buffer = "";
        if (c === 0x0d) {
          if (i + 1 < text.length) {
            if (text.charCodeAt(i + 1) === 0x0a) i += 1;
          } else {
            skipLF = true; // the LF of this CRLF may start the next chunk
          }
        }
        start = i + 1;
      }
      buffer += text.slice(start);
    }

    return {
      feed,
      get lastEventId() {
        return lastEventId;
      },
    };
  }

  /** Exponential backoff with "equal jitter": half fixed, half random; at most 16x base, 30 s. */
  function backoffDelay(attempt, base, random = Math.random) {
    const step = Math.max(100, Number(base) || 3000);
    const cap = Math.min(MAX_BACKOFF_MS, step * 16);
    const ceiling = Math.min(cap, step * 2 ** Math.max(0, attempt));
    return ceiling / 2 + random() * (ceiling / 2);
  }

  /** Retry-After (seconds or an HTTP date) in milliseconds from now; 0 if absent or unreadable. */
  function retryAfterMs(value, now = Date.now()) {
    if (value === null || value === undefined) return 0;
    const text = String(value).trim();
    if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
    const when = Date.parse(text);
    return Number.isNaN(when) ? 0 : Math.max(0, when - now);
  }

  /** Each seq once: accept() is true only for a seq above every one seen before. */
  function createSeqGate(initial = 0) {
    let last = Number(initial) || 0;
    return {
      accept(seq) {
        const value = Number(seq);
        if (!(value > last)) return false;
        last = value;
        return true;
      },
      /** Another tab got further: do not show what it already showed. */
      advance(seq) {
        const value = Number(seq);
        if (value > last) last = value;
      },
      /** The server said to start over from this cursor. */
      reset(cursor) {
        last = Number(cursor) || 0;
      },
      get last() {
        return last;
      },
    };
  }

  /**
   * The link to show for a notification: the server's `href` (sse_notify/links.py
   * decided it), resolved against the page, or null. Without an `href` there is
   * no link; javascript:, data: and vbscript: are refused even if sent.
   */
  function linkOf(notification, base) {
    const href = notification && typeof notification === "object" ? notification.href : null;
    if (typeof href !== "string" || !href.trim()) return null;
    let parsed;
    try {
      parsed = base ? new URL(href, base) : new URL(href);
    } catch {
      return null;
    }
    return NEVER_PROTOCOLS.includes(parsed.protocol) ? null : parsed.href;
  }

  /** What the badge shows: the count, or "99+". */
  function badgeText(count) {
    const value = Math.max(0, Math.floor(Number(count) || 0));
    return value > BADGE_CAP ? `${BADGE_CAP}+` : String(value);
  }

  /** "(3) Page" for 3 unread, "Page" for none; an earlier prefix of ours is replaced. */
  function titleWithCount(title, count) {
    const base = String(title).replace(/^\(\d+\+?\) /, "");
    const value = Math.max(0, Math.floor(Number(count) || 0));
    return value > 0 ? `(${badgeText(value)}) ${base}` : base;
  }

  /** "just now", "3 minutes ago", "yesterday", then a date; "" when it cannot say. */
  function relativeTime(iso, { now = Date.now(), locale, justNow = DEFAULT_STRINGS.justNow } = {}) {
    const seconds = (Date.parse(iso) - now) / 1000;
    if (Number.isNaN(seconds) || typeof Intl === "undefined" || !Intl.RelativeTimeFormat) return "";
    if (Math.abs(seconds) < 45) return justNow;
    let formatter;
    try {
      formatter = new Intl.RelativeTimeFormat(locale || undefined, { numeric: "auto" });
    } catch {
      formatter = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    }
    for (const [unit, size, limit] of [
      ["minute", 60, 60],
      ["hour", 3600, 24],
      ["day", 86400, 30],
    ]) {
      const value = Math.round(seconds / size);
      if (Math.abs(value) < limit) return formatter.format(value, unit);
    }
    return new Date(iso).toLocaleDateString(locale || undefined);
  }

  /** True for a Content-Type the client may read as a stream: text/event-stream only. */
  function isEventStream(contentType) {
    return /^text\/event-stream\s*(;|$)/i.test(String(contentType || "").trim());
  }

  function levelOf(n) {
    return LEVELS.includes(n && n.level) ? n.level : "info";
  }

  /** Whether a level's toast hides by itself after the timeout. */
  function hidesByItself(level) {
    return TRANSIENT_LEVELS.includes(level);
  }

  /**
   * Where one notification is shown in this tab: the single place that decides it.
   * `in_app`/`desktop` are the recipient's preferences for the category, fixed at
   * send time. In-app off: listed (and counted as the server counts it), but no
   * toast and no desktop popup.
   */
  /**
   * Notifications of one category with the same group key show as one entry (list and
   * toasts): "" when `n` has no group, else a key naming category and group.
   */
  function groupKeyOf(n) {
    return n && n.group ? `${n.category || "default"}:${n.group}` : "";
  }

  function channelsFor(n) {
    const inApp = !(n && n.in_app === false);
    return { list: true, badge: true, toast: inApp, desktop: inApp && !(n && n.desktop === false) };
  }

  // ================================================================ the page

  function start(window, document) {
    const configNode = document.getElementById("sse-notify-config");
    if (!configNode || window.sseNotify) return;
    const config = JSON.parse(configNode.textContent);
    const strings = { ...DEFAULT_STRINGS, ...(config.strings || {}) };
    // The language the server rendered the strings in (a page's own lang may differ).
    const locale = config.locale || document.documentElement.lang || undefined;

    const DESKTOP_KEY = "sse-notify:desktop";
    const KEY = `sse-notify:${config.user}`; // lock and channel name: one per signed-in user

    const seqs = createSeqGate(config.cursor);
    const state = {
      unread: Number(config.unread) || 0,
      connection: "connecting",
      leader: false,
      stopped: false,
    };
    const channel = "BroadcastChannel" in window ? new window.BroadcastChannel(KEY) : null;

    // ---------------------------------------------------------------- helpers

    function emit(name, detail, cancelable = false) {
      const event = new window.CustomEvent(`sse-notify:${name}`, { detail, cancelable });
      return document.dispatchEvent(event);
    }

    function el(tag, className, text) {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
      return node;
    }

    function link(n) {
      return linkOf(n, window.location.href);
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

    function timeText(iso) {
      return relativeTime(iso, { locale, justNow: strings.justNow });
    }

    /** Relative times are rewritten on a timer, so "just now" does not stay "just now". */
    function refreshTimes() {
      document.querySelectorAll(".sse-notify-item__time[datetime]").forEach((time) => {
        const text = timeText(time.dateTime);
        if (text && time.textContent !== text) time.textContent = text;
      });
    }

    // ---------------------------------------------------------------- badge, title and list

    function setUnread(count) {
      const value = Math.max(0, Number(count) || 0);
      document.querySelectorAll("[data-sse-notify-count]").forEach((node) => {
        node.textContent = badgeText(value);
        node.dataset.count = String(value);
      });
      document.querySelectorAll("[data-sse-notify-unread]").forEach((node) => {
        node.textContent = String(value);
        node.dataset.count = String(value);
      });
      // Nothing to mark: no "Mark all read".
      document.querySelectorAll("form[data-sse-notify-mark-all]").forEach((form) => {
        form.hidden = value === 0;
      });
      if (config.tabTitle) {
        const title = titleWithCount(document.title, value);
        if (title !== document.title) document.title = title;
      }
      if (value === state.unread) return;
      state.unread = value;
      emit("unread", { unread: value });
    }

    /** The per-item read/unread button (a no-JS form underneath), set for `read`. */
    function setToggle(button, read, grouped = button.dataset.grouped === "1") {
      // A group's entry reads the whole group; reading it back is per item (the inbox).
      button.dataset.grouped = grouped ? "1" : "";
      button.value = read ? "unread" : grouped ? "read_group" : "read";
      const label = read ? strings.markUnread : grouped ? strings.markGroupRead : strings.markRead;
      button.setAttribute("aria-label", label);
      button.title = label;
    }

    function itemAction(n) {
      const form = el("form", "sse-notify-item__action");
      form.method = "post";
      form.action = config.inboxUrl;
      form.dataset.sseNotifyItemAction = "";
      for (const [name, value] of [
        ["csrfmiddlewaretoken", csrfToken()],
        ["id", String(n.id)],
        ["next", window.location.pathname],
      ]) {
        const input = el("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.append(input);
      }
      const button = el("button", "sse-notify-item__toggle");
      button.type = "submit";
      button.name = "action";
      const icon = el("span", "sse-notify-item__icon");
      icon.setAttribute("aria-hidden", "true");
      button.append(icon);
      setToggle(button, Boolean(n.read) && !n.group_unread, (Number(n.group_count) || 1) > 1);
      form.append(button);
      return form;
    }

    /** A group's members under its entry (newest first), as the server renders them. */
    function buildMembers(members) {
      const details = el("details", "sse-notify-item__group");
      details.append(el("summary", "", strings.showAll));
      const ul = el("ul");
      for (const member of members) {
        const li = el("li", member.read ? "" : "is-unread");
        li.dataset.id = String(member.id);
        const href = link(member);
        const title = el(href ? "a" : "span", "", member.title);
        if (href) title.href = href;
        const time = el("time", "sse-notify-item__time", timeText(member.created));
        if (member.created) time.dateTime = member.created;
        li.append(title, " ", time);
        ul.append(li);
      }
      details.append(ul);
      return details;
    }

    function buildItem(n) {
      const unread = !n.read || Number(n.group_unread) > 0;
      const item = el("li", `sse-notify-item sse-notify-level-${levelOf(n)}${unread ? " is-unread" : ""}`);
      item.dataset.id = String(n.id);
      item.dataset.seq = String(n.seq);
      const key = groupKeyOf(n);
      const count = Number(n.group_count) || 1;
      if (key) {
        item.dataset.group = key;
        item.dataset.count = String(count);
      }
      if (count > 1) item.classList.add("is-group");
      const main = el("div", "sse-notify-item__main");
      const href = link(n);
      const title = el(href ? "a" : "span", "sse-notify-item__title", n.title);
      if (href) title.href = href;
      main.append(title);
      if (count > 1) {
        const pill = el("span", "sse-notify-item__count", String(count));
        pill.dataset.sseNotifyGroupCount = "";
        pill.setAttribute("aria-label", format(strings.groupCount, { n: count }));
        main.append(pill);
      }
      if (n.body) {
        const body = n.body.length > 140 ? `${n.body.slice(0, 139)}…` : n.body;
        main.append(el("span", "sse-notify-item__body", body));
      }
      const time = el("time", "sse-notify-item__time", timeText(n.created));
      if (n.created) time.dateTime = n.created;
      main.append(time);
      if (count > 1 && Array.isArray(n.items) && n.items.length) main.append(buildMembers(n.items));
      item.append(main, itemAction(n));
      return item;
    }

    /** The members an entry already lists (its expansion, or the entry itself). */
    function membersOf(item) {
      const listed = [...item.querySelectorAll(".sse-notify-item__group li[data-id]")];
      if (listed.length) {
        return listed.map((li) => ({
          id: li.dataset.id,
          title: li.querySelector("a, span")?.textContent || "",
          url: li.querySelector("a")?.getAttribute("href") || "",
          created: li.querySelector("time")?.dateTime || "",
          read: !li.classList.contains("is-unread"),
        }));
      }
      const title = item.querySelector(".sse-notify-item__title");
      return [
        {
          id: item.dataset.id,
          title: title?.textContent || "",
          url: title?.getAttribute("href") || "",
          created: item.querySelector(".sse-notify-item__time")?.dateTime || "",
          read: !item.classList.contains("is-unread"),
        },
      ];
    }

    function lists() {
      return document.querySelectorAll("[data-sse-notify-list]");
    }

    function updateEmpty(list) {
      const empty = list.querySelector("[data-sse-notify-empty]");
      if (empty) empty.hidden = Boolean(list.querySelector(".sse-notify-item"));
    }

    function addToLists(n) {
      const key = groupKeyOf(n);
      lists().forEach((list) => {
        if (list.querySelector(`.sse-notify-item[data-id="${Number(n.id)}"]`)) return;
        const entry = key
          ? [...list.querySelectorAll(".sse-notify-item[data-group]")].find((item) => item.dataset.group === key)
          : null;
        if (entry) {
          // Same category and group: one entry, now about the newest, counting one more.
          const members = [n, ...membersOf(entry)];
          const count = (Number(entry.dataset.count) || 1) + 1;
          entry.remove();
          list.prepend(buildItem({ ...n, group_count: count, group_unread: 1, items: members.slice(0, 20) }));
          return;
        }
        list.prepend(buildItem(n));
        const limit = Number(list.dataset.limit) || 5;
        const items = list.querySelectorAll(".sse-notify-item");
        for (let i = limit; i < items.length; i++) items[i].remove();
        updateEmpty(list);
      });
    }

    function markInLists(ids, read) {
      const wanted = ids ? new Set(ids.map(String)) : null;
      const rows = ".sse-notify-item[data-id], .sse-notify-inbox__item[data-id], .sse-notify-item__group li[data-id]";
      document.querySelectorAll(rows).forEach((item) => {
        if (wanted && !wanted.has(item.dataset.id)) return;
        item.classList.toggle("is-unread", !read);
        const toggle = item.querySelector(".sse-notify-item__toggle");
        if (toggle) {
          setToggle(toggle, read);
          return;
        }
        // The inbox's no-JS form offers the opposite action.
        const button = item.querySelector("button[name=action]");
        if (button) {
          button.value = read ? "unread" : "read";
          button.textContent = read ? strings.markUnread : strings.markRead;
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
      banner.textContent = inboxNew === 1 ? strings.newOne : format(strings.newMany, { n: inboxNew });
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

    // ---------------------------------------------------------------- the dropdown

    function menus() {
      return document.querySelectorAll("details[data-sse-notify-menu]");
    }

    /**
     * Keeps an open dropdown inside the viewport wherever the bell is. On narrow
     * screens the CSS makes it a full-width sheet below the bell; otherwise it
     * hangs from the bell's right edge and is shifted back into view if needed.
     */
    function placeMenu(menu) {
      const panel = menu.querySelector(".sse-notify-menu__panel");
      const summary = menu.querySelector("summary");
      if (!panel || !summary || !menu.open) return;
      const viewport = document.documentElement.clientWidth || window.innerWidth;
      const bell = summary.getBoundingClientRect();
      menu.style.setProperty("--sse-notify-sheet-top", `${Math.round(Math.max(0, bell.bottom) + 8)}px`);
      menu.setAttribute("data-sse-notify-placed", "");
      panel.style.setProperty("--sse-notify-shift", "0px");
      const box = panel.getBoundingClientRect();
      const margin = Math.min(8, Math.max(0, (viewport - box.width) / 2));
      let shift = 0;
      if (box.right > viewport - margin) shift = viewport - margin - box.right;
      if (box.left + shift < margin) shift = margin - box.left;
      panel.style.setProperty("--sse-notify-shift", `${Math.round(shift)}px`);
    }

    function openMenu(menu) {
      menu.open = true;
      placeMenu(menu);
      (menu.querySelector(".sse-notify-item__title[href]") || menu.querySelector("summary"))?.focus();
    }

    // ---------------------------------------------------------------- toasts

    let toastRegion = null;
    let toastStack = null;
    let moreChip = null;
    const collapsed = new Set(); // ids pushed out of view into "+N more"
    let returnFocus = null; // where focus was before it entered the toasts

    function stack() {
      if (!toastStack || !toastStack.isConnected) {
        toastRegion = el("section", "sse-notify-toaster");
        toastRegion.setAttribute("aria-label", format(strings.toastRegion, { key: TOAST_KEY.label }));
        if (locale) toastRegion.lang = locale;
        toastRegion.setAttribute("aria-keyshortcuts", TOAST_KEY.label);
        toastStack = el("div", "sse-notify-toasts");
        toastStack.setAttribute("role", "status");
        toastStack.setAttribute("aria-live", "polite");
        toastStack.setAttribute("aria-atomic", "false");
        toastRegion.append(toastStack);
        toastRegion.addEventListener("focusin", (event) => {
          const from = event.relatedTarget;
          if (from instanceof window.Element && !toastRegion.contains(from)) returnFocus = from;
        });
        toastRegion.addEventListener("keydown", (event) => {
          if (event.key !== "Escape") return;
          const toast = event.target instanceof window.Element ? event.target.closest(".sse-notify-toast") : null;
          if (!toast) return;
          event.preventDefault();
          event.stopPropagation();
          dismiss(toast);
        });
        document.body.append(toastRegion);
      }
      return toastStack;
    }

    function visibleToasts() {
      return [...stack().querySelectorAll(".sse-notify-toast:not(.is-leaving)")];
    }

    /** Focus goes back to where it was before the toasts (or to the next toast). */
    function restoreFocus(leaving) {
      const next = visibleToasts().find((t) => t !== leaving);
      if (returnFocus && returnFocus.isConnected) {
        returnFocus.focus();
      } else if (next) {
        next.querySelector(".sse-notify-toast__main")?.focus();
      }
    }

    function dismiss(toast) {
      if (!toast || toast.dataset.leaving) return;
      const hadFocus = toast.contains(document.activeElement);
      toast.dataset.leaving = "1";
      toast._timer?.stop();
      toast.classList.add("is-leaving");
      if (hadFocus) restoreFocus(toast);
      const reduce = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches;
      setTimeout(() => toast.remove(), reduce ? 0 : 200);
    }

    function updateMore() {
      if (!collapsed.size) {
        if (moreChip?.contains(document.activeElement)) restoreFocus(null);
        moreChip?.remove();
        moreChip = null;
        return;
      }
      if (!moreChip || !moreChip.isConnected) {
        moreChip = el("button", "sse-notify-toasts__more");
        moreChip.type = "button";
        moreChip.addEventListener("click", (event) => {
          event.stopPropagation(); // the document's click-outside would close the list at once
          collapsed.clear();
          updateMore();
          const menu = menus()[0];
          if (menu) openMenu(menu);
          else window.location.assign(config.inboxUrl);
        });
        stack().append(moreChip); // last in the DOM: furthest from the corner
      }
      moreChip.textContent = format(strings.more, { n: collapsed.size });
      moreChip.setAttribute("aria-label", format(strings.moreLabel, { n: collapsed.size }));
    }

    function dismissFor(ids) {
      const wanted = ids ? new Set(ids.map(String)) : null;
      stack()
        .querySelectorAll(".sse-notify-toast")
        .forEach((toast) => {
          const ids = (toast.dataset.ids || toast.dataset.id || "").split(",");
          if (!wanted || ids.some((id) => wanted.has(id))) dismiss(toast);
        });
      if (wanted) wanted.forEach((id) => collapsed.delete(id));
      else collapsed.clear();
      updateMore();
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
      const href = link(n);
      // A toast standing for several of a group reads them all.
      const read = (Number(n.group_count) || 1) > 1 ? markGroupRead : markRead;
      const marking = read(n.id, { keepalive: Boolean(href) }).catch(() => null);
      if (href) {
        // keepalive lets the POST finish while the page unloads.
        window.location.assign(href);
      }
      return marking;
    }

    function showToast(n) {
      const level = levelOf(n);
      const toast = el("div", `sse-notify-toast sse-notify-level-${level}`);
      toast.dataset.id = String(n.id);
      const href = link(n);
      // One toast per group: a newer one of the same group replaces it and counts them.
      const key = groupKeyOf(n);
      if (key) {
        toast.dataset.group = key;
        const earlier = visibleToasts().find((t) => t.dataset.group === key);
        const count = earlier ? (Number(earlier.dataset.count) || 1) + 1 : 1;
        toast.dataset.count = String(count);
        toast.dataset.ids = [n.id, ...(earlier?.dataset.ids || earlier?.dataset.id || "").split(",")]
          .filter(Boolean)
          .join(",");
        if (earlier) {
          const hadFocus = earlier.contains(document.activeElement);
          earlier._timer?.stop();
          earlier.remove();
          n = { ...n, group_count: count };
          if (hadFocus) queueMicrotask(() => toast.querySelector(".sse-notify-toast__main")?.focus());
        }
      }

      const main = el("button", "sse-notify-toast__main");
      main.type = "button";
      main.append(el("span", "sse-notify-toast__icon"));
      const text = el("span", "sse-notify-toast__text");
      const title = el("strong", "sse-notify-toast__title", n.title);
      title.title = n.title; // clamped to two lines: the whole title on hover
      if ((Number(n.group_count) || 1) > 1) {
        text.append(el("span", "sse-notify-toast__count", format(strings.groupNew, { n: n.group_count })));
      }
      text.append(title);
      if (n.body) text.append(el("span", "sse-notify-toast__body", n.body));
      const action = (Number(n.group_count) || 1) > 1 ? strings.markGroupRead : strings.markRead;
      const meta = [n.actor ? format(strings.from, { name: n.actor }) : "", href ? strings.open : action];
      text.append(el("span", "sse-notify-toast__meta", meta.filter(Boolean).join(" · ")));
      main.append(text);
      main.addEventListener("click", () => {
        dismiss(toast);
        open(n);
      });

      const close = el("button", "sse-notify-toast__close", "×");
      close.type = "button";
      close.setAttribute("aria-label", strings.dismiss);
      close.addEventListener("click", () => dismiss(toast));

      toast.append(main, close);
      const timeout = hidesByItself(level) ? Number(config.toastTimeout) || 0 : 0;
      if (timeout > 0) {
        const bar = el("span", "sse-notify-toast__progress");
        bar.style.animationDuration = `${timeout}ms`;
        toast.append(bar);
      }
      // First in the DOM (read first, reached first by Alt+T); the stack is laid out
      // in reverse, so the newest sits nearest the corner.
      stack().prepend(toast);
      // Past MAX_VISIBLE_TOASTS the oldest collapse into "+N more": none is silently lost.
      visibleToasts()
        .slice(MAX_VISIBLE_TOASTS)
        .forEach((old) => {
          collapsed.add(old.dataset.id);
          if (old.contains(document.activeElement)) toast.querySelector(".sse-notify-toast__main")?.focus();
          old._timer?.stop();
          old.remove();
        });
      updateMore();
      if (timeout > 0) toast._timer = autoHide(toast, timeout);
    }

    /** Alt+T: to the newest toast, and from the toasts back to where focus was. */
    function toastHotkey(event) {
      if (!event.altKey || event.ctrlKey || event.metaKey || event.code !== TOAST_KEY.code) return;
      const region = toastRegion;
      if (region && region.contains(document.activeElement)) {
        event.preventDefault();
        restoreFocus(null);
        return;
      }
      const target = visibleToasts()[0]?.querySelector(".sse-notify-toast__main") || moreChip;
      if (!target) return;
      event.preventDefault();
      const active = document.activeElement;
      returnFocus = active && active !== document.body ? active : null;
      target.focus();
    }

    // ---------------------------------------------------------------- desktop notifications

    function desktopEnabled() {
      try {
        return (
          "Notification" in window &&
          window.Notification.permission === "granted" &&
          window.localStorage.getItem(DESKTOP_KEY) === "on"
        );
      } catch {
        return false;
      }
    }

    async function enableDesktopNotifications() {
      if (!("Notification" in window)) return false;
      const permission =
        window.Notification.permission === "granted" ? "granted" : await window.Notification.requestPermission();
      if (permission !== "granted") return false;
      window.localStorage.setItem(DESKTOP_KEY, "on");
      syncDesktopButtons();
      return true;
    }

    function disableDesktopNotifications() {
      try {
        window.localStorage.removeItem(DESKTOP_KEY);
      } catch {
        /* storage disabled: nothing was stored */
      }
      syncDesktopButtons();
    }

    function syncDesktopButtons() {
      document.querySelectorAll("[data-sse-notify-desktop]").forEach((button) => {
        button.hidden = !("Notification" in window) || window.Notification.permission === "denied";
        button.textContent = desktopEnabled() ? strings.desktopOff : strings.desktopOn;
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
          ? new window.Notification(format(strings.unreadSummary, { n: state.unread }), { tag: "sse-notify-summary" })
          : new window.Notification(n.title, { body: n.body || "", tag: `sse-notify-${n.id}` });
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
          if (!seqs.accept(data.seq)) return; // seen already (replay after a reconnect or hand-over)
          const show = channelsFor(data);
          if (show.badge) setUnread(data.unread);
          if (show.list) addToLists(data);
          noteInInbox();
          if (emit("notification", data, true)) {
            if (show.toast) showToast(data);
            if (show.desktop) showDesktop(data);
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
          seqs.reset(data.cursor);
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
      if (state.leader) channel?.postMessage({ type: "state", state: value, unread: state.unread, lastSeq: seqs.last });
    }

    // ---------------------------------------------------------------- the stream (leader only)

    let streamAbort = null;
    let wakeUp = null;
    let retryBase = Math.max(100, Number(config.retryMs) || 3000);

    async function readStream(response, controller, onOpen) {
      const heartbeat = Number(config.heartbeatMs) || 15000;
      let watchdog = null;
      const alive = () => {
        clearTimeout(watchdog);
        // No byte for two heartbeats: the connection is dead without having said so.
        watchdog = setTimeout(() => controller.abort(), heartbeat * 2 + 5000);
      };
      const parser = createParser(
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
      );
      alive();
      const reader = response.body.pipeThrough(new window.TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          alive();
          parser.feed(value);
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
        let notAStream = "";
        try {
          let url = config.streamUrl;
          const headers = { Accept: "text/event-stream" };
          if (first) {
            url += `${url.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(seqs.last)}`;
          } else {
            headers["Last-Event-ID"] = String(seqs.last);
          }
          first = false;
          const response = await fetch(url, {
            headers,
            credentials: "same-origin",
            cache: "no-store",
            signal: controller.signal,
          });
          status = response.status;
          const type = response.headers.get("Content-Type");
          if (status === 200 && response.body && isEventStream(type)) {
            // A stream that got as far as "ready" was healthy: the next failure starts the backoff afresh.
            await readStream(response, controller, () => {
              attempt = 0;
            });
          } else {
            if (status === 200) notAStream = `${type || "no Content-Type"}${response.redirected ? `, after a redirect to ${response.url}` : ""}`;
            retryAfter = retryAfterMs(response.headers.get("Retry-After"));
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
        if (notAStream) {
          // A login page, a proxy's or framework's HTML: reading it as events would
          // reconnect forever. Stop and say why.
          console.warn(
            `sse-notify: ${config.streamUrl} answered 200 with ${notAStream}, not text/event-stream; ` +
              "not retrying. If a login middleware redirected it, exempt the stream (login_not_required).",
          );
          // The lock stays held: the other tabs would only get the same answer.
          setConnection("stopped");
          return;
        }
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          console.warn(`sse-notify: the stream answered ${status}; not retrying`);
          setConnection("stopped");
          return;
        }
        setConnection("reconnecting");
        const delay = Math.max(backoffDelay(attempt, retryBase), retryAfter);
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
      if (!window.navigator.locks || !channel) {
        lead(); // no way to coordinate tabs: this one streams on its own
        return;
      }
      lockWait = new AbortController();
      window.navigator.locks
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
        channel.postMessage({ type: "state", state: state.connection, unread: state.unread, lastSeq: seqs.last });
      } else if (message.type === "state" && !state.leader) {
        if (typeof message.unread === "number") setUnread(message.unread);
        if (typeof message.lastSeq === "number") seqs.advance(message.lastSeq);
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
      if (document.visibilityState === "visible") {
        wakeUp?.();
        refreshTimes();
      }
    });

    // ---------------------------------------------------------------- marking read / unread

    async function markRead(id, options = {}) {
      const url = config.markReadUrl.replace("{id}", encodeURIComponent(String(Number(id))));
      const result = await post(url, options);
      markInLists([id], true);
      dismissFor([id]);
      setUnread(result.unread);
      return result;
    }

    /** Read every notification of the group `id` belongs to (a group's entry or toast). */
    async function markGroupRead(id, options = {}) {
      const url = config.markGroupReadUrl.replace("{id}", encodeURIComponent(String(Number(id))));
      const result = await post(url, options);
      const ids = result.ids || [id];
      markInLists(ids, true);
      dismissFor(ids);
      setUnread(result.unread);
      return result;
    }

    async function markUnread(id) {
      const url = config.markUnreadUrl.replace("{id}", encodeURIComponent(String(Number(id))));
      const result = await post(url);
      markInLists([id], false);
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

    /** The no-JS form, submitted as its button would have (form.submit() drops the button's value). */
    function submitWithout(form, name, value) {
      const input = el("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
      window.HTMLFormElement.prototype.submit.call(form);
    }

    function wirePage() {
      // The dropdown's "Mark all read" form works without JS; with JS it stays on the page.
      document.querySelectorAll("[data-sse-notify-menu] form[data-sse-notify-mark-all]").forEach((form) => {
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          markAllRead().catch(() => submitWithout(form, "all", "1"));
        });
      });
      // Per-item "Mark read" / "Mark unread" in the list: in place, no reload.
      document.addEventListener("submit", (event) => {
        const form = event.target;
        if (!(form instanceof window.HTMLFormElement) || !form.matches("[data-sse-notify-item-action]")) return;
        event.preventDefault();
        const id = form.elements.namedItem("id")?.value;
        const action = event.submitter?.value || form.querySelector(".sse-notify-item__toggle")?.value || "read";
        const mark = action === "unread" ? markUnread : action === "read_group" ? markGroupRead : markRead;
        mark(id).catch(() => submitWithout(form, "action", action));
      });
      // Following an item's link from the list marks it read (keepalive: the page may be unloading).
      document.addEventListener("click", (event) => {
        const anchor = event.target instanceof window.Element ? event.target.closest(".sse-notify-item a[href]") : null;
        const item = anchor?.closest(".sse-notify-item[data-id]");
        if (!item || !item.classList.contains("is-unread")) return;
        const member = anchor.closest(".sse-notify-item__group li[data-id]");
        if (member) markRead(member.dataset.id, { keepalive: true }).catch(() => {});
        else if ((Number(item.dataset.count) || 1) > 1) markGroupRead(item.dataset.id, { keepalive: true }).catch(() => {});
        else markRead(item.dataset.id, { keepalive: true }).catch(() => {});
      });
      // The dropdown closes on a click outside it, on Escape, and when focus leaves it
      // (Tab past its last item); a bare <details> does none of these.
      document.addEventListener("click", (event) => {
        menus().forEach((menu) => {
          if (menu.open && !menu.contains(event.target)) menu.open = false;
        });
      });
      document.addEventListener("focusin", (event) => {
        menus().forEach((menu) => {
          if (menu.open && event.target instanceof window.Node && !menu.contains(event.target)) menu.open = false;
        });
      });
      document.addEventListener("keydown", (event) => {
        toastHotkey(event);
        if (event.key !== "Escape") return;
        menus().forEach((menu) => {
          if (!menu.open) return;
          menu.open = false;
          menu.querySelector("summary")?.focus();
        });
      });
      menus().forEach((menu) => {
        menu.addEventListener("toggle", () => {
          if (!menu.open) return;
          refreshTimes();
          placeMenu(menu);
        });
      });
      window.addEventListener("resize", () => menus().forEach(placeMenu));
      document.querySelectorAll("[data-sse-notify-desktop]").forEach((button) => {
        button.addEventListener("click", () => {
          if (desktopEnabled()) disableDesktopNotifications();
          else enableDesktopNotifications();
        });
      });
      syncDesktopButtons();
      setUnread(state.unread);
      // Server-rendered times say when the page was made; say it relative to now, and keep it true.
      refreshTimes();
      setInterval(refreshTimes, TIME_REFRESH_MS);
      stack(); // the live region exists before anything is announced in it
    }

    // ---------------------------------------------------------------- public API

    window.sseNotify = Object.freeze({
      markRead: (id) => markRead(id),
      markUnread: (id) => markUnread(id),
      markGroupRead: (id) => markGroupRead(id),
      markAllRead,
      refresh,
      stop,
      linkOf: (n) => link(n),
      safeLink: (href) => link({ href }),
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
        return seqs.last;
      },
      config: Object.freeze({ ...config, csrfToken: undefined }),
    });

    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", wirePage, { once: true });
    } else {
      wirePage();
    }
    elect();
  }

  return Object.freeze({
    DEFAULT_STRINGS,
    MAX_VISIBLE_TOASTS,
    BADGE_CAP,
    MAX_BACKOFF_MS,
    TOAST_KEY,
    format,
    createParser,
    backoffDelay,
    retryAfterMs,
    createSeqGate,
    linkOf,
    badgeText,
    titleWithCount,
    relativeTime,
    isEventStream,
    levelOf,
    hidesByItself,
    channelsFor,
    groupKeyOf,
    start,
  });
});
