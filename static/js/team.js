/**
 * team.js: the open thread's team controls and internal notes.
 *
 *   #thread-team   owner line, the Assign select (#assign-select), "Take it" (#take-it),
 *                  Close / Reopen (#close-toggle): PATCH /api/conversations/{id}
 *   #mark-unread   POST …/unread, then `inbox:marked-unread` {id, unread_count} for inbox.js
 *   #note-form     an internal note: POST /api/conversations/{id}/notes
 *   keyboard       `e` closes the open conversation, `a` assigns it to me (not while typing)
 *
 * It follows the open thread through inbox.js's document events (inbox:conversation-opened,
 * -changed, -closed) and the live `note.created` events. Notes go into #messages among the
 * messages, in time order, each marked as internal; their text only ever through textContent.
 */

import { api } from "./api.js";
import { clockTime, fill, part, setText, setTime, ui } from "./dom.js";
import { live } from "./live.js";
import { placeOfNode } from "./thread.js";

const myId = String(document.body.dataset.staffId || "");
const byId = (id) => document.getElementById(id);
const el = {
  get owner() { return byId("thread-owner"); },
  get assign() { return byId("assign-select"); },
  get take() { return byId("take-it"); },
  get toggle() { return byId("close-toggle"); },
  get noteBox() { return byId("note-box"); },
  get noteForm() { return byId("note-form"); },
  get noteBody() { return byId("note-body"); },
  get noteError() { return byId("note-error"); },
};

let current = null; // the open conversation (summary), or null
let busy = false;

function paint(conversation) {
  current = conversation;
  if (!conversation) return;
  const owner = conversation.assignee;
  const mine = owner && String(owner.id) === myId;
  setText(el.owner, owner ? (mine ? "You own this" : `Owner: ${owner.name || "someone"}`) : "Nobody owns this");
  const value = owner ? String(owner.id) : "";
  if (![...el.assign.options].some((option) => option.value === value) && owner) {
    el.assign.append(new Option(owner.name || `Staff ${owner.id}`, value)); // an account added since the page loaded
  }
  el.assign.value = value;
  el.take.hidden = Boolean(mine);
  const closed = conversation.status === "closed";
  setText(el.toggle, closed ? "Reopen" : "Close");
  el.toggle.dataset.action = closed ? "open" : "closed";
  ui.thread.dataset.status = conversation.status || "";
}

async function change(payload, announceText) {
  if (!current || busy) return;
  busy = true;
  const id = current.id;
  try {
    const updated = await api.patch(`/api/conversations/${encodeURIComponent(id)}`, payload);
    if (current && String(current.id) === String(id)) paint({ ...current, ...updated });
    announce(announceText);
  } catch (error) {
    announce(error.message);
    if (current) paint(current);
  } finally {
    busy = false;
  }
}

function announce(text) {
  const region = ui.announcer;
  if (!region) return;
  setText(region, "");
  window.setTimeout(() => setText(region, text), 50);
}

function takeIt() {
  return change({ assignee_id: Number(myId) }, "You own this conversation now.");
}

function toggleClosed() {
  const status = el.toggle.dataset.action || "closed";
  return change({ status }, status === "closed" ? "Conversation closed." : "Conversation reopened.");
}

// --- notes -------------------------------------------------------------------------------------

function showNote(note) {
  if (!current || String(note.conversation_id) !== String(current.id)) return;
  const key = String(note.id);
  if (ui.messages.querySelector(`[data-note-id="${CSS.escape(key)}"]`)) return;
  const item = fill("tpl-note");
  item.dataset.noteId = key;
  item.dataset.createdAt = note.created_at || "";
  setText(part(item, "body"), note.body || "");
  setText(part(item, "author"), note.author?.name || "");
  setTime(part(item, "time"), note.created_at || "", clockTime);
  const when = placeOfNode(item);
  let after = null; // the last node at or before the note's time (a reply still waiting stays below)
  for (let node = ui.messages.lastElementChild; node; node = node.previousElementSibling) {
    if (placeOfNode(node) <= when) {
      after = node;
      break;
    }
  }
  ui.messages.insertBefore(item, after ? after.nextElementSibling : ui.messages.firstElementChild);
}

async function saveNote(event) {
  event.preventDefault();
  if (!current) return;
  const body = el.noteBody.value;
  el.noteError.hidden = true;
  try {
    const note = await api.post(`/api/conversations/${encodeURIComponent(current.id)}/notes`, { body });
    showNote(note);
    el.noteBody.value = "";
    announce("Note saved. Only your team sees it.");
  } catch (error) {
    el.noteError.hidden = false;
    setText(el.noteError, error.message);
  }
}

// --- keyboard ----------------------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function onKeydown(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
  if (!current || ui.threadBody.hidden) return;
  if (event.key === "e" && current.status !== "closed") {
    event.preventDefault();
    toggleClosed();
  } else if (event.key === "a" && String(current.assignee?.id ?? "") !== myId) {
    event.preventDefault();
    takeIt();
  }
}

// --- wiring ------------------------------------------------------------------------------------

document.addEventListener("inbox:conversation-opened", (event) => {
  paint(event.detail.conversation);
  el.noteError.hidden = true;
  for (const note of event.detail.conversation.notes || []) showNote(note);
});
document.addEventListener("inbox:conversation-changed", (event) => paint(event.detail.conversation));
document.addEventListener("inbox:conversation-loading", () => {
  current = null;
});
document.addEventListener("inbox:conversation-closed", () => {
  current = null;
});
document.addEventListener("keydown", onKeydown);
el.take.addEventListener("click", takeIt);
el.toggle.addEventListener("click", toggleClosed);
el.assign.addEventListener("change", () => {
  const value = el.assign.value;
  const name = el.assign.selectedOptions[0]?.textContent || "";
  change({ assignee_id: value ? Number(value) : null }, value ? `Assigned to ${name}.` : "Nobody owns it now.");
});
el.noteForm.addEventListener("submit", saveNote);
byId("mark-unread").addEventListener("click", async () => {
  if (!current) return;
  const id = String(current.id);
  try {
    const marking = { id, wait: [] }; // inbox.js holds back its own read mark (see there)
    document.dispatchEvent(new CustomEvent("inbox:marking-unread", { detail: marking }));
    await Promise.all(marking.wait);
    const result = await api.post(`/api/conversations/${encodeURIComponent(id)}/unread`);
    document.dispatchEvent(new CustomEvent("inbox:marked-unread", { detail: { id, unread_count: result.unread_count } }));
  } catch (error) {
    announce(error.message);
  }
});
live.subscribe("note.created", (event) => {
  if (event.data?.note) showNote(event.data.note);
});
