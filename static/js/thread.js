/**
 * thread.js: the open conversation in #thread (header, consent badges, messages).
 *
 *   const thread = new Thread()
 *   thread.showEmpty() / thread.showLoading(summary) / thread.showError(text)
 *   thread.render(conversation)        header + every message (oldest first), scrolled to the end
 *   thread.renderHeader(conversation)  name, phone, consent badges; sets #thread's data-* hooks
 *   thread.upsertMessage(message)      adds or updates one bubble in place -> "added" | "updated" | "ignored"
 *   thread.isFollowing() / thread.scrollToBottom()   is the reader at the newest message? / go there
 *   thread.replyChannel()              the channel a reply should use (the customer's last inbound one)
 *
 * #thread carries data-conversation-id, data-channel, data-consent-sms, data-consent-whatsapp and
 * data-last-inbound-at for other modules (the reply composer).
 */

import { channelLabel, clockTime, fill, part, safeHttpUrl, setText, setTime, ui } from "./dom.js";
import { displayName } from "./conversation-list.js";
import { paintSchedule } from "./schedule.js";

const STATUS_LABEL = {
  received: "Received",
  queued: "Queued",
  accepted: "Queued",
  scheduled: "Scheduled",
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  undelivered: "Not delivered",
  failed: "Failed",
  read: "Read",
  canceled: "Canceled",
};

// Outbound statuses only move forward; a late or replayed event never moves one back.
const STATUS_RANK = { queued: 0, accepted: 0, scheduled: 0, sending: 1, sent: 2, delivered: 3, undelivered: 3, failed: 3, canceled: 3, read: 4 };

const CONSENT_LABEL = { opted_in: "opted in", opted_out: "opted out", unknown: "unknown" };

const BOTTOM_SLACK = 48; // px: "at the bottom" tolerates a little

export function statusLabel(status) {
  return STATUS_LABEL[status] || String(status || "");
}

export class Thread {
  constructor() {
    this.messageEls = new Map();
    this.conversation = null;
    this.lastInbound = null;
    // Pinned: the reader is at the newest message, so keep them there. Only the reader
    // scrolling up unpins; a scroll event that merely reports the box shrinking does not.
    this.pinned = true;
    this.pinnedTop = 0;
    ui.messages.addEventListener("scroll", () => {
      const top = ui.messages.scrollTop;
      if (this.isAtBottom()) {
        this.pinned = true;
        this.pinnedTop = top;
        ui.jumpLatest.hidden = true;
      } else if (top < this.pinnedTop - 1) {
        this.pinned = false;
      }
    }, { passive: true });
    ui.jumpLatest.addEventListener("click", () => this.scrollToBottom());
    // The box shrinks when the composer appears or grows, or a phone keyboard opens.
    new ResizeObserver(() => {
      if (this.pinned) this.scrollToBottom();
    }).observe(ui.messages);
  }

  get id() {
    return this.conversation ? String(this.conversation.id) : null;
  }

  showEmpty() {
    this.conversation = null;
    this.lastInbound = null;
    this.messageEls.clear();
    ui.messages.replaceChildren();
    ui.threadBody.hidden = true;
    ui.threadEmpty.hidden = false;
    ui.threadError.hidden = true;
    ui.jumpLatest.hidden = true;
    ui.thread.removeAttribute("aria-busy");
    const hooks = ui.thread.dataset;
    hooks.conversationId = "";
    hooks.channel = "";
    delete hooks.consentSms;
    delete hooks.consentWhatsapp;
    delete hooks.lastInboundAt;
  }

  /** A conversation is being fetched: show what the list already knows about it. */
  showLoading(summary) {
    this.showEmpty();
    this.conversation = { ...summary, messages: [] };
    ui.threadEmpty.hidden = true;
    ui.threadBody.hidden = false;
    ui.thread.setAttribute("aria-busy", "true");
    this.renderHeader(this.conversation);
  }

  showError(text) {
    ui.thread.removeAttribute("aria-busy");
    ui.threadError.hidden = !text;
    setText(ui.threadError, text || "");
  }

  render(conversation) {
    this.conversation = conversation;
    this.lastInbound = null;
    this.messageEls.clear();
    ui.messages.replaceChildren();
    ui.threadEmpty.hidden = true;
    ui.threadBody.hidden = false;
    ui.threadError.hidden = true;
    ui.thread.removeAttribute("aria-busy");
    for (const message of conversation.messages || []) this.upsertMessage(message);
    this.renderHeader(conversation);
    this.scrollToBottom();
  }

  renderHeader(conversation) {
    this.conversation = { ...this.conversation, ...conversation, messages: undefined };
    const customer = conversation.customer || {};
    setText(ui.threadTitle, displayName(conversation));
    setText(ui.threadPhone, customer.name ? customer.phone || "" : "");
    ui.threadPhone.hidden = !customer.name;
    const consent = customer.consent || {};
    const badges = ["sms", "whatsapp"].map((channel) => {
      const state = consent[channel] || "unknown";
      const badge = fill("tpl-consent");
      badge.dataset.channel = channel;
      badge.dataset.state = state;
      setText(part(badge, "channel"), channelLabel(channel));
      setText(part(badge, "state"), CONSENT_LABEL[state] || state);
      badge.title = `${channelLabel(channel)}: ${CONSENT_LABEL[state] || state}`;
      return badge;
    });
    ui.threadConsent.replaceChildren(...badges);
    ui.threadTranscript.href = `/conversations/${encodeURIComponent(conversation.id)}/transcript`;
    const hooks = ui.thread.dataset;
    hooks.conversationId = String(conversation.id);
    hooks.channel = this.replyChannel();
    hooks.consentSms = consent.sms || "unknown";
    hooks.consentWhatsapp = consent.whatsapp || "unknown";
    if (this.lastInbound?.created_at) hooks.lastInboundAt = this.lastInbound.created_at;
  }

  replyChannel() {
    return this.lastInbound?.channel || this.conversation?.last_message?.channel || "sms";
  }

  upsertMessage(message) {
    const key = String(message.id);
    let item = this.messageEls.get(key);
    let outcome = "updated";
    const place = placedAt(message);
    if (item) {
      const before = STATUS_RANK[item.dataset.status];
      const after = STATUS_RANK[message.status];
      if (before !== undefined && after !== undefined && after < before) return "ignored";
      if (Number(item.dataset.placedAt) !== place) { // a waiting reply has just gone out
        item.dataset.placedAt = String(place);
        this.insertInOrder(item, Number(message.id), place);
      }
    } else {
      item = fill("tpl-message");
      item.dataset.messageId = key;
      item.dataset.placedAt = String(place);
      this.messageEls.set(key, item);
      this.insertInOrder(item, Number(message.id), place);
      outcome = "added";
    }
    this.paintMessage(item, message);
    if (message.direction === "inbound" && (!this.lastInbound || Number(message.id) >= Number(this.lastInbound.id))) {
      this.lastInbound = message;
      ui.thread.dataset.channel = this.replyChannel();
      ui.thread.dataset.lastInboundAt = message.created_at || "";
    }
    return outcome;
  }

  /** At the bottom now, or pinned there before a resize moved the goalposts. */
  isFollowing() {
    return this.pinned || this.isAtBottom();
  }

  isAtBottom() {
    const box = ui.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight <= BOTTOM_SLACK;
  }

  scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
    this.pinned = true;
    this.pinnedTop = ui.messages.scrollTop;
    ui.jumpLatest.hidden = true;
  }

  // --- internals -------------------------------------------------------------------------

  /** Messages by (placedAt, id), notes by their time among them; at the same time a note first. */
  insertInOrder(item, id, place) {
    let next = null;
    for (let node = ui.messages.lastElementChild; node; node = node.previousElementSibling) {
      if (node === item) continue;
      const at = placeOfNode(node);
      if (at < place || (at === place && (node.dataset.noteId || Number(node.dataset.messageId) < id))) break;
      next = node;
    }
    ui.messages.insertBefore(item, next);
  }

  paintMessage(item, message) {
    const outbound = message.direction === "outbound";
    item.dataset.direction = outbound ? "outbound" : "inbound";
    item.dataset.status = message.status || "";
    item.dataset.channel = message.channel || "";

    const body = part(item, "body");
    setText(body, message.body || "");
    body.hidden = !message.body;

    const mediaList = part(item, "media");
    const media = Array.isArray(message.media) ? message.media : [];
    mediaList.replaceChildren(...media.map((entry, index) => mediaItem(message, entry, index)));
    mediaList.hidden = media.length === 0;

    // Who sent it: the staff member's name, or the inbox's own automatic answer. An update that
    // does not know the name (another process sent it) keeps the one already shown.
    const author = part(item, "author");
    const who = authorLabel(message.author);
    if (who) item.dataset.author = who;
    author.hidden = !outbound || !item.dataset.author;
    setText(author, outbound ? item.dataset.author || "" : "");

    const channel = part(item, "channel");
    channel.dataset.channel = message.channel || "";
    setText(channel, channelLabel(message.channel));
    setTime(part(item, "time"), message.created_at || "", clockTime);

    const status = part(item, "status");
    status.hidden = !outbound;
    setText(status, outbound ? statusLabel(message.status) : "");

    const error = part(item, "error");
    const failed = outbound && (message.status === "failed" || message.status === "undelivered" || message.error_code);
    error.hidden = !failed;
    setText(error, failed ? errorText(message) : "");
    paintSchedule(item, message); // a scheduled reply: its time, Cancel and Send now
  }
}

/**
 * Where a message sits in its thread, in ms (the server reads threads in the same order,
 * inbox.store.thread_order): when it entered the conversation (a scheduled reply's created_at
 * becomes the moment it went out), and a reply still waiting at its send time, below all before.
 */
function placedAt(message) {
  const at = message.status === "scheduled" && message.send_at ? message.send_at : message.created_at;
  const time = Date.parse(at || "");
  return Number.isNaN(time) ? 0 : time;
}

/** The time a thread's node (a message or a note) is ordered by, in ms. */
export function placeOfNode(node) {
  if (node.dataset.placedAt) return Number(node.dataset.placedAt);
  const time = Date.parse(node.dataset.createdAt || node.querySelector("time")?.dateTime || "");
  return Number.isNaN(time) ? 0 : time;
}

export function authorLabel(author) {
  if (!author) return "";
  if (author.type === "automatic") return "Automatic answer";
  if (author.type === "staff") return author.name || "";
  return "";
}

function errorText(message) {
  const parts = [];
  if (message.error_message) parts.push(message.error_message);
  if (message.error_code) parts.push(`(error ${message.error_code})`);
  return parts.length ? parts.join(" ") : "The message could not be delivered.";
}

// Shown inline: pictures a browser draws without running anything.
const PICTURES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);

/** An attachment, always through the inbox (GET /api/messages/{id}/media/{n}): Twilio's own URLs
 *  need the account's credentials, and a reply's public URL stops working once it is delivered. */
function mediaItem(message, media, index) {
  const item = fill("tpl-media");
  const link = part(item, "link");
  const label = media?.content_type || "attachment";
  const url = safeHttpUrl(media?.url) && message?.id ? `/api/messages/${encodeURIComponent(message.id)}/media/${index}` : null;
  if (url && PICTURES.has(label)) {
    link.href = url;
    link.classList.add("media-picture");
    const picture = document.createElement("img");
    picture.className = "media-thumb";
    picture.src = url;
    picture.alt = `Picture (${label})`;
    picture.loading = "lazy";
    link.replaceChildren(picture);
  } else if (url) {
    link.href = url;
    setText(link, label === "application/pdf" ? "PDF document" : label);
  } else {
    // not http(s): show what it was, link nowhere
    const text = document.createElement("span");
    text.className = "media-unavailable";
    text.textContent = `${label} (unavailable)`;
    link.replaceWith(text);
  }
  return item;
}
