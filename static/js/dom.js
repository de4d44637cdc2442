/**
 * dom.js: the page's DOM helpers and its one selector map.
 *
 *   ui            every element the scripts touch, by id (one place to rename a hook)
 *   el(tag, attrs, ...children)    a new element; strings become text nodes, never HTML
 *   fill(templateId)               a deep clone of a <template>'s first element
 *   part(root, name)               the descendant marked data-part="name"
 *   setText(node, text)            textContent, nothing else
 *   relativeTime(iso) / clockTime(iso) / fullTime(iso)
 *   safeHttpUrl(url)               the URL when it is http(s), else null
 *   channelLabel(channel)          "SMS" | "WhatsApp"
 *
 * Customer text reaches the page only through textContent and attribute values.
 */

const byId = (id) => document.getElementById(id);

/** The selector map: ids that templates/inbox.html and templates/_partials.html provide. */
export const ui = {
  get body() { return document.body; },
  get layout() { return byId("layout"); },
  get liveStatus() { return byId("live-status"); },
  get listPane() { return byId("list-pane"); },
  get listTools() { return byId("list-tools"); },
  get search() { return byId("search"); },
  get statusFilter() { return byId("status-filter"); },
  get listMessage() { return byId("list-message"); },
  get list() { return byId("conversation-list"); },
  get loadMore() { return byId("load-more"); },
  get thread() { return byId("thread"); },
  get threadEmpty() { return byId("thread-empty"); },
  get threadBody() { return byId("thread-body"); },
  get threadTitle() { return byId("thread-title"); },
  get threadPhone() { return byId("thread-phone"); },
  get threadConsent() { return byId("thread-consent"); },
  get threadTranscript() { return byId("thread-transcript"); },
  get threadError() { return byId("thread-error"); },
  get backToList() { return byId("back-to-list"); },
  get messages() { return byId("messages"); },
  get jumpLatest() { return byId("jump-latest"); },
  get composer() { return byId("composer"); },
  get announcer() { return byId("announcer"); },
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function fill(templateId) {
  const template = byId(templateId);
  if (!(template instanceof HTMLTemplateElement)) throw new Error(`missing <template id="${templateId}">`);
  return template.content.firstElementChild.cloneNode(true);
}

export function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

export function setText(node, text) {
  if (node) node.textContent = text ?? "";
}

export function safeHttpUrl(url) {
  try {
    const parsed = new URL(String(url), window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function channelLabel(channel) {
  return channel === "whatsapp" ? "WhatsApp" : channel === "sms" ? "SMS" : String(channel || "");
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function parse(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** "now", "5 min", "3 h", "Yesterday", "Tue", "12 Mar", "12 Mar 2023": short, for the list. */
export function relativeTime(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return "";
  const diff = now.getTime() - date.getTime();
  if (diff < MINUTE) return "now";
  if (diff < HOUR) return `${Math.floor(diff / MINUTE)} min`;
  const days = Math.round((startOfDay(now) - startOfDay(date)) / DAY);
  if (days === 0) return `${Math.floor(diff / HOUR)} h`;
  if (days === 1) return "Yesterday";
  if (days < 7) return date.toLocaleDateString(undefined, { weekday: "short" });
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString(undefined, sameYear ? { day: "numeric", month: "short" } : { day: "numeric", month: "short", year: "numeric" });
}

/** "14:05" today, "Tue 14:05" this week, "12 Mar 14:05" before: for message bubbles. */
export function clockTime(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return "";
  const time = date.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  const days = Math.round((startOfDay(now) - startOfDay(date)) / DAY);
  if (days === 0) return time;
  if (days > 0 && days < 7) return `${date.toLocaleDateString(undefined, { weekday: "short" })} ${time}`;
  return `${date.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" })} ${time}`;
}

export function fullTime(iso) {
  const date = parse(iso);
  return date ? date.toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" }) : "";
}

/** Sets a <time> element: machine value, short text, full text as tooltip. */
export function setTime(node, iso, format = relativeTime) {
  if (!node) return;
  node.dateTime = iso || "";
  node.dataset.format = format === clockTime ? "clock" : "relative";
  node.textContent = iso ? format(iso) : "";
  node.title = fullTime(iso);
}

/** Re-renders every <time data-format> under root (relative times drift as the clock moves). */
export function refreshTimes(root = document) {
  const now = new Date();
  for (const node of root.querySelectorAll("time[data-format]")) {
    if (!node.dateTime) continue;
    node.textContent = node.dataset.format === "clock" ? clockTime(node.dateTime, now) : relativeTime(node.dateTime, now);
  }
}

/** Media queries the scripts agree with the stylesheet on. */
export const narrowScreen = window.matchMedia("(max-width: 720px)");
