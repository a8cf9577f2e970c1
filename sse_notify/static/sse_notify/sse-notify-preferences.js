/*
 * sse-notify preferences page: save each change at once, follow changes from elsewhere.
 *
 * Without this file the page is a plain form (POST, then a confirmation). With it:
 * - a change to any control is saved at once (POST JSON to the form's data-api-url with
 *   the form's CSRF token), the result is announced in the page's role="status" region,
 *   and a refused change is put back as it was;
 * - the Save button is hidden (nothing is left to save);
 * - changes made in another tab, on another device or through an email's unsubscribe
 *   link arrive as the stream's "preferences" event (re-dispatched by sse-notify.js as
 *   the DOM event "sse-notify:preferences") and update the controls;
 * - turning a desktop switch on asks the browser's permission when it was not asked yet.
 * No dependencies; text comes from the form's data-* attributes (translated server-side).
 */
(() => {
  "use strict";

  const form = document.querySelector("[data-sse-notify-prefs]");
  if (!form || !window.fetch) return;
  const status = document.querySelector("[data-sse-notify-prefs-status]");
  const text = (name, fallback) => form.dataset[name] || fallback;
  let config = {};
  try {
    config = JSON.parse(document.getElementById("sse-notify-config")?.textContent || "{}");
  } catch {
    /* the page still works with the form's own token */
  }

  function say(message, isError = false) {
    if (!status) return;
    status.textContent = message;
    status.classList.toggle("is-error", isError);
  }

  function csrfToken() {
    const name = config.csrfCookieName || "csrftoken";
    const cookie = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
    if (cookie) return decodeURIComponent(cookie.slice(name.length + 1));
    return form.querySelector("[name=csrfmiddlewaretoken]")?.value || config.csrfToken || "";
  }

  function controlsOf(fieldset) {
    const byChannel = {};
    fieldset.querySelectorAll("[data-channel]").forEach((control) => {
      byChannel[control.dataset.channel] = control;
    });
    return byChannel;
  }

  function read(control) {
    return control.type === "checkbox" ? control.checked : control.value;
  }

  function write(control, value) {
    if (control.type === "checkbox") control.checked = Boolean(value);
    else control.value = String(value);
  }

  /** Put every control in line with the server's answer (a list of per-category entries). */
  function apply(preferences) {
    for (const entry of preferences || []) {
      const fieldset = form.querySelector(`fieldset[data-category="${CSS.escape(entry.category)}"]`);
      if (!fieldset) continue;
      const controls = controlsOf(fieldset);
      for (const channel of Object.keys(controls)) {
        if (channel in entry) write(controls[channel], entry[channel]);
      }
    }
  }

  let pending = Promise.resolve();

  function save(fieldset, control, previous) {
    const category = fieldset.dataset.category;
    const change = { [category]: { [control.dataset.channel]: read(control) } };
    say(text("saving", "Saving…"));
    pending = pending.then(async () => {
      let response;
      try {
        response = await fetch(form.dataset.apiUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            [config.csrfHeaderName || "X-CSRFToken"]: csrfToken(),
          },
          body: JSON.stringify(change),
        });
      } catch {
        write(control, previous);
        say(text("offline", "Not saved: no connection. Try again."), true);
        return;
      }
      let body = {};
      try {
        body = await response.json();
      } catch {
        /* an HTML error page: reported below */
      }
      if (!response.ok) {
        write(control, previous);
        const messages = Object.values(body.errors || {}).flat();
        say(`${text("failed", "Not saved:")} ${messages.join(" ") || body.detail || response.status}`, true);
        return;
      }
      apply(body.preferences);
      say(text("saved", "Saved."));
    });
    return pending;
  }

  function askDesktopPermission() {
    if (!("Notification" in window)) return;
    if (Notification.permission === "denied") {
      say(text("desktopBlocked", "Desktop notifications are blocked in this browser."), true);
    } else if (Notification.permission === "default") {
      // Through the client when it is on the page, so its own desktop switch follows.
      const client = window.sseNotify;
      const asked = client?.enableDesktopNotifications?.() ?? Notification.requestPermission();
      Promise.resolve(asked).catch(() => {});
    }
  }

  // The value before a change, to put back if the server refuses it.
  const before = new WeakMap();
  form.addEventListener("focusin", (event) => {
    if (event.target.dataset?.channel) before.set(event.target, read(event.target));
  });
  form.addEventListener("change", (event) => {
    const control = event.target;
    const fieldset = control.closest("fieldset[data-category]");
    if (!control.dataset?.channel || !fieldset) return;
    const previous = before.has(control) ? before.get(control) : control.type === "checkbox" ? !control.checked : control.value;
    before.set(control, read(control));
    if (control.dataset.channel === "desktop" && control.checked) askDesktopPermission();
    save(fieldset, control, previous);
  });

  // Every control's value, to tell a real change from this tab's own save coming back.
  const snapshot = () => JSON.stringify(Array.from(form.querySelectorAll("[data-channel]"), read));

  document.addEventListener("sse-notify:preferences", (event) => {
    const was = snapshot();
    apply(event.detail?.preferences);
    // This tab's own save comes back through the stream too: say nothing then
    // (it would replace "Saved." with a wrong "another tab").
    if (snapshot() !== was) say(text("updated", "Updated from another tab or device."));
  });

  const actions = form.querySelector("[data-sse-notify-prefs-actions]");
  if (actions) actions.hidden = true;
  form.dataset.enhanced = "1";
})();
