/**
 * quick-replies.js: saved replies in the composer.
 *
 * `/` at the start of the reply opens a picker of the saved replies, filtered by what follows it
 * as you type (title or text). Arrow keys move, Enter or Tab chooses, Escape closes; a click
 * chooses too. The chosen reply replaces the `/…` with its text filled in for the open
 * conversation by the server (GET /api/quick-replies?conversation_id=N: {first_name}, {name},
 * {business_name}). A field nobody could fill (no name known) stays in the text, is selected
 * and named in a highlighted notice, and the composer refuses to send while any such field is
 * left (composer.js asks `unfilledFields`): it is never sent as "{first_name}".
 *
 * composer.js owns the textarea; this module listens on #composer (capturing the picker's keys
 * before the composer's Enter-to-send) and tells it about changes with an `input` event.
 */

import { api } from "./api.js";
import { el } from "./dom.js";

const FIELD = /\{(first_name|name|business_name)\}/g;
const LABELS = { first_name: "first name", name: "name", business_name: "business name" };
const MAX_SHOWN = 8;
const root = document.getElementById("composer");
const state = { open: false, items: [], shown: [], active: 0, seq: 0, conversationId: null, loading: null };

/** The fields still waiting in a reply's text, once each, in order. */
export function unfilledFields(text) {
  return [...new Set([...String(text || "").matchAll(FIELD)].map((m) => m[1]))];
}

function textarea() {
  return document.getElementById("composer-body");
}

function picker() {
  let list = document.getElementById("quick-reply-picker");
  if (!list) {
    list = el("ul", { class: "quick-reply-picker", id: "quick-reply-picker", role: "listbox",
      "aria-label": "Saved replies", hidden: "" });
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the textarea's focus
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role='option'][data-index]");
      if (option) choose(Number(option.dataset.index));
    });
    const form = document.getElementById("composer-form");
    form.parentNode.insertBefore(list, form);
  }
  return list;
}

function notice() {
  let box = document.getElementById("quick-reply-unfilled");
  if (!box) {
    box = el("p", { class: "quick-reply-unfilled", id: "quick-reply-unfilled", role: "status", hidden: "" });
    const form = document.getElementById("composer-form");
    form.parentNode.insertBefore(box, form.nextSibling);
  }
  return box;
}

/** The query when the reply is `/…` on its first line with the caret in it, else null. */
function query(body) {
  const value = body.value;
  if (!value.startsWith("/")) return null;
  const end = value.indexOf("\n");
  if (end !== -1 && body.selectionStart > end) return null;
  return value.slice(1, end === -1 ? undefined : end);
}

function load(conversationId) {
  const loading = fetchReplies(conversationId);
  state.loading = loading;
  loading.finally(() => {
    if (state.loading === loading) state.loading = null;
  });
  return loading;
}

async function fetchReplies(conversationId) {
  const seq = ++state.seq;
  try {
    const { quick_replies: items } = await api.get("/api/quick-replies", { query: { conversation_id: conversationId } });
    if (seq !== state.seq) return;
    state.items = items;
    state.conversationId = conversationId;
    state.loading = null; // before the render below: the list is here
  } catch {
    if (seq !== state.seq) return;
    state.items = [];
    state.loading = null;
  }
  render();
}

function render() {
  const body = textarea();
  const list = picker();
  const wanted = (query(body) ?? "").trim().toLowerCase();
  state.shown = state.items
    .filter((item) => !wanted || item.title.toLowerCase().includes(wanted) || item.body.toLowerCase().includes(wanted))
    .slice(0, MAX_SHOWN);
  state.active = Math.min(state.active, Math.max(0, state.shown.length - 1));
  if (!state.shown.length) {
    const empty = state.items.length ? "No saved reply matches."
      : state.loading ? "Loading saved replies…" : "No saved replies yet: managers add them in Settings.";
    list.replaceChildren(el("li", { class: "quick-reply-empty", role: "option", "aria-disabled": "true" }, empty));
  } else {
    list.replaceChildren(...state.shown.map((item, index) => el("li", {
      role: "option", id: `quick-reply-${item.id}`, "data-index": String(index),
      "aria-selected": index === state.active ? "true" : "false", class: "quick-reply-option" },
    el("span", { class: "quick-reply-title" }, item.title),
    el("span", { class: "quick-reply-text" }, (item.filled?.text ?? item.body).slice(0, 140)))));
  }
  list.hidden = false;
  body.setAttribute("aria-controls", "quick-reply-picker");
  const active = state.shown[state.active];
  if (active) body.setAttribute("aria-activedescendant", `quick-reply-${active.id}`);
  else body.removeAttribute("aria-activedescendant");
}

function close() {
  state.open = false;
  const list = document.getElementById("quick-reply-picker");
  if (list) list.hidden = true;
  const body = textarea();
  body?.removeAttribute("aria-activedescendant");
}

async function choose(index) {
  const picked = state.shown[index];
  if (!picked) return;
  // The list shown may be the one from before a refresh still on its way (a name just typed on
  // the customer card): fill in from the fresh one.
  if (state.loading) await state.loading;
  const item = state.items.find((reply) => reply.id === picked.id) || picked;
  const body = textarea();
  const text = item.filled?.text ?? item.body;
  const end = body.value.indexOf("\n");
  body.value = text + (end === -1 ? "" : body.value.slice(end));
  close();
  body.dispatchEvent(new Event("input", { bubbles: true })); // the composer recounts and keeps the draft
  const [first] = unfilledFields(body.value);
  body.focus();
  if (first) {
    const at = body.value.indexOf(`{${first}}`);
    body.setSelectionRange(at, at + first.length + 2); // the field to replace, selected
  } else {
    body.setSelectionRange(text.length, text.length);
  }
}

/** The fields left in the text, shown highlighted; the composer will not send them. */
function showUnfilled() {
  const body = textarea();
  if (!body) return;
  const fields = unfilledFields(body.value);
  const box = notice();
  body.classList.toggle("has-unfilled", fields.length > 0);
  if (!fields.length) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const marks = fields.flatMap((name, i) => [i ? ", " : "", el("mark", {}, `{${name}}`)]);
  box.replaceChildren("Replace ", ...marks, ` before sending: the customer's ${fields.map((f) => LABELS[f]).join(" and ")} `
    + `${fields.length > 1 ? "are" : "is"} not known, and a reply is never sent with a blank to fill in.`);
  box.hidden = false;
}

function onInput(event) {
  if (event.target.id !== "composer-body") return;
  showUnfilled();
  const wanted = query(event.target);
  if (wanted === null) {
    if (state.open) close();
    return;
  }
  const conversationId = root.dataset.conversationId;
  if (!state.open) {
    state.open = true;
    state.active = 0;
    if (conversationId !== state.conversationId || !state.items.length) {
      state.items = [];
      picker().replaceChildren(el("li", { class: "quick-reply-empty", role: "option", "aria-disabled": "true" },
        "Loading saved replies…"));
      picker().hidden = false;
      load(conversationId);
      return;
    }
    load(conversationId); // names may have changed: refresh behind the current list
  }
  render();
}

function onKeydown(event) {
  if (!state.open || event.target.id !== "composer-body" || event.isComposing) return;
  const moves = { ArrowDown: 1, ArrowUp: -1 };
  if (event.key in moves) {
    if (!state.shown.length) return;
    state.active = (state.active + moves[event.key] + state.shown.length) % state.shown.length;
    render();
  } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
    // While the picker is open Enter never sends the "/…" typed to open it: with the list still
    // loading it chooses once it is there; with nothing matching it does nothing (Escape closes).
    if (state.shown.length) {
      choose(state.active);
    } else if (state.loading) {
      state.loading.then(() => {
        if (state.open && state.shown.length) choose(state.active);
      });
    }
  } else if (event.key === "Escape") {
    close();
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation(); // before the composer's own Enter-to-send and the page's Escape
}

if (root) {
  root.addEventListener("input", onInput);
  root.addEventListener("keydown", onKeydown, true);
  root.addEventListener("focusout", (event) => {
    if (event.target.id === "composer-body" && state.open) setTimeout(() => {
      if (document.activeElement?.id !== "composer-body") close();
    }, 0);
  });
  document.addEventListener("inbox:conversation-opened", () => {
    close();
    state.conversationId = null; // another customer: their own names
    setTimeout(showUnfilled, 0); // after the composer restored this conversation's draft
  });
}
