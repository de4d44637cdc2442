/**
 * schedule.js: scheduled replies.
 *
 * In the composer, "Send later" opens a date and a time read in the business's time zone
 * (body[data-timezone], the INBOX_TIMEZONE setting), whatever zone this browser is in, with a hint
 * of what time that is for the customer (their `time_zone`, from their number). While it is open
 * the Send button reads "Schedule" (a WhatsApp template's, "Schedule template") and the reply is
 * POSTed with `send_at` (an instant with its offset). In the thread, each scheduled reply carries "Scheduled for Tue 09:00" with "Cancel"
 * (DELETE /api/messages/{id}) and "Send now" (POST /api/messages/{id}/send-now); the change
 * comes back through the live events like any other.
 *
 *   scheduleControls(conversationOf)  the composer's "Send later" part (conversationOf() -> the open one)
 *   scheduledFields()                 {send_at} while a time is chosen, else {}; throws Error(sentence)
 *   clearSchedule()                   back to sending at once
 *   schedulingOpen()                  whether "Send later" is open
 *   paintSchedule(item, message)      thread.js calls it for every message it paints
 */

import { ApiError, request } from "./api.js";
import { el, setText } from "./dom.js";

const state = { conversationOf: () => null };
const byId = (id) => document.getElementById(id);

export function businessZone() {
  return document.body.dataset.timezone || "UTC";
}

function zoneLabel(zone) {
  return zone.replace(/_/g, " ");
}

/** Milliseconds `zone` is ahead of UTC at the instant `ms`. */
function zoneOffset(zone, ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour) % 24,
    Number(parts.minute), Number(parts.second));
  return wall - Math.floor(ms / 1000) * 1000;
}

/** The instant a wall-clock date ("2026-03-03") and time ("09:00") in `zone` name, or null. */
export function wallTimeInZone(zone, date, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  const t = /^(\d{2}):(\d{2})/.exec(time || "");
  if (!d || !t) return null;
  const wall = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]));
  // Twice: the first guess may sit on the other side of a daylight-saving change.
  let instant = wall - zoneOffset(zone, wall);
  instant = wall - zoneOffset(zone, instant);
  return new Date(instant);
}

/** "Tue 09:00" within the coming week, else "Tue 14 Jan, 09:00", in `zone`. */
export function describeTime(instant, zone, now = new Date()) {
  const soon = instant - now < 6 * 24 * 3600 * 1000;
  const options = soon
    ? { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
    : { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  return new Intl.DateTimeFormat(undefined, { ...options, timeZone: zone }).format(instant);
}

/** Today's date in `zone`, plus `days`, as the value of a date input. */
function dateIn(zone, days = 0) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(Date.now() + days * 24 * 3600 * 1000)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

// ---- the composer ------------------------------------------------------------------------

export function scheduleControls(conversationOf) {
  state.conversationOf = conversationOf;
  const zone = businessZone();
  const toggle = el("button", { type: "button", class: "button button-quiet", id: "schedule-toggle",
    "aria-expanded": "false", "aria-controls": "schedule-fields" }, "Send later");
  const fields = el("fieldset", { class: "schedule-fields", id: "schedule-fields", hidden: "" },
    el("legend", {}, `Send later (${zoneLabel(zone)} time)`),
    el("label", { for: "schedule-date" }, "Date"),
    el("input", { type: "date", id: "schedule-date" }),
    el("label", { for: "schedule-time" }, "Time"),
    el("input", { type: "time", id: "schedule-time" }),
    el("button", { type: "button", class: "button button-quiet", id: "schedule-clear" }, "Send at once instead"),
    el("p", { class: "schedule-hint", id: "schedule-hint", "aria-live": "polite" }));
  toggle.addEventListener("click", () => open());
  fields.querySelector("#schedule-clear").addEventListener("click", () => { clearSchedule(); byId("composer-body")?.focus(); });
  fields.addEventListener("input", updateHint);
  return el("div", { class: "schedule", id: "composer-schedule" }, toggle, fields);
}

function open() {
  const zone = businessZone();
  byId("schedule-date").value ||= dateIn(zone, 1);
  byId("schedule-time").value ||= "09:00";
  byId("schedule-fields").hidden = false;
  byId("schedule-toggle").hidden = true;
  byId("schedule-toggle").setAttribute("aria-expanded", "true");
  setSendLabel(true);
  updateHint();
  byId("schedule-date").focus();
}

export function clearSchedule() {
  const fields = byId("schedule-fields");
  if (!fields) return;
  fields.hidden = true;
  byId("schedule-date").value = "";
  byId("schedule-time").value = "";
  byId("schedule-toggle").hidden = false;
  byId("schedule-toggle").setAttribute("aria-expanded", "false");
  setSendLabel(false);
}

/** Whether "Send later" is open: what the composer's send buttons do. */
export function schedulingOpen() {
  const fields = byId("schedule-fields");
  return Boolean(fields && !fields.hidden);
}

function setSendLabel(scheduling) {
  const send = byId("composer-send");
  if (send) send.textContent = scheduling ? "Schedule" : "Send";
  const template = byId("template-send"); // the WhatsApp template panel's button, when it is shown
  if (template) template.textContent = scheduling ? "Schedule template" : "Send template";
}

function chosen() {
  const fields = byId("schedule-fields");
  if (!fields || fields.hidden) return null;
  return wallTimeInZone(businessZone(), byId("schedule-date").value, byId("schedule-time").value);
}

function updateHint() {
  const hint = byId("schedule-hint");
  if (!hint) return;
  const instant = chosen();
  const customerZone = state.conversationOf()?.customer?.time_zone;
  let text = "";
  if (!instant) text = "Choose a date and a time.";
  else if (instant <= new Date()) text = "That time has already passed.";
  else if (customerZone && customerZone !== businessZone()) {
    text = `That is ${describeTime(instant, customerZone)} for the customer (${zoneLabel(customerZone)}).`;
  } else if (customerZone) text = "The customer is in the same time zone.";
  setText(hint, text);
}

/** What to add to the reply's body: {send_at} while "Send later" is open. */
export function scheduledFields() {
  const fields = byId("schedule-fields");
  if (!fields || fields.hidden) return {};
  const instant = chosen();
  if (!instant) throw new Error("Choose a date and a time to send it, or send it at once.");
  if (instant <= new Date()) throw new Error("That time has already passed: choose a time in the future.");
  return { send_at: instant.toISOString() };
}

// ---- the thread --------------------------------------------------------------------------

export function paintSchedule(item, message) {
  let bar = item.querySelector(":scope > .message-schedule");
  if (message.status !== "scheduled" || !message.send_at) {
    bar?.remove();
    return;
  }
  if (!bar) {
    bar = el("div", { class: "message-schedule" },
      el("span", { class: "message-schedule-when" }),
      el("button", { type: "button", class: "button button-quiet", "data-schedule-action": "cancel" }, "Cancel"),
      el("button", { type: "button", class: "button button-quiet", "data-schedule-action": "send-now" }, "Send now"),
      el("span", { class: "message-schedule-error", role: "alert", hidden: "" }));
    item.append(bar);
  }
  bar.dataset.messageId = String(message.id);
  const instant = new Date(message.send_at);
  const when = bar.querySelector(".message-schedule-when");
  setText(when, `Scheduled for ${describeTime(instant, businessZone())}`);
  when.title = `${instant.toLocaleString(undefined, { timeZone: businessZone(), dateStyle: "full", timeStyle: "short" })}`
    + ` (${zoneLabel(businessZone())})`;
}

async function act(button) {
  const bar = button.closest(".message-schedule");
  const id = bar?.dataset.messageId;
  if (!id) return;
  const error = bar.querySelector(".message-schedule-error");
  const buttons = bar.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    if (button.dataset.scheduleAction === "cancel") await request("DELETE", `/api/messages/${encodeURIComponent(id)}`);
    else await request("POST", `/api/messages/${encodeURIComponent(id)}/send-now`);
    error.hidden = true;
  } catch (failure) {
    setText(error, failure instanceof ApiError ? failure.message : "That did not work; try again.");
    error.hidden = false;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-schedule-action]") : null;
  if (button) act(button);
});
