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
 *
 * An unsent reply is a draft of its conversation (drafts.js): opening another conversation shows
 * that one's draft (empty if nobody typed there), coming back restores it, a reload keeps it.
 * On WhatsApp the counter shows WhatsApp's limit (no SMS segments) and the 24-hour window's state
 * before anything is sent.
 */

import { api, ApiError, whatsappTemplates } from "./api.js";
import { el, ui } from "./dom.js";
import { live } from "./live.js";
import { count, plainSwaps } from "./segments.js";
import { drafts } from "./drafts.js";
import { mountAttachments } from "./attachments.js";
import { unfilledFields } from "./quick-replies.js";
import { clearSchedule, scheduleControls, scheduledFields, schedulingOpen } from "./schedule.js";

const MAX_BODY = 1600;
const PASTE_ROOM = 200; // the textarea takes this much past the limit, so an over-long text can be trimmed
const WINDOW_MS = 24 * 60 * 60 * 1000;
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
  const body = el("textarea", { id: "composer-body", rows: "3", maxlength: String(MAX_BODY + PASTE_ROOM),
    placeholder: "Write a reply… (Enter sends, Shift+Enter for a new line)", "aria-describedby": "composer-count" });
  const counter = el("p", { id: "composer-count", class: "composer-count", "aria-live": "polite" });
  const swap = el("button", { type: "button", class: "button button-quiet", id: "composer-swap", hidden: "" },
    "Use plain quotes and dashes");
  const send = el("button", { type: "submit", class: "button", id: "composer-send" }, "Send");
  const lock = el("p", { class: "composer-lock", id: "composer-lock", role: "status", hidden: "" });
  const error = el("p", { class: "composer-error", id: "composer-error", role: "alert", hidden: "" });
  const notice = el("p", { class: "composer-notice", id: "composer-notice", role: "status", hidden: "" });
  const window24 = el("p", { class: "composer-window", id: "composer-window", role: "status", hidden: "" });
  const templates = el("div", { class: "composer-templates", id: "composer-templates", hidden: "" });
  const form = el("form", { class: "composer-form", id: "composer-form" },
    el("div", { class: "composer-row" }, el("label", { for: "composer-channel", class: "visually-hidden" }, "Channel"), channel,
      el("label", { for: "composer-body", class: "visually-hidden" }, "Reply"), body, send),
    el("div", { class: "composer-meta" }, counter, swap), scheduleControls(() => state.conversation));
  const consent = buildConsentForm();
  const flag = el("div", { class: "composer-flag", id: "composer-flag", role: "status", hidden: "" },
    el("p", { "data-part": "text" }),
    el("button", { type: "button", class: "button", id: "composer-flag-record" }, "Record opt-out"));
  root.replaceChildren(flag, lock, window24, form, notice, templates, error, consent);
  state.files = mountAttachments({ form, body, onChange: () => { state.key = null; updateCount(); } });
  flag.querySelector("button").addEventListener("click", recordFlaggedOptOut);
  form.addEventListener("submit", (event) => { event.preventDefault(); submitText(); });
  body.addEventListener("input", () => {
    state.key = null;
    showError("");
    if (body.value.length < MAX_BODY + PASTE_ROOM) showNotice("");
    drafts.set(state.conversation?.id, body.value);
    updateCount();
  });
  body.addEventListener("paste", onPaste);
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      // Enter sends only what the Send button would: never an over-long or locked reply.
      if (!parts().send.disabled) form.requestSubmit();
    }
  });
  channel.addEventListener("change", () => { state.key = null; showError(""); updateLock(); updateCount(); });
  swap.addEventListener("click", () => {
    body.value = plainSwaps(body.value);
    drafts.set(state.conversation?.id, body.value);
    state.key = null;
    updateCount();
    body.focus();
  });
}

/** A paste that does not fit is cut by us, not silently by the browser, and says so. */
function onPaste(event) {
  const body = event.currentTarget;
  const text = event.clipboardData?.getData("text/plain");
  if (!text) return;
  const limit = MAX_BODY + PASTE_ROOM;
  const room = limit - (body.value.length - (body.selectionEnd - body.selectionStart));
  if (text.length <= room) return;
  event.preventDefault();
  const kept = text.slice(0, Math.max(0, room));
  body.setRangeText(kept, body.selectionStart, body.selectionEnd, "end");
  body.dispatchEvent(new Event("input", { bubbles: true }));
  showNotice(`The pasted text was cut: ${(text.length - kept.length).toLocaleString()} characters did not fit `
    + `(replies are limited to ${MAX_BODY.toLocaleString()} characters).`);
}

function showNotice(message) {
  const notice = document.getElementById("composer-notice");
  if (!notice) return;
  notice.textContent = message || "";
  notice.hidden = !message;
}

/** The customer's last WhatsApp message: the 24-hour window runs from it. */
function lastWhatsAppInbound(conversation) {
  return (conversation?.messages || []).filter((m) => m.direction === "inbound" && m.channel === "whatsapp").at(-1);
}

/** {open: bool, text} for the WhatsApp window now, or null when the channel is not WhatsApp. */
export function whatsappWindow(conversation, now = Date.now()) {
  const last = lastWhatsAppInbound(conversation);
  if (!last) {
    return { open: false, text: "This customer has not written on WhatsApp, so only an approved template can start a WhatsApp conversation." };
  }
  const left = Date.parse(last.created_at) + WINDOW_MS - now;
  if (left <= 0) {
    return { open: false, text: "WhatsApp window closed: the customer last wrote on WhatsApp more than 24 hours ago. Use an approved template." };
  }
  const totalMinutes = Math.floor(left / 60_000);
  const hours = Math.floor(totalMinutes / 60);
  const minutes = totalMinutes % 60;
  let when = hours ? `${hours} h${minutes ? ` ${minutes} min` : ""}` : `${minutes} min`;
  if (!totalMinutes) when = "less than a minute";
  return { open: true, text: `WhatsApp window open: it closes in ${when}; after that only an approved template can be sent.` };
}

function updateWindow() {
  const { channel } = parts();
  const box = document.getElementById("composer-window");
  const whatsapp = channel.value === "whatsapp" && !isLocked();
  const info = whatsapp ? whatsappWindow(state.conversation) : null;
  box.hidden = !info;
  box.textContent = info ? info.text : "";
  box.dataset.state = info ? (info.open ? "open" : "closed") : "";
  const { templates } = parts();
  if (info && !info.open) {
    if (templates.hidden) offerTemplates(); // not again on every update: it would wipe typed variables
  } else {
    templates.hidden = true;
  }
}

function windowClosed() {
  const { channel } = parts();
  return channel.value === "whatsapp" && !whatsappWindow(state.conversation).open;
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
  const { body, counter, swap, send, channel } = parts();
  const info = count(body.value);
  const over = info.characters > MAX_BODY;
  const whatsapp = channel.value === "whatsapp";
  let text = `${info.characters.toLocaleString()} / ${MAX_BODY.toLocaleString()} characters`;
  if (whatsapp) {
    // WhatsApp has no SMS segments or GSM-7/UCS-2 encodings: one message whatever the characters.
    text += " · WhatsApp message";
    counter.dataset.encoding = "";
  } else {
    text += ` · ${info.encoding} · ${info.segments} segment${info.segments === 1 ? "" : "s"}`;
    if (info.encoding === "UCS-2" && info.nonGsm.length) text += ` (because of ${info.nonGsm.slice(0, 6).join(" ")})`;
    counter.dataset.encoding = info.encoding;
  }
  counter.textContent = text;
  counter.classList.toggle("is-over", over);
  swap.hidden = whatsapp || plainSwaps(body.value) === body.value;
  const files = state.files?.count() || 0;
  // A saved reply's field nobody could fill ({first_name}) is never sent (quick-replies.js shows it).
  send.disabled = state.sending || over || (!body.value.trim() && !files) || state.files?.busy() || isLocked()
    || windowClosed() || unfilledFields(body.value).length > 0;
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
  updateWindow();
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
  const { body, channel, send } = parts();
  if (send.disabled) return;
  const conversationId = state.conversation.id;
  const text = body.value;
  // presence.js marks #thread when someone else typed here in the last seconds
  const typist = ui.thread.dataset.otherTyping;
  if (typist && Date.now() - Number(ui.thread.dataset.otherTypingAt || 0) < 8000) {
    if (!window.confirm(`${typist} was typing a reply here a moment ago. Send yours anyway?`)) return;
  }
  let later; // {send_at} while "Send later" is open (schedule.js)
  try {
    later = scheduledFields();
  } catch (error) {
    showError(error.message);
    return;
  }
  const media = state.files?.ids() || [];
  if (await post({ body: text, channel: channel.value, ...later, ...(media.length ? { media_ids: media } : {}) })) {
    clearSchedule();
    state.files?.clear();
    drafts.set(conversationId, "");
    // Only clear the box if it still shows this conversation's reply.
    if (state.conversation && String(state.conversation.id) === String(conversationId) && body.value === text) {
      body.value = "";
      updateCount();
      body.focus();
    }
  }
}

async function offerTemplates() {
  const { templates } = parts();
  state.templates = await whatsappTemplates();
  if (!state.templates.length) {
    templates.replaceChildren(el("p", {}, "No approved WhatsApp templates are registered. A manager can add them in Settings."));
    templates.hidden = false;
    return;
  }
  const select = el("select", { id: "template-choice", "aria-label": "Template" },
    ...state.templates.map((t, index) => el("option", { value: String(index) }, t.name)));
  const fields = el("div", { class: "template-fields" });
  const preview = el("p", { class: "template-preview" });
  const sendTemplate = el("button", { type: "button", class: "button", id: "template-send" },
    schedulingOpen() ? "Schedule template" : "Send template");
  const values = () => Object.fromEntries([...fields.querySelectorAll("input")].map((i) => [i.dataset.index, i.value]));
  const showPreview = () => {
    const template = state.templates[Number(select.value)];
    const filled = values();
    preview.textContent = (template.body || "").replace(/\{\{\s*(\d{1,2})\s*\}\}/g,
      (whole, n) => (filled[n] || "").trim() || whole);
  };
  const render = () => {
    const template = state.templates[Number(select.value)];
    const count = Math.max(template.variables.length,
      ...[...(template.body || "").matchAll(/\{\{\s*(\d{1,2})\s*\}\}/g)].map((m) => Number(m[1])));
    const names = Array.from({ length: count }, (_, i) => template.variables[i] || `Variable ${i + 1}`);
    fields.replaceChildren(...names.map((name, index) =>
      el("label", {}, `${name} `, el("input", { "data-index": String(index + 1), "data-name": name, required: "",
        maxlength: "1024", autocomplete: "off" }))));
    showPreview();
  };
  select.addEventListener("change", () => { showError(""); render(); });
  fields.addEventListener("input", () => { showError(""); showPreview(); });
  sendTemplate.addEventListener("click", async () => {
    const template = state.templates[Number(select.value)];
    const blank = [...fields.querySelectorAll("input")].filter((input) => !input.value.trim());
    if (blank.length) {
      // Every variable is required: a blank one would reach the customer as a gap.
      showError(`Fill in every variable: ${blank.map((input) => input.dataset.name).join(", ")}.`);
      blank[0].focus();
      return;
    }
    let later; // {send_at} while "Send later" is open: a reminder can be a template sent tomorrow
    try {
      later = scheduledFields();
    } catch (error) {
      showError(error.message);
      return;
    }
    if (await post({ channel: "whatsapp", content_sid: template.content_sid, content_variables: values(), ...later })) {
      templates.hidden = true;
      clearSchedule();
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
  const { channel, templates, body } = parts();
  if (fresh) {
    channel.value = defaultChannel(conversation);
    templates.hidden = true;
    showError("");
    showNotice("");
    state.key = null;
    state.sending = false;
    clearSchedule();
    state.files?.clear();
    body.value = drafts.get(conversation.id);
  }
  root.dataset.conversationId = String(conversation.id);
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
    if (message.direction === "inbound") updateLock(); // a WhatsApp message opens the window
  });
  // The window's countdown, once a minute.
  setInterval(() => { if (state.conversation && !root.hidden) updateLock(); }, 60_000);
  // While another conversation loads, the box is hidden: Enter can never send the previous
  // conversation's text under the next one's name.
  for (const name of ["inbox:conversation-loading", "inbox:conversation-closed"]) {
    document.addEventListener(name, () => {
      state.conversation = null;
      root.hidden = true;
      root.dataset.conversationId = "";
    });
  }
}
