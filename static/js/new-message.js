/**
 * new-message.js: the inbox's "New message" dialog: write to a number first.
 *
 * A person types a number in any usual format; the server reads it back (GET
 * /api/phone-numbers/parse, INBOX_DEFAULT_COUNTRY for numbers without +country) and the dialog
 * shows it as it will be dialled ("+44 7700 900123") before anything can be sent, and says when
 * the number is a known customer's. Send POSTs /api/conversations with an Idempotency-Key kept
 * until it succeeds; on success the dialog closes and the conversation opens (the
 * inbox:open-conversation event, inbox.js). Refusals are shown in words; WhatsApp to someone
 * whose 24-hour window is not open offers the approved templates instead of free text.
 */

import { api, ApiError, whatsappTemplates } from "./api.js";
import { el } from "./dom.js";

const MAX_BODY = 1600;
const ECHO_DELAY = 200;
const opener = document.getElementById("new-message-open");
const state = { parsed: null, seq: 0, timer: null, key: null, templates: null, sending: false };
let dialog = null;

function newKey() {
  return window.crypto?.randomUUID ? window.crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

function build() {
  const to = el("input", { id: "new-message-to", name: "to", type: "tel", autocomplete: "off", maxlength: "40",
    required: "", "aria-describedby": "new-message-number", placeholder: "(415) 555-0142 or +44 7700 900123" });
  const echo = el("p", { class: "help new-message-number", id: "new-message-number", "aria-live": "polite" },
    "Type the number as you would dial it.");
  const channel = el("select", { id: "new-message-channel", name: "channel" },
    el("option", { value: "sms" }, "SMS"), el("option", { value: "whatsapp" }, "WhatsApp"));
  const body = el("textarea", { id: "new-message-body", name: "body", rows: "4", maxlength: String(MAX_BODY) });
  const templates = el("div", { class: "new-message-templates", id: "new-message-templates", hidden: "" });
  const error = el("p", { class: "notice notice-error", id: "new-message-error", role: "alert", hidden: "" });
  const send = el("button", { type: "submit", class: "button button-primary", id: "new-message-send", disabled: "" },
    "Send");
  const cancel = el("button", { type: "button", class: "button button-quiet", id: "new-message-cancel" }, "Cancel");
  const form = el("form", { class: "form new-message-form", id: "new-message-form", novalidate: "" },
    el("h2", { id: "new-message-title" }, "New message"),
    el("div", { class: "field" }, el("label", { for: "new-message-to" }, "To"), to, echo),
    el("div", { class: "field" }, el("label", { for: "new-message-channel" }, "Send by"), channel),
    el("div", { class: "field", id: "new-message-text" }, el("label", { for: "new-message-body" }, "Message"), body),
    templates, error,
    el("p", { class: "form-actions" }, send, cancel));
  dialog = el("dialog", { class: "new-message", id: "new-message", "aria-labelledby": "new-message-title" }, form);
  document.body.append(dialog);
  to.addEventListener("input", () => { state.key = null; scheduleEcho(); });
  body.addEventListener("input", () => { state.key = null; showError(""); update(); });
  channel.addEventListener("change", () => { state.key = null; showError(""); templates.hidden = true; update(); });
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (event) => { event.preventDefault(); submit({ body: body.value }); });
}

function parts() {
  const byId = (id) => document.getElementById(id);
  return { to: byId("new-message-to"), echo: byId("new-message-number"), channel: byId("new-message-channel"),
    body: byId("new-message-body"), templates: byId("new-message-templates"), send: byId("new-message-send"),
    error: byId("new-message-error"), text: byId("new-message-text") };
}

function showError(message) {
  const { error } = parts();
  error.textContent = message || "";
  error.hidden = !message;
}

function update() {
  const { send, body, templates, text } = parts();
  text.hidden = !templates.hidden;
  send.hidden = !templates.hidden;
  send.disabled = state.sending || !state.parsed || !body.value.trim() || body.value.length > MAX_BODY;
}

function scheduleEcho() {
  clearTimeout(state.timer);
  state.parsed = null;
  update();
  state.timer = setTimeout(echoNumber, ECHO_DELAY);
}

/** The number as the server will dial it, or why it cannot be. */
async function echoNumber() {
  const { to, echo } = parts();
  const typed = to.value.trim();
  const seq = ++state.seq;
  echo.dataset.state = "";
  if (!typed) {
    echo.textContent = "Type the number as you would dial it.";
    return;
  }
  try {
    const parsed = await api.get("/api/phone-numbers/parse", { query: { number: typed } });
    if (seq !== state.seq) return;
    state.parsed = parsed;
    echo.dataset.state = "ok";
    echo.dataset.e164 = parsed.e164;
    echo.textContent = `Will be sent to ${parsed.international}${parsed.country ? ` (${parsed.country})` : ""}`
      + (parsed.conversation_id ? ": a customer already, their conversation continues." : ".");
  } catch (error) {
    if (seq !== state.seq) return;
    state.parsed = null;
    echo.dataset.state = "invalid";
    echo.textContent = error instanceof ApiError ? error.message : "The number could not be checked.";
  }
  update();
}

async function submit(content) {
  const { to, channel, send } = parts();
  if (state.sending || !state.parsed || (content.body !== undefined && send.disabled)) return;
  state.key ||= newKey();
  state.sending = true;
  update();
  try {
    const answer = await api.post("/api/conversations", { to: to.value.trim(), channel: channel.value, ...content },
      { headers: { "Idempotency-Key": state.key } });
    state.key = null;
    dialog.close();
    document.dispatchEvent(new CustomEvent("inbox:open-conversation", { detail: { id: answer.conversation.id } }));
  } catch (error) {
    showError(error instanceof ApiError ? error.message : "The message could not be sent.");
    if (error instanceof ApiError && error.code === "whatsapp_window_closed") offerTemplates();
  } finally {
    state.sending = false;
    update();
  }
}

/** Outside WhatsApp's window only an approved template may start the conversation. */
async function offerTemplates() {
  const { templates } = parts();
  state.templates = await whatsappTemplates();
  if (!state.templates.length) {
    templates.replaceChildren(el("p", {}, "No approved WhatsApp templates are registered: a manager adds them in Settings."));
    templates.hidden = false;
    update();
    return;
  }
  const select = el("select", { id: "new-message-template", "aria-label": "Template" },
    ...state.templates.map((t, index) => el("option", { value: String(index) }, t.name)));
  const fields = el("div", { class: "template-fields" });
  const render = () => {
    const template = state.templates[Number(select.value)];
    const count = Math.max(template.variables.length,
      ...[...(template.body || "").matchAll(/\{\{\s*(\d{1,2})\s*\}\}/g)].map((m) => Number(m[1])));
    fields.replaceChildren(...Array.from({ length: count }, (_, i) => el("label", {},
      `${template.variables[i] || `Variable ${i + 1}`} `,
      el("input", { "data-index": String(i + 1), required: "", maxlength: "1024", autocomplete: "off" }))));
  };
  const sendTemplate = el("button", { type: "button", class: "button button-primary" }, "Send template");
  sendTemplate.addEventListener("click", () => {
    const inputs = [...fields.querySelectorAll("input")];
    const blank = inputs.find((input) => !input.value.trim());
    if (blank) {
      showError("Fill in every variable of the template.");
      blank.focus();
      return;
    }
    submit({ content_sid: state.templates[Number(select.value)].content_sid,
      content_variables: Object.fromEntries(inputs.map((input) => [input.dataset.index, input.value])) });
  });
  select.addEventListener("change", render);
  templates.replaceChildren(el("p", {}, "Choose an approved template:"), select, fields, sendTemplate);
  render();
  templates.hidden = false;
  update();
}

function open() {
  if (!dialog) build();
  const { to, body, templates, channel } = parts();
  to.value = "";
  body.value = "";
  channel.value = "sms";
  templates.hidden = true;
  state.parsed = null;
  state.key = null;
  showError("");
  echoNumber();
  dialog.showModal();
  to.focus();
}

if (opener) opener.addEventListener("click", open);
