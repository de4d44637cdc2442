/**
 * conversation-list.js: the list of conversations in #conversation-list.
 *
 *   const list = new ConversationList(ui.list)
 *   list.upsert(conversation, {unread, current})   render or update one item, kept in order
 *   list.remove(id) / list.clear() / list.has(id) / list.get(id) / list.size
 *   list.setUnread(id, n) / list.setCurrent(id)
 *   list.sortsAfterLast(conversation)              true when it belongs beyond the loaded page
 *   list.moveFocus(step) / list.focusItem(id)      keyboard: step = +1, -1, "first", "last"
 *
 * Order: newest activity first (last_activity_at, then id, both descending). Each item is
 * <li.conversation data-conversation-id> holding one <a.conversation-link href="/?c=ID">.
 */

import { channelLabel, fill, part, setText, setTime } from "./dom.js";

export function displayName(conversation) {
  const customer = conversation?.customer || {};
  return customer.name || customer.phone || "Unknown customer";
}

export function previewText(message) {
  if (!message) return "No messages yet";
  const prefix = message.direction === "outbound" ? "You: " : "";
  const body = (message.body || "").replace(/\s+/g, " ").trim();
  if (body) return prefix + body;
  const media = message.media || [];
  if (media.length) return `${prefix}Attachment (${media.map((m) => m.content_type || "file").join(", ")})`;
  return prefix + "(empty message)";
}

export function activityOf(conversation) {
  const iso = conversation?.last_activity_at || conversation?.last_message?.created_at;
  const time = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(time) ? 0 : time;
}

/** Negative when `a` belongs above `b`. */
export function compareConversations(a, b) {
  return activityOf(b) - activityOf(a) || Number(b.id) - Number(a.id);
}

export function conversationHref(id) {
  return `/?c=${encodeURIComponent(id)}`;
}

export class ConversationList {
  constructor(root) {
    this.root = root;
    this.data = new Map();
    this.items = new Map();
  }

  get size() {
    return this.data.size;
  }

  has(id) {
    return this.data.has(String(id));
  }

  get(id) {
    return this.data.get(String(id));
  }

  clear() {
    this.data.clear();
    this.items.clear();
    this.root.replaceChildren();
  }

  remove(id) {
    const key = String(id);
    this.items.get(key)?.remove();
    this.items.delete(key);
    this.data.delete(key);
  }

  /** True when `conversation` would sort below every loaded item (it belongs to a later page). */
  sortsAfterLast(conversation) {
    const last = this.root.lastElementChild;
    if (!last) return false;
    return compareConversations(conversation, this.data.get(last.dataset.conversationId)) > 0;
  }

  upsert(conversation, { unread = 0, current = false } = {}) {
    const key = String(conversation.id);
    let item = this.items.get(key);
    if (!item) {
      item = fill("tpl-conversation");
      item.dataset.conversationId = key;
      part(item, "link").href = conversationHref(key);
      this.items.set(key, item);
    }
    this.data.set(key, conversation);
    const message = conversation.last_message;
    setText(part(item, "name"), displayName(conversation));
    setTime(part(item, "time"), conversation.last_activity_at || message?.created_at || "");
    const channel = part(item, "channel");
    channel.hidden = !message;
    channel.dataset.channel = message?.channel || "";
    setText(channel, message ? channelLabel(message.channel) : "");
    part(item, "closed").hidden = conversation.status !== "closed";
    const owner = part(item, "owner");
    owner.hidden = !conversation.assignee;
    setText(owner, conversation.assignee ? `→ ${conversation.assignee.name || "someone"}` : "");
    setText(part(item, "preview"), previewText(message));
    item.dataset.status = conversation.status || "";
    this.paintUnread(item, unread);
    this.paintCurrent(item, current);
    this.place(item, conversation);
    return item;
  }

  setUnread(id, unread) {
    const item = this.items.get(String(id));
    if (item) this.paintUnread(item, unread);
  }

  setCurrent(id) {
    for (const [key, item] of this.items) this.paintCurrent(item, key === String(id));
  }

  links() {
    return [...this.root.querySelectorAll(".conversation-link")];
  }

  focusItem(id) {
    const link = this.items.get(String(id))?.querySelector(".conversation-link");
    if (link) link.focus();
    return Boolean(link);
  }

  moveFocus(step) {
    const links = this.links();
    if (!links.length) return false;
    const index = links.indexOf(document.activeElement);
    let next;
    if (step === "first") next = 0;
    else if (step === "last") next = links.length - 1;
    else if (index === -1) next = step > 0 ? 0 : links.length - 1;
    else next = Math.min(links.length - 1, Math.max(0, index + step));
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
    return true;
  }

  // --- internals -------------------------------------------------------------------------

  paintUnread(item, unread) {
    const count = Math.max(0, Number(unread) || 0);
    const badge = part(item, "unread");
    badge.hidden = count === 0;
    setText(part(item, "unread-count"), count > 99 ? "99+" : String(count));
    item.classList.toggle("is-unread", count > 0);
  }

  paintCurrent(item, current) {
    const link = part(item, "link");
    if (current) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
    item.classList.toggle("is-current", current);
  }

  /** Puts `item` where its conversation belongs, moving nothing else; keeps keyboard focus. */
  place(item, conversation) {
    let before = null;
    for (const other of this.root.children) {
      if (other === item) continue;
      const otherData = this.data.get(other.dataset.conversationId);
      if (otherData && compareConversations(conversation, otherData) < 0) {
        before = other;
        break;
      }
    }
    const inPlace = item.parentNode === this.root && (before ? item.nextElementSibling === before : item === this.root.lastElementChild);
    if (inPlace) return;
    const hadFocus = item.contains(document.activeElement);
    this.root.insertBefore(item, before);
    if (hadFocus) part(item, "link").focus({ preventScroll: true });
  }
}
