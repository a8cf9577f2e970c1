// Unit tests for the browser client's logic, without a browser: `node --test tests/js/`.
// sse-notify.js exports its DOM-free half as module.exports when loaded by Node.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const client = require(path.join(__dirname, "..", "..", "sse_notify", "static", "sse_notify", "sse-notify.js"));

/** Feeds `chunks` to a fresh parser; returns [events as [type, data, lastEventId]], retries. */
function parse(chunks) {
  const events = [];
  const retries = [];
  const parser = client.createParser(
    (type, data, id) => events.push([type, data, id]),
    (ms) => retries.push(ms),
  );
  for (const chunk of chunks) parser.feed(chunk);
  return { events, retries, parser };
}

/** Every way to cut `text` into two chunks. */
function everySplit(text) {
  const splits = [];
  for (let i = 0; i <= text.length; i++) splits.push([text.slice(0, i), text.slice(i)]);
  return splits;
}

// ------------------------------------------------------------------ the SSE parser

test("parser: fields, default type, the space after the colon, multi-line data", () => {
  const { events } = parse(["event: ready\ndata: {\"a\":1}\n\ndata:no space\ndata:  two\n\n"]);
  assert.deepEqual(events, [
    ["ready", '{"a":1}', ""],
    ["message", "no space\n two", ""],
  ]);
});

test("parser: LF, CR and CRLF end lines, also when a CRLF is split between chunks", () => {
  const expected = [
    ["message", "a", "1"],
    ["message", "b", "1"],
  ];
  for (const eol of ["\n", "\r", "\r\n"]) {
    const text = `id: 1${eol}data: a${eol}${eol}data: b${eol}${eol}`;
    for (const chunks of everySplit(text)) {
      assert.deepEqual(parse(chunks).events, expected, `${JSON.stringify(eol)} split as ${JSON.stringify(chunks)}`);
    }
    // One character at a time.
    assert.deepEqual(parse([...text]).events, expected);
  }
});

test("parser: a lone CR then LF in the next chunk is one line end, not an empty line", () => {
  // If "\r" + "\n" were two line ends, the blank line would dispatch "a" before "b" is added.
  assert.deepEqual(parse(["data: a\r", "\ndata: b\r\n\r\n"]).events, [["message", "a\nb", ""]]);
});

test("parser: mixed line ends in one stream", () => {
  assert.deepEqual(parse(["data: x\r\ndata: y\rdata: z\n\r\n"]).events, [["message", "x\ny\nz", ""]]);
});

test("parser: one leading BOM is dropped, a second one is data", () => {
  assert.deepEqual(parse(["\ufeffdata: a\n\n"]).events, [["message", "a", ""]]);
  assert.deepEqual(parse(["", "\ufeff", "data: a\n\n"]).events, [["message", "a", ""]]);
  // After the first BOM, a second is part of the first line's field name: not "data".
  assert.deepEqual(parse(["\ufeff\ufeffdata: a\n\n"]).events, []);
  // A BOM later in the stream is not stripped.
  assert.deepEqual(parse(["data: a\n\n", "\ufeffdata: b\n\n"]).events, [["message", "a", ""]]);
});

test("parser: an id containing NUL is ignored; the last event id persists across events", () => {
  const { events, parser } = parse(["id: 5\ndata: a\n\nid: 6\u00007\ndata: b\n\ndata: c\n\n"]);
  assert.deepEqual(events, [
    ["message", "a", "5"],
    ["message", "b", "5"],
    ["message", "c", "5"],
  ]);
  assert.equal(parser.lastEventId, "5");
  // An empty id resets it.
  assert.deepEqual(parse(["id: 5\ndata: a\n\nid\ndata: b\n\n"]).events.map((e) => e[2]), ["5", ""]);
});

test("parser: retry only when all ASCII digits", () => {
  const { retries } = parse(["retry: 300\nretry: 1.5\nretry: -1\nretry:\nretry: 12a\nretry: \u0661\u0662\nretry:4000\n\n"]);
  assert.deepEqual(retries, [300, 4000]);
});

test("parser: comments, unknown fields and events without data dispatch nothing", () => {
  const { events } = parse([": heartbeat\n\nevent: ready\n\nfoo: bar\n\n:\n\n"]);
  assert.deepEqual(events, []);
  // The event type of an event without data does not leak into the next one.
  assert.deepEqual(parse(["event: ready\n\ndata: x\n\n"]).events, [["message", "x", ""]]);
});

test("parser: a field without a colon has an empty value; data without value is an empty line", () => {
  assert.deepEqual(parse(["data\n\ndata\ndata\n\n"]).events, [
    ["message", "", ""],
    ["message", "\n", ""],
  ]);
});

test("parser: an unfinished event at the end of the stream is not dispatched", () => {
  assert.deepEqual(parse(["data: a\n"]).events, []);
  assert.deepEqual(parse(["data: a"]).events, []);
});

test("parser: a large frame in many small chunks arrives whole", () => {
  const big = "x".repeat(100000);
  const text = `event: notification\ndata: ${big}\n\n`;
  const chunks = [];
  for (let i = 0; i < text.length; i += 997) chunks.push(text.slice(i, i + 997));
  assert.deepEqual(parse(chunks).events, [["notification", big, ""]]);
});

// ------------------------------------------------------------------ backoff

test("backoff: equal jitter between half and all of an exponentially growing ceiling", () => {
  const base = 300;
  for (let attempt = 0; attempt < 10; attempt++) {
    const ceiling = Math.min(base * 16, base * 2 ** attempt);
    assert.equal(client.backoffDelay(attempt, base, () => 0), ceiling / 2);
    assert.equal(client.backoffDelay(attempt, base, () => 1), ceiling);
  }
});

test("backoff: capped at 16x base and at 30 s; a silly base is floored", () => {
  assert.equal(client.backoffDelay(50, 1000, () => 1), 16000);
  assert.equal(client.backoffDelay(50, 10000, () => 1), client.MAX_BACKOFF_MS);
  assert.equal(client.backoffDelay(0, 1, () => 1), 100);
  assert.equal(client.backoffDelay(0, "nonsense", () => 1), 3000);
});

test("Retry-After: seconds or an HTTP date, else nothing", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(client.retryAfterMs("7", now), 7000);
  assert.equal(client.retryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now), 30000);
  assert.equal(client.retryAfterMs("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assert.equal(client.retryAfterMs(null, now), 0);
  assert.equal(client.retryAfterMs("soon", now), 0);
});

// ------------------------------------------------------------------ de-duplication

test("de-duplication: each seq once, in order; replays and older seqs are refused", () => {
  const gate = client.createSeqGate(10);
  assert.deepEqual(
    [9, 10, 11, 11, 12, 11, 15, 13].map((seq) => gate.accept(seq)),
    [false, false, true, false, true, false, true, false],
  );
  assert.equal(gate.last, 15);
  assert.equal(gate.accept("16"), true); // seqs from JSON may be strings
  assert.equal(gate.accept(undefined), false);
  assert.equal(gate.accept(NaN), false);
});

test("de-duplication: advance() from another tab, reset() from the server", () => {
  const gate = client.createSeqGate("3");
  gate.advance(8);
  gate.advance(5); // never backwards
  assert.equal(gate.accept(8), false);
  assert.equal(gate.accept(9), true);
  gate.reset(2);
  assert.equal(gate.accept(3), true);
});

// ------------------------------------------------------------------ the link policy

test("links: the server's href is used, resolved against the page", () => {
  const page = "https://app.example/projects/";
  assert.equal(client.linkOf({ href: "/orders/7/" }, page), "https://app.example/orders/7/");
  assert.equal(client.linkOf({ href: "orders/7/" }, page), "https://app.example/projects/orders/7/");
  assert.equal(client.linkOf({ href: "https://other.example/x" }, page), "https://other.example/x");
  assert.equal(client.linkOf({ href: "mailto:a@example.com" }, page), "mailto:a@example.com");
});

test("links: no href, no link; the url field alone is never followed", () => {
  const page = "https://app.example/";
  assert.equal(client.linkOf({ url: "/orders/7/" }, page), null);
  assert.equal(client.linkOf({ url: "/orders/7/", href: null }, page), null);
  assert.equal(client.linkOf({ href: "" }, page), null);
  assert.equal(client.linkOf({ href: "   " }, page), null);
  assert.equal(client.linkOf(null, page), null);
  assert.equal(client.linkOf({ href: 7 }, page), null);
});

test("links: javascript:, data: and vbscript: are never links, however spelled", () => {
  const page = "https://app.example/";
  for (const href of [
    "javascript:alert(1)",
    " JavaScript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html,x",
    "vbscript:msgbox(1)",
  ]) {
    assert.equal(client.linkOf({ href }, page), null, href);
  }
});

// ------------------------------------------------------------------ small pieces of the page

test("badge: the count, or 99+", () => {
  assert.deepEqual([0, 1, 99, 100, 121, -3, "7", null].map(client.badgeText), ["0", "1", "99", "99+", "99+", "0", "7", "0"]);
});

test("tab title: (n) prefix, replaced not stacked, removed at zero", () => {
  assert.equal(client.titleWithCount("Home · Acme", 3), "(3) Home · Acme");
  assert.equal(client.titleWithCount("(3) Home · Acme", 4), "(4) Home · Acme");
  assert.equal(client.titleWithCount("(99+) Home", 0), "Home");
  assert.equal(client.titleWithCount("Home", 150), "(99+) Home");
});

test("relative times: just now, minutes, hours, days, then a date", () => {
  const now = Date.parse("2026-03-10T12:00:00Z");
  const ago = (s) => new Date(now - s * 1000).toISOString();
  const say = (s) => client.relativeTime(ago(s), { now, locale: "en", justNow: "just now" });
  assert.equal(say(10), "just now");
  assert.equal(say(65), "1 minute ago");
  assert.equal(say(60 * 5), "5 minutes ago");
  assert.equal(say(3600 * 3), "3 hours ago");
  assert.equal(say(86400), "yesterday");
  assert.match(say(86400 * 60), /2026/);
  assert.equal(client.relativeTime("not a date", { now }), "");
  assert.equal(client.relativeTime(ago(10), { now, justNow: "gerade eben" }), "gerade eben");
});

test("stream answers: only text/event-stream is read as a stream", () => {
  for (const type of ["text/event-stream", "text/event-stream; charset=utf-8", "Text/Event-Stream;charset=UTF-8", " text/event-stream "]) {
    assert.equal(client.isEventStream(type), true, type);
  }
  for (const type of ["text/html; charset=utf-8", "application/json", "", null, "text/event-streamx", "text/plain"]) {
    assert.equal(client.isEventStream(type), false, String(type));
  }
});

test("strings: placeholders filled, unknown ones kept; every default is a non-empty string", () => {
  assert.equal(client.format("+{n} more", { n: 3 }), "+3 more");
  assert.equal(client.format("from {name} {other}", { name: "bob" }), "from bob {other}");
  for (const [key, value] of Object.entries(client.DEFAULT_STRINGS)) {
    assert.equal(typeof value, "string", key);
    assert.ok(value.length > 0, key);
  }
});

test("toast levels: info and success hide by themselves, warning and error stay", () => {
  assert.deepEqual(["info", "success", "warning", "error"].map(client.hidesByItself), [true, true, false, false]);
  assert.equal(client.levelOf({ level: "bogus" }), "info");
});

test("loading in Node starts nothing and needs no DOM", () => {
  assert.equal(typeof globalThis.document, "undefined");
  assert.equal(typeof client.start, "function");
  assert.ok(Object.isFrozen(client));
});

test("channels: in-app off is listed but neither toasted nor a desktop popup; desktop off only drops the popup", () => {
  assert.deepEqual(client.channelsFor({}), { list: true, badge: true, toast: true, desktop: true });
  assert.deepEqual(client.channelsFor({ in_app: false, desktop: true }), { list: true, badge: true, toast: false, desktop: false });
  assert.deepEqual(client.channelsFor({ in_app: true, desktop: false }), { list: true, badge: true, toast: true, desktop: false });
});
