// Grouping and preference decisions of the client, without a browser: node --test tests/js/
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const client = require(path.join(__dirname, "..", "..", "sse_notify", "static", "sse_notify", "sse-notify.js"));

test("group key: only notifications with a group have one, and it names the category", () => {
  assert.equal(client.groupKeyOf({ title: "x" }), "");
  assert.equal(client.groupKeyOf({ group: "", category: "comments" }), "");
  assert.equal(client.groupKeyOf({ group: "issue-42", category: "comments" }), "comments:issue-42");
  // Same key in another category is another group.
  assert.notEqual(
    client.groupKeyOf({ group: "issue-42", category: "reviews" }),
    client.groupKeyOf({ group: "issue-42", category: "comments" }),
  );
  // Rows from before categories have the default one.
  assert.equal(client.groupKeyOf({ group: "g" }), "default:g");
  assert.equal(client.groupKeyOf(null), "");
});

test("in-app off: listed and counted as the server counts it, no toast, no desktop popup", () => {
  const quiet = client.channelsFor({ in_app: false, desktop: true });
  assert.equal(quiet.list, true);
  assert.equal(quiet.toast, false);
  assert.equal(quiet.desktop, false);
});

test("group strings have English defaults with their placeholders", () => {
  assert.equal(client.format(client.DEFAULT_STRINGS.groupNew, { n: 3 }), "3 new");
  assert.equal(client.format(client.DEFAULT_STRINGS.groupCount, { n: 3 }), "3 in this group");
  assert.ok(client.DEFAULT_STRINGS.markGroupRead);
  assert.ok(client.DEFAULT_STRINGS.showAll);
});
