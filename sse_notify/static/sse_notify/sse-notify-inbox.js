/*!
 * sse-notify inbox: the inbox page (sse_notify/inbox.html) without reloads.
 * One file, no dependencies, no build step; loaded only by the inbox template.
 *
 * The page works without it: every button is a form that POSTs to the inbox view
 * and is redirected back. With it, the same POSTs are sent with fetch() asking for
 * JSON ({ids, read, unread}) and the rows change in place: no reload, no jump to
 * the top, focus stays on the button pressed. If a request fails, the form is
 * submitted the plain way, so the user sees what the server says.
 *
 * Bulk selection: "Select all" (shown only with JS) and one checkbox per row feed
 * the toolbar's "Mark selected read/unread", which also work without JS.
 *
 * Reads from other tabs and devices arrive as the client's `sse-notify:read` DOM
 * event (sse-notify.js) and are applied the same way. Every user-visible string
 * comes from data-label-* attributes the template renders, translated.
 */
(() => {
  "use strict";

  function init() {
    const inbox = document.querySelector("[data-sse-notify-inbox]");
    if (!inbox) return;
    const labels = inbox.dataset;
    const status = inbox.querySelector("[data-sse-notify-inbox-status]");
    const bulk = inbox.querySelector("form[data-sse-notify-bulk]");
    const selectAll = inbox.querySelector("[data-sse-notify-select-all]");
    const selected = inbox.querySelector("[data-sse-notify-selected]");
    const markAll = inbox.querySelector("form[data-sse-notify-mark-all]");

    const rows = () => inbox.querySelectorAll(".sse-notify-inbox__item[data-id]");
    const checks = () => inbox.querySelectorAll("input.sse-notify-inbox__check");

    function announce(text) {
      if (!status) return;
      // Emptied first so the same message twice in a row is announced twice.
      status.textContent = "";
      window.setTimeout(() => {
        status.textContent = text;
      }, 50);
    }

    function setRow(row, read) {
      row.classList.toggle("is-unread", !read);
      const mark = row.querySelector("[data-sse-notify-unread-mark]");
      if (mark) mark.hidden = read;
      const button = row.querySelector(".sse-notify-inbox__action button[name=action]");
      if (button) {
        button.value = read ? "unread" : "read";
        button.textContent = read ? labels.labelUnread : labels.labelRead;
      }
    }

    function setUnread(count) {
      if (typeof count !== "number") return;
      inbox.querySelectorAll("[data-sse-notify-unread]").forEach((node) => {
        node.textContent = String(count);
      });
      if (markAll) {
        const hide = count === 0;
        if (hide && markAll.contains(document.activeElement)) {
          // The focused button is going away: keep the user's place on the page.
          const heading = inbox.querySelector("h1");
          heading?.setAttribute("tabindex", "-1");
          heading?.focus();
        }
        markAll.hidden = hide;
      }
    }

    /** {ids: [..] | null (all), read, unread}: from our own POST or the stream's read event. */
    function apply(change) {
      const wanted = change.ids ? new Set(change.ids.map(String)) : null;
      rows().forEach((row) => {
        if (!wanted || wanted.has(row.dataset.id)) setRow(row, Boolean(change.read));
      });
      setUnread(change.unread);
    }

    function syncSelection() {
      const all = [...checks()];
      const count = all.filter((box) => box.checked).length;
      if (selectAll) {
        selectAll.checked = count > 0 && count === all.length;
        selectAll.indeterminate = count > 0 && count < all.length;
      }
      if (selected) {
        selected.hidden = count === 0;
        selected.textContent = (labels.labelSelected || "{n}").replace("{n}", String(count));
      }
      bulk?.querySelectorAll("button[name=action]").forEach((button) => {
        button.disabled = count === 0;
      });
    }

    async function send(form, submitter) {
      const body = new FormData(form, submitter);
      // getAttribute: form.action would be the button named "action".
      const response = await fetch(form.getAttribute("action") || window.location.href, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" },
      });
      if (!response.ok) throw new Error(`sse-notify inbox: POST answered ${response.status}`);
      return response.json();
    }

    inbox.addEventListener("submit", (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || form.dataset.sseNotifyPlain) return;
      event.preventDefault();
      const submitter = event.submitter instanceof HTMLElement ? event.submitter : null;
      send(form, submitter)
        .then((change) => {
          apply(change);
          announce(change.read ? labels.labelMarkedRead : labels.labelMarkedUnread);
        })
        .catch(() => {
          announce(labels.labelFailed);
          form.dataset.sseNotifyPlain = "1"; // the plain POST, and the server's answer
          form.requestSubmit(submitter);
        });
    });

    if (bulk) {
      inbox.querySelectorAll("[data-sse-notify-select-all-label]").forEach((label) => {
        label.hidden = false;
      });
      selectAll?.addEventListener("change", () => {
        checks().forEach((box) => {
          box.checked = selectAll.checked;
        });
        syncSelection();
      });
      inbox.addEventListener("change", (event) => {
        if (event.target instanceof HTMLInputElement && event.target.matches(".sse-notify-inbox__check")) syncSelection();
      });
      // Shift+click selects (or clears) the whole range from the last box clicked, as in GitHub's inbox.
      let anchor = null;
      inbox.addEventListener("click", (event) => {
        const box = event.target;
        if (!(box instanceof HTMLInputElement) || !box.matches(".sse-notify-inbox__check")) return;
        const all = [...checks()];
        if (event.shiftKey && anchor && all.includes(anchor)) {
          const [from, to] = [all.indexOf(anchor), all.indexOf(box)].sort((x, y) => x - y);
          all.slice(from, to + 1).forEach((other) => {
            other.checked = box.checked;
          });
          syncSelection();
        }
        anchor = box;
      });
      syncSelection();
    }

    document.addEventListener("sse-notify:read", (event) => apply(event.detail || {}));
    // A new arrival (or any count change) brings "Mark all read" back when it is needed.
    document.addEventListener("sse-notify:unread", (event) => setUnread(event.detail?.unread));

    // Times as "3 minutes ago" in the page's language, kept current (the server's text
    // says when the page was made). The full date stays in the title attribute.
    const format = "RelativeTimeFormat" in Intl ? new Intl.RelativeTimeFormat(inbox.lang || undefined, { numeric: "auto" }) : null;
    function relative(iso) {
      const seconds = (Date.parse(iso) - Date.now()) / 1000;
      if (!format || Number.isNaN(seconds)) return null;
      if (Math.abs(seconds) < 45) return labels.labelJustNow || format.format(0, "second");
      for (const [unit, size, below] of [["minute", 60, 60], ["hour", 3600, 24], ["day", 86400, 30]]) {
        const value = Math.round(seconds / size);
        if (Math.abs(value) < below) return format.format(value, unit);
      }
      return null; // older: the server's text (a month or more) is as good
    }
    function refreshTimes() {
      inbox.querySelectorAll("time[datetime]").forEach((time) => {
        const text = relative(time.dateTime);
        if (text) time.textContent = text;
      });
    }
    refreshTimes();
    window.setInterval(refreshTimes, 30_000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init, { once: true });
  } else {
    init();
  }
})();
