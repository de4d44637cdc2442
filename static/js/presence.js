/**
 * presence.js: "Maria is viewing" and "Maria is typing…" on the open thread (#thread-presence).
 *
 *   sends     {"type": "viewing", conversation_id} when a thread opens, when someone new shows
 *             up in it, and every VIEW_EVERY ms while the tab is visible; {"type": "typing", conversation_id} while the reply box
 *             is typed in, at most every TYPE_EVERY ms
 *   receives  staff.viewing / staff.typing (id null, never stored): each entry fades after
 *             VIEW_TTL / TYPE_TTL ms without news
 *
 * It marks #thread with data-other-typing (a name) and data-other-typing-at (ms) so the composer
 * can ask before sending over someone else's reply. Names only ever through textContent.
 */

import { setText, ui } from "./dom.js";
import { live } from "./live.js";

const VIEW_EVERY = 15_000;
const VIEW_TTL = 40_000;
const TYPE_EVERY = 2_000;
const TYPE_TTL = 6_000;

const myId = String(document.body.dataset.staffId || "");
let openId = null;
let lastTyped = 0;
const others = new Map(); // staff id -> {name, viewingAt, typingAt}

function say(type) {
  if (openId) live.send({ type, conversation_id: Number(openId) });
}

function paint() {
  const line = document.getElementById("thread-presence");
  if (!line) return;
  const now = Date.now();
  const typing = [];
  const viewing = [];
  for (const [id, who] of others) {
    if (now - who.typingAt < TYPE_TTL) typing.push(who.name);
    else if (now - who.viewingAt < VIEW_TTL) viewing.push(who.name);
    else others.delete(id);
  }
  const parts = [];
  if (typing.length) parts.push(`${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…`);
  if (viewing.length) parts.push(`${viewing.join(", ")} ${viewing.length > 1 ? "are" : "is"} viewing`);
  line.hidden = parts.length === 0;
  setText(line, parts.join(" · "));
  const latest = [...others.values()].sort((a, b) => b.typingAt - a.typingAt)[0];
  if (latest && now - latest.typingAt < TYPE_TTL) {
    ui.thread.dataset.otherTyping = latest.name;
    ui.thread.dataset.otherTypingAt = String(latest.typingAt);
  } else {
    delete ui.thread.dataset.otherTyping;
    delete ui.thread.dataset.otherTypingAt;
  }
}

function heard(event, field) {
  const staff = event.data?.staff;
  if (!staff || String(staff.id) === myId || String(event.conversation_id) !== openId) return;
  const key = String(staff.id);
  const arrived = !others.has(key);
  const who = others.get(key) || { name: "", viewingAt: 0, typingAt: 0 };
  who.name = staff.name || "Someone";
  who.viewingAt = Date.now(); // typing means viewing too
  if (field === "typingAt") who.typingAt = Date.now();
  others.set(key, who);
  paint();
  if (arrived) say("viewing"); // someone just came: let them know who is here already
}

function reset(id) {
  openId = id ? String(id) : null;
  others.clear();
  delete ui.thread.dataset.otherTyping;
  delete ui.thread.dataset.otherTypingAt;
  paint();
}

document.addEventListener("inbox:conversation-opened", (event) => {
  reset(event.detail.id);
  say("viewing");
});
document.addEventListener("inbox:conversation-closed", () => reset(null));
document.addEventListener("input", (event) => {
  if (event.target?.id !== "composer-body" || !openId) return;
  const now = Date.now();
  if (now - lastTyped < TYPE_EVERY) return;
  lastTyped = now;
  say("typing");
});
live.subscribe("staff.viewing", (event) => heard(event, "viewingAt"));
live.subscribe("staff.typing", (event) => heard(event, "typingAt"));
live.onStatus((status) => {
  if (status === "live") say("viewing"); // a new socket: tell the others again
});
setInterval(() => {
  if (document.visibilityState === "visible") say("viewing");
}, VIEW_EVERY);
setInterval(paint, 1_000); // entries fade on their own
