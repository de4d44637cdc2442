/**
 * customer-card.js: the open thread's customer card (#customer-card) and their local time
 * beside the composer (#customer-clock).
 *
 *   GET /api/customers/{id}     fills the card: name, notes, phone, consent, first and last contact,
 *                               how many messages (and how many from them)
 *   PATCH /api/customers/{id}   saves the name and notes
 *   live customer.updated       refreshes the fields nobody is editing here
 *
 * The local time comes from the customer's `time_zone` (from their number) through Intl, and is
 * redrawn every 30 seconds. Customer text only ever goes through textContent and input values.
 */

import { api } from "./api.js";
import { fullTime, setText } from "./dom.js";
import { live } from "./live.js";

const byId = (id) => document.getElementById(id);
const CONSENT = { opted_in: "opted in", opted_out: "opted out", unknown: "unknown" };

let customer = null; // the open thread's customer card
let conversationId = null;

function clockText(zone) {
  try {
    const time = new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: "2-digit", minute: "2-digit" }).format(new Date());
    return `It is ${time} for them (${zone.replace(/_/g, " ")})`;
  } catch {
    return "";
  }
}

function paintClock() {
  const clock = byId("customer-clock");
  const text = customer?.time_zone ? clockText(customer.time_zone) : "";
  clock.hidden = !text;
  setText(clock, text);
}

function messagesText(total, fromThem) {
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(total, "message")}, ${fromThem.toLocaleString()} from them`;
}

function paint(card, { keepEdits = false } = {}) {
  customer = { ...(customer || {}), ...card };
  const name = byId("customer-name");
  const notes = byId("customer-notes");
  if (!keepEdits || document.activeElement !== name) name.value = card.name || "";
  if (!keepEdits || document.activeElement !== notes) notes.value = card.notes || "";
  name.placeholder = card.whatsapp_profile_name || "";
  setText(byId("customer-phone"), card.phone || "");
  setText(byId("customer-consent-sms"), CONSENT[card.consent?.sms] || "unknown");
  setText(byId("customer-consent-whatsapp"), CONSENT[card.consent?.whatsapp] || "unknown");
  if ("first_contact_at" in card) setText(byId("customer-first"), card.first_contact_at ? fullTime(card.first_contact_at) : "—");
  if ("last_contact_at" in card) setText(byId("customer-last"), card.last_contact_at ? fullTime(card.last_contact_at) : "—");
  if ("message_count" in card) setText(byId("customer-count"), messagesText(card.message_count, card.inbound_count));
  paintClock();
}

async function load(conversation) {
  conversationId = String(conversation.id);
  customer = null;
  setText(byId("customer-saved"), "");
  const id = conversation.customer?.id;
  if (!id) return;
  paint(conversation.customer);
  try {
    const card = await api.get(`/api/customers/${encodeURIComponent(id)}`);
    if (conversationId === String(conversation.id)) paint(card);
  } catch (error) {
    console.warn("could not load the customer card", error.message);
  }
}

async function save(event) {
  event.preventDefault();
  if (!customer) return;
  const saved = byId("customer-saved");
  setText(saved, "Saving…");
  try {
    const card = await api.patch(`/api/customers/${encodeURIComponent(customer.id)}`, {
      name: byId("customer-name").value,
      notes: byId("customer-notes").value,
    });
    paint(card);
    setText(saved, "Saved.");
  } catch (error) {
    setText(saved, `Not saved: ${error.message}`);
  }
}

document.addEventListener("inbox:conversation-opened", (event) => load(event.detail.conversation));
document.addEventListener("inbox:conversation-closed", () => {
  customer = null;
  conversationId = null;
  paintClock();
});
byId("customer-form").addEventListener("submit", save);
live.subscribe("customer.updated", (event) => {
  const card = event.data?.customer;
  if (card && customer && String(card.id) === String(customer.id)) paint(card, { keepEdits: true });
});
setInterval(paintClock, 30_000);
