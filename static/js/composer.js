/**
 * composer.js: the reply box of the open thread.
 *
 * Listens for inbox:conversation-opened / -changed / -closed (inbox.js) and fills #composer:
 * channel choice (the customer's last channel by default), a live character and segment count
 * with the encoding, the characters that force UCS-2 and a one-click swap of smart punctuation,
 * the 1,600-character limit, Enter to send and Shift+Enter for a new line. A reply is POSTed with
 * an Idempotency-Key kept until it succeeds, so a retry or a double press sends once; it then
 * appears through the live events like any message. An opted-out customer locks the composer
 * with the reason; outside WhatsApp's 24-hour window it offers the approved templates.
 * Staff can also record a consent change a customer asked for by phone or in person.
 */

import { api, ApiError } from "./api.js";
import { el } from "./dom.js";
import { live } from "./live.js";
import { count, plainSwaps } from "./segments.js";

const MAX_BODY = 1600;
const root = document.getElementById("composer");
const state = { conversation: null, key: null, sending: false, templates: null, mode: "text" };

function consentOf(conversation, channel) {
  return conversation?.customer?.consent?.[channel] || "unknown";
}

function defaultChannel(conversation) {
  const inbound = (conversation.messages || []).filter((m) => m.direction === "inbound");
  return inbound.at(-1)?.channel || conversation.last_message?.channel || "sms";
}

function whoIs(conversation) {
  const customer = conversation.customer || {};
  return customer.name || customer.phone || "This customer";
}

function channelName(channel) {
  return channel === "whatsapp" ? "WhatsApp" : "SMS";
}

function build() {
  const channel = el("select", { id: "composer-channel", "aria-label": "Send by" },
    el("option", { value: "sms" }, "SMS"), el("option", { value: "whatsapp" }, "WhatsApp"));
  const body = el("textarea", { id: "composer-body", rows: "3", maxlength: String(MAX_BODY + 200),
    placeholder: "Write a reply… (Enter sends, Shift+Enter for a new line)", "aria-describedby": "composer-count" });
  const counter = el("p", { id: "composer-count", class: "composer-count", "aria-live": "polite" });
  const swap = el("button", { type: "button", class: "button button-quiet", id: "composer-swap", hidden: "" },
    "Use plain quotes and dashes");
  const send = el("button", { type: "submit", class: "button", id: "composer-send" }, "Send");
  const lock = el("p", { class: "composer-lock", id: "composer-lock", role: "status", hidden: "" });
  const error = el("p", { class: "composer-error", id: "composer-error", role: "alert", hidden: "" });
  const templates = el("div", { class: "composer-templates", id: "composer-templates", hidden: "" });
  const form = el("form", { class: "composer-form", id: "composer-form" },
    el("div", { class: "composer-row" }, el("label", { for: "composer-channel", class: "visually-hidden" }, "Channel"), channel,
      el("label", { for: "composer-body", class: "visually-hidden" }, "Reply"), body, send),
    el("div", { class: "composer-meta" }, counter, swap));
  const consent = buildConsentForm();
  const flag = el("div", { class: "composer-flag", id: "composer-flag", role: "status", hidden: "" },
    el("p", { "data-part": "text" }),
    el("button", { type: "button", class: "button", id: "composer-flag-record" }, "Record opt-out"));
  root.replaceChildren(flag, lock, form, templates, error, consent);
  flag.querySelector("button").addEventListener("click", recordFlaggedOptOut);
  form.addEventListener("submit", (event) => { event.preventDefault(); submitText(); });
  body.addEventListener("input", () => { state.key = null; updateCount(); });
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  channel.addEventListener("change", () => { state.key = null; updateLock(); updateCount(); });
  swap.addEventListener("click", () => {
    body.value = plainSwaps(body.value);
    state.key = null;
    updateCount();
    body.focus();
  });
}

function flaggedMessage() {
  const conversation = state.conversation;
  const messages = (conversation?.messages || []).filter((m) => m.direction === "inbound");
  const flagged = messages.filter((m) => m.probable_opt_out).at(-1);
  if (!flagged || consentOf(conversation, flagged.channel) === "opted_out") return null;
  // Once they have been recorded opted in after it (or out, above), the question is settled.
  return flagged;
}

function updateFlag() {
  const flag = document.getElementById("composer-flag");
  const flagged = flaggedMessage();
  flag.hidden = !flagged;
  if (!flagged) return;
  flag.querySelector("[data-part='text']").textContent =
    `“${flagged.body.slice(0, 120)}” reads like a request to stop ${channelName(flagged.channel)} messages. `
    + "US rules ask you to honour it.";
  flag.dataset.channel = flagged.channel;
  flag.dataset.sid = flagged.sid || "";
}

async function recordFlaggedOptOut() {
  const flagged = flaggedMessage();
  if (!flagged) return;
  try {
    await api.post(`/api/customers/${state.conversation.customer.id}/consent`, {
      channel: flagged.channel, action: "opt_out",
      note: `Asked in their message ${flagged.sid || flagged.id}: “${flagged.body.slice(0, 200)}”`,
    });
    showError("");
  } catch (error) {
    showError(error instanceof ApiError ? error.message : "The opt-out could not be recorded.");
  }
}

async function showHistory(list) {
  list.replaceChildren(el("li", {}, "Loading…"));
  try {
    const { records } = await api.get(`/api/customers/${state.conversation.customer.id}/consent`);
    const label = { opt_out: "opted out", opt_in: "opted in" };
    const source = { keyword: "by text", staff: "recorded by staff", twilio_21610: "reported by Twilio (21610)",
      import: "imported" };
    list.replaceChildren(...(records.length ? records.map((r) => el("li", {},
      `${new Date(r.occurred_at).toLocaleString()}: ${channelName(r.channel)} ${label[r.action]} `
      + `${source[r.source] || r.source}${r.evidence?.note ? ` (“${r.evidence.note}”)` : ""}`
      + `${r.evidence?.body ? ` (“${r.evidence.body}”)` : ""}`)) : [el("li", {}, "No consent changes on record.")]));
  } catch (error) {
    list.replaceChildren(el("li", {}, error.message || "The history could not be loaded."));
  }
}

function buildConsentForm() {
  const details = el("details", { class: "consent-record", id: "consent-record" },
    el("summary", {}, "Consent: history, and record a change the customer asked for"));
  const history = el("ol", { class: "consent-history", id: "consent-history", "aria-label": "Consent history" });
  details.addEventListener("toggle", () => { if (details.open) showHistory(history); });
  const form = el("form", { id: "consent-form", class: "consent-form" },
    el("label", {}, "Channel ", el("select", { name: "channel" }, el("option", { value: "sms" }, "SMS"),
      el("option", { value: "whatsapp" }, "WhatsApp"))),
    el("label", {}, "Change ", el("select", { name: "action" }, el("option", { value: "opt_out" }, "Opt out (stop messaging)"),
      el("option", { value: "opt_in" }, "Opt in (may message again)"))),
    el("label", {}, "How they asked ", el("input", { name: "note", required: "", maxlength: "1000",
      placeholder: "e.g. Asked on the phone on Tuesday" })),
    el("button", { type: "submit", class: "button button-quiet" }, "Record"),
    el("p", { class: "consent-result", role: "status" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = form.querySelector(".consent-result");
    const data = new FormData(form);
    try {
      await api.post(`/api/customers/${state.conversation.customer.id}/consent`, {
        channel: data.get("channel"), action: data.get("action"), note: data.get("note"),
      });
      result.textContent = "Recorded.";
      form.reset();
      showHistory(history);
    } catch (error) {
      result.textContent = error instanceof ApiError ? error.message : "It could not be recorded.";
    }
  });
  details.append(history, form);
  return details;
}

function parts() {
  return {
    channel: document.getElementById("composer-channel"), body: document.getElementById("composer-body"),
    counter: document.getElementById("composer-count"), swap: document.getElementById("composer-swap"),
    send: document.getElementById("composer-send"), lock: document.getElementById("composer-lock"),
    error: document.getElementById("composer-error"), templates: document.getElementById("composer-templates"),
  };
}

function updateCount() {
  const { body, counter, swap, send } = parts();
  const info = count(body.value);
  const over = info.characters > MAX_BODY;
  let text = `${info.characters.toLocaleString()} / ${MAX_BODY.toLocaleString()} characters · ${info.encoding} · `
    + `${info.segments} segment${info.segments === 1 ? "" : "s"}`;
  if (info.encoding === "UCS-2" && info.nonGsm.length) text += ` (because of ${info.nonGsm.slice(0, 6).join(" ")})`;
  counter.textContent = text;
  counter.dataset.encoding = info.encoding;
  counter.classList.toggle("is-over", over);
  swap.hidden = plainSwaps(body.value) === body.value;
  send.disabled = state.sending || over || !body.value.trim() || isLocked();
}

function isLocked() {
  const { channel } = parts();
  return consentOf(state.conversation, channel.value) === "opted_out";
}

function updateLock() {
  const { channel, body, lock } = parts();
  const locked = isLocked();
  body.disabled = locked;
  lock.hidden = !locked;
  lock.textContent = locked
    ? `${whoIs(state.conversation)} has opted out of ${channelName(channel.value)} messages. `
      + "Nobody can message them there until they text START."
    : "";
  updateCount();
}

function showError(message) {
  const { error } = parts();
  error.textContent = message || "";
  error.hidden = !message;
}

function newKey() {
  return window.crypto?.randomUUID ? window.crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

async function post(payload) {
  const conversationId = state.conversation.id;
  state.key ||= newKey(); // the same key until it succeeds: a retry sends once
  state.sending = true;
  updateCount();
  try {
    await api.post(`/api/conversations/${conversationId}/messages`, payload, { headers: { "Idempotency-Key": state.key } });
    state.key = null;
    showError("");
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.code === "whatsapp_window_closed") offerTemplates();
    showError(error instanceof ApiError ? error.message : "The reply could not be sent.");
    return false;
  } finally {
    state.sending = false;
    updateCount();
  }
}

async function submitText() {
  const { body, channel } = parts();
  if (!body.value.trim() || isLocked()) return;
  if (await post({ body: body.value, channel: channel.value })) {
    body.value = "";
    updateCount();
    body.focus();
  }
}

async function offerTemplates() {
  const { templates } = parts();
  if (state.templates === null) {
    try {
      state.templates = (await api.get("/api/whatsapp-templates")).templates;
    } catch {
      state.templates = [];
    }
  }
  if (!state.templates.length) {
    templates.replaceChildren(el("p", {}, "No approved WhatsApp templates are registered. A manager can add them in Settings."));
    templates.hidden = false;
    return;
  }
  const select = el("select", { id: "template-choice", "aria-label": "Template" },
    ...state.templates.map((t, index) => el("option", { value: String(index) }, t.name)));
  const fields = el("div", { class: "template-fields" });
  const preview = el("p", { class: "template-preview" });
  const sendTemplate = el("button", { type: "button", class: "button" }, "Send template");
  const render = () => {
    const template = state.templates[Number(select.value)];
    fields.replaceChildren(...template.variables.map((name, index) =>
      el("label", {}, `${name} `, el("input", { "data-index": String(index + 1), required: "" }))));
    preview.textContent = template.body;
  };
  select.addEventListener("change", render);
  sendTemplate.addEventListener("click", async () => {
    const template = state.templates[Number(select.value)];
    const variables = {};
    for (const input of fields.querySelectorAll("input")) variables[input.dataset.index] = input.value;
    if (await post({ channel: "whatsapp", content_sid: template.content_sid, content_variables: variables })) {
      templates.hidden = true;
    }
  });
  templates.replaceChildren(el("p", {}, "Outside the 24-hour window: choose an approved template."), select, fields,
    preview, sendTemplate);
  render();
  templates.hidden = false;
}

function show(conversation, { fresh }) {
  state.conversation = conversation;
  if (!document.getElementById("composer-form")) build();
  const { channel, templates } = parts();
  if (fresh) {
    channel.value = defaultChannel(conversation);
    templates.hidden = true;
    showError("");
    state.key = null;
  }
  root.hidden = false;
  updateLock();
  updateFlag();
}

if (root) {
  document.addEventListener("inbox:conversation-opened", (event) => show(event.detail.conversation, { fresh: true }));
  document.addEventListener("inbox:conversation-changed", (event) => {
    if (state.conversation && String(event.detail.id) === String(state.conversation.id)) {
      // Header changes (name, consent) come with the thread's copy; keep every message we have seen.
      const known = new Map((state.conversation.messages || []).map((m) => [m.id, m]));
      for (const m of event.detail.conversation?.messages || []) known.set(m.id, m);
      const messages = [...known.values()].sort((a, b) => a.id - b.id);
      show({ ...state.conversation, ...event.detail.conversation, messages }, { fresh: false });
    }
  });
  live.subscribe("message.created", (event) => {
    const message = event.data?.message;
    if (!state.conversation || !message || String(event.conversation_id) !== String(state.conversation.id)) return;
    const messages = state.conversation.messages || (state.conversation.messages = []);
    if (!messages.some((m) => m.id === message.id)) messages.push(message);
    updateFlag();
  });
  document.addEventListener("inbox:conversation-closed", () => {
    state.conversation = null;
    root.hidden = true;
  });
}
