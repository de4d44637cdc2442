/**
 * inbox.js: the inbox page. Owns the page state and wires the pieces together.
 *
 *   state (URL: /?c=<open id>[&status=mine|unassigned|open|closed|all][&q=…])
 *     ├─ ConversationList  (conversation-list.js)  #conversation-list
 *     ├─ Thread            (thread.js)             #thread
 *     └─ live              (live.js)               /ws events → list, thread, unread counts
 *
 * Unread counts: the list API gives each conversation's count for this staff member; after
 * that an inbound message.created adds one unless its thread is open and the page has focus,
 * and opening a thread (POST …/read) resets it. The page's other modules learn about the open
 * thread from #thread's data-* hooks and from these document events:
 *
 *   inbox:conversation-loading  detail {id}                (another thread is being fetched)
 *   inbox:conversation-opened   detail {id, conversation}  (after its messages are rendered)
 *   inbox:conversation-changed  detail {id, conversation}  (header data changed: name, consent)
 *   inbox:conversation-closed   detail {id}
 *
 * and it listens for inbox:marked-unread {id, unread_count} (team.js): the thread closes and the
 * list shows the conversation unread again; and for inbox:open-conversation {id} (notify.js, a
 * clicked notification; new-message.js, a conversation just started): that thread opens, focus on
 * its heading.
 *
 * Screen readers: a thread opened from the keyboard (Enter on the list) or a notification puts
 * focus on its heading; every opened thread and every customer's new message is also said in the
 * polite live region #announcer.
 */

import { api, getConversation, listConversations, markRead } from "./api.js";
import { narrowScreen, refreshTimes, setText, ui, part } from "./dom.js";
import { ConversationList, displayName } from "./conversation-list.js";
import { Thread } from "./thread.js";
import { live } from "./live.js";

const SEARCH_DEBOUNCE = 250;
const READ_DEBOUNCE = 300;
const COUNTS_DEBOUNCE = 150;
// The list's views: what each asks the API for, and which conversations belong in it.
const VIEWS = {
  mine: { status: "open", assignee: "me" },
  unassigned: { status: "open", assignee: "none" },
  open: { status: "open" },
  closed: { status: "closed" },
  all: { status: "all" },
};
const STATUSES = new Set(Object.keys(VIEWS));
const myId = String(document.body.dataset.staffId || "");

function inView(conversation, view) {
  const wanted = VIEWS[view] || VIEWS.open;
  if (wanted.status !== "all" && conversation.status !== wanted.status) return false;
  const owner = conversation.assignee ? String(conversation.assignee.id) : null;
  if (wanted.assignee === "me") return owner === myId;
  if (wanted.assignee === "none") return owner === null;
  return true;
}

const list = new ConversationList(ui.list);
const thread = new Thread();

const state = {
  status: "open",
  q: "",
  cursor: null,
  openId: null,
  threadReady: false, // the open thread's messages are on screen
  listAbort: null,
  listSeq: 0,
  threadSeq: 0,
  loadingThreadId: null,
  pending: [], // live events for a thread that is still loading, applied in order once it is drawn
  unread: new Map(), // conversation id -> count for this staff member
  counted: new Map(), // conversation id -> newest message id already reflected in `unread`
  readTimers: new Map(),
  readsInFlight: new Map(), // id -> the POST …/read sent and not yet answered
  baseTitle: document.title,
};

// --- URL ---------------------------------------------------------------------------------------

function urlFor({ openId = state.openId, status = state.status, q = state.q } = {}) {
  const params = new URLSearchParams();
  if (status !== "open") params.set("status", status);
  if (q) params.set("q", q);
  if (openId) params.set("c", openId);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const status = params.get("status");
  return {
    openId: /^\d+$/.test(params.get("c") || "") ? params.get("c") : null,
    status: STATUSES.has(status) ? status : "open",
    q: (params.get("q") || "").slice(0, 200),
  };
}

// --- unread ------------------------------------------------------------------------------------

function unreadOf(id) {
  return state.unread.get(String(id)) || 0;
}

function setUnread(id, count) {
  state.unread.set(String(id), count);
  list.setUnread(id, count);
  refreshTitle();
}

function refreshTitle() {
  const total = [...state.unread.values()].reduce((sum, n) => sum + n, 0);
  document.title = total > 0 ? `(${total}) ${state.baseTitle}` : state.baseTitle;
}

function attentive() {
  return document.visibilityState === "visible" && document.hasFocus();
}

function scheduleRead(id) {
  const key = String(id);
  setUnread(key, 0);
  clearTimeout(state.readTimers.get(key));
  state.readTimers.set(key, setTimeout(() => {
    state.readTimers.delete(key);
    const sent = markRead(key).catch((error) => console.warn("could not mark the conversation read", error.message));
    state.readsInFlight.set(key, sent);
    sent.finally(() => {
      if (state.readsInFlight.get(key) === sent) state.readsInFlight.delete(key);
    });
  }, READ_DEBOUNCE));
}

// team.js is about to mark a conversation unread: a read mark still waiting must not go out after
// it, and one already sent must land first (event.detail.wait collects it), or it would undo it.
document.addEventListener("inbox:marking-unread", (event) => {
  const key = String(event.detail.id);
  clearTimeout(state.readTimers.get(key));
  state.readTimers.delete(key);
  const inFlight = state.readsInFlight.get(key);
  if (inFlight) event.detail.wait.push(inFlight);
});

// --- the list ----------------------------------------------------------------------------------

function showListMessage(text) {
  ui.listMessage.hidden = !text;
  setText(ui.listMessage, text || "");
}

function emptyListText() {
  if (state.q) return `Nothing matches “${state.q}”.`;
  return {
    mine: "Nothing is yours right now.",
    unassigned: "Every open conversation has an owner.",
    open: "No open conversations.",
    closed: "No closed conversations.",
    all: "No conversations yet.",
  }[state.status];
}

function acceptConversation(conversation) {
  const key = String(conversation.id);
  if (typeof conversation.unread_count === "number") {
    state.unread.set(key, key === state.openId ? 0 : conversation.unread_count);
  }
  const lastId = Number(conversation.last_message?.id || 0);
  if (lastId > (state.counted.get(key) || 0)) state.counted.set(key, lastId);
  list.upsert(conversation, { unread: unreadOf(key), current: key === state.openId });
}

async function loadList({ append = false } = {}) {
  state.listAbort?.abort();
  const controller = new AbortController();
  state.listAbort = controller;
  const seq = ++state.listSeq;
  ui.list.setAttribute("aria-busy", "true");
  ui.loadMore.disabled = true;
  if (!append) showListMessage(list.size ? "" : "Loading conversations…");
  try {
    const page = await listConversations(
      { ...VIEWS[state.status], q: state.q, cursor: append ? state.cursor : null },
      { signal: controller.signal },
    );
    if (seq !== state.listSeq) return;
    if (!append) list.clear();
    for (const conversation of page.conversations) acceptConversation(conversation);
    state.cursor = page.next_cursor;
    ui.loadMore.hidden = !state.cursor;
    showListMessage(list.size ? "" : emptyListText());
    refreshTitle();
  } catch (error) {
    if (error.name === "AbortError") return;
    showListMessage(error.message);
  } finally {
    if (seq === state.listSeq) {
      ui.list.removeAttribute("aria-busy");
      ui.loadMore.disabled = false;
    }
  }
}

/** A live conversation summary: update it in place, move it, add or drop it per the filter. */
function liveConversation(conversation) {
  const key = String(conversation.id);
  const known = list.get(key);
  const merged = { ...(known || {}), ...conversation };
  if (known?.last_message && merged.last_message && Number(known.last_message.id) > Number(merged.last_message.id)) {
    merged.last_message = known.last_message; // a replayed, older summary
  }
  if (!inView(merged, state.status)) {
    if (known) list.remove(key);
  } else if (known) {
    list.upsert(merged, { unread: unreadOf(key), current: key === state.openId });
  } else if (!state.q && !(state.cursor && list.sortsAfterLast(merged))) {
    list.upsert(merged, { unread: unreadOf(key), current: key === state.openId });
  }
  showListMessage(list.size ? "" : emptyListText());
}

// --- the thread --------------------------------------------------------------------------------

function setView() {
  ui.layout.dataset.view = state.openId ? "thread" : "list";
}

async function openConversation(id, { push = true, focus = false } = {}) {
  const key = String(id);
  if (push && key !== state.openId) history.pushState({ c: key, pushed: true }, "", urlFor({ openId: key }));
  if (key === state.openId && state.threadReady && thread.id === key) {
    setView();
    if (focus) ui.threadTitle.focus();
    return;
  }
  state.openId = key;
  state.threadReady = false;
  state.loadingThreadId = key;
  state.pending = [];
  const seq = ++state.threadSeq;
  list.setCurrent(key);
  setView();
  thread.showLoading(list.get(key) || { id: key, customer: {} });
  document.dispatchEvent(new CustomEvent("inbox:conversation-loading", { detail: { id: key } }));
  if (focus) ui.threadTitle.focus();
  try {
    const conversation = await getConversation(key);
    if (seq !== state.threadSeq) return;
    state.loadingThreadId = null;
    state.threadReady = true;
    thread.render(conversation);
    for (const event of state.pending.splice(0)) applyToThread(event);
    const lastId = Number(conversation.messages?.at(-1)?.id || 0);
    if (lastId > (state.counted.get(key) || 0)) state.counted.set(key, lastId);
    if (list.has(key)) liveConversation({ ...conversation, messages: undefined, unread_count: undefined });
    scheduleRead(key);
    document.dispatchEvent(new CustomEvent("inbox:conversation-opened", { detail: { id: key, conversation } }));
    const count = conversation.messages?.length || 0;
    announce(`Opened the conversation with ${displayName(conversation)}: ${count} message${count === 1 ? "" : "s"}.`);
  } catch (error) {
    if (seq !== state.threadSeq) return;
    state.loadingThreadId = null;
    thread.showError(error.message);
  }
}

function closeConversation({ push = true, focusList = true } = {}) {
  const previous = state.openId;
  if (!previous) return;
  if (push) history.pushState({}, "", urlFor({ openId: null }));
  state.openId = null;
  state.threadReady = false;
  state.loadingThreadId = null;
  state.threadSeq++;
  list.setCurrent(null);
  thread.showEmpty();
  setView();
  if (focusList && !list.focusItem(previous)) ui.list.focus();
  document.dispatchEvent(new CustomEvent("inbox:conversation-closed", { detail: { id: previous } }));
}

/** The on-screen back button: undo our own pushState where there is one, else go to the list. */
function backToList() {
  if (history.state?.pushed && history.state.c === state.openId) {
    history.back(); // popstate closes the thread
  } else {
    closeConversation();
  }
}

/** A live event for the open thread: now, or once its load (which may be older) has been drawn. */
function applyToThread(event) {
  if (event.type === "conversation.updated" || event.type === "consent.changed" || event.type === "customer.updated") {
    const open = thread.conversation;
    thread.renderHeader(event.type === "conversation.updated"
      ? event.data.conversation
      : { ...open, customer: { ...open?.customer, ...event.data.customer } });
    document.dispatchEvent(new CustomEvent("inbox:conversation-changed", { detail: { id: thread.id, conversation: thread.conversation } }));
    return;
  }
  const message = event.data?.message;
  if (!message) return;
  const wasAtBottom = thread.isFollowing();
  const outcome = thread.upsertMessage(message);
  if (outcome !== "added") return;
  if (wasAtBottom || message.direction === "outbound") thread.scrollToBottom();
  else ui.jumpLatest.hidden = false;
}

// --- live events -------------------------------------------------------------------------------

function conversationIdOf(event) {
  const id = event.conversation_id ?? event.data?.message?.conversation_id ?? event.data?.conversation?.id;
  return id === null || id === undefined ? null : String(id);
}

function announce(text) {
  setText(ui.announcer, "");
  // a fresh text node each time so screen readers repeat identical announcements
  window.setTimeout(() => setText(ui.announcer, text), 50);
}

function onMessageCreated(event) {
  const key = conversationIdOf(event);
  const message = event.data?.message;
  if (!key || !message) return;
  if (state.loadingThreadId === key) state.pending.push(event);
  else if (state.openId === key && thread.id === key) applyToThread(event);

  const known = list.get(key);
  if (known && message.status !== "scheduled") { // a scheduled reply is news when it goes out (conversation.updated)
    const newer = !known.last_message || Number(message.id) >= Number(known.last_message.id);
    if (newer) {
      liveConversation({ ...known, last_message: message, last_activity_at: laterOf(known.last_activity_at, message.created_at) });
    }
  }

  if (message.direction !== "inbound") return;
  if (Number(message.id) <= (state.counted.get(key) || 0)) return; // already in the count
  state.counted.set(key, Number(message.id));
  const name = known ? displayName(known) : message.from || "a customer";
  if (state.openId === key && attentive()) {
    scheduleRead(key);
    announce(`New message from ${name}.`);
  } else {
    setUnread(key, unreadOf(key) + 1);
    const count = unreadOf(key);
    announce(`New message from ${name}. ${count} unread in that conversation.`);
  }
}

function laterOf(a, b) {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

function onMessageUpdated(event) {
  const key = conversationIdOf(event);
  const message = event.data?.message;
  if (!key || !message) return;
  if (state.loadingThreadId === key) state.pending.push(event);
  else if (state.openId === key && thread.id === key) thread.upsertMessage(message);
  const known = list.get(key);
  if (known?.last_message && String(known.last_message.id) === String(message.id)) {
    list.upsert({ ...known, last_message: message }, { unread: unreadOf(key), current: key === state.openId });
  }
}

function onConversationUpdated(event) {
  const conversation = event.data?.conversation;
  if (!conversation) return;
  const key = String(conversation.id);
  liveConversation({ ...conversation, unread_count: undefined });
  scheduleCounts();
  if (state.loadingThreadId === key) state.pending.push(event); // after the thread's (older) load
  else if (state.openId === key && thread.id === key) applyToThread(event);
}

function onConsentChanged(event) {
  const customer = event.data?.customer;
  if (!customer) return;
  const key = conversationIdOf(event);
  for (const [id, conversation] of list.data) {
    if (String(conversation.customer?.id) === String(customer.id) || id === key) {
      list.upsert({ ...conversation, customer: { ...conversation.customer, ...customer } }, { unread: unreadOf(id), current: id === state.openId });
    }
  }
  const open = thread.conversation;
  if (open && (String(open.customer?.id) === String(customer.id) || thread.id === key)) {
    if (state.loadingThreadId === thread.id) state.pending.push(event); // after the thread's (older) load
    else applyToThread(event);
  }
}

const STATUS_TEXT = { idle: "Connecting…", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", stopped: "Signed out" };
let sessionCheck = null;

function onLiveStatus(status, info) {
  const indicator = ui.liveStatus;
  indicator.dataset.state = status;
  setText(part(indicator, "text"), STATUS_TEXT[status] || status);
  part(indicator, "signin").hidden = status !== "stopped";
  // Several failures in a row: is it the network, or has the session ended?
  if (status === "reconnecting" && info.attempt >= 2 && !sessionCheck) {
    sessionCheck = fetch("/api/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (response.status === 401) {
          live.stop();
          part(indicator, "signin").href = `/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`;
        }
      })
      .catch(() => {})
      .finally(() => { sessionCheck = null; });
  }
}

// --- the views' counts --------------------------------------------------------------------------

let countsTimer = null;

function scheduleCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(refreshCounts, COUNTS_DEBOUNCE);
}

async function refreshCounts() {
  let counts;
  try {
    counts = await api.get("/api/conversations/counts");
  } catch (error) {
    console.warn("could not count the views", error.message);
    return;
  }
  for (const option of ui.statusFilter.options) {
    const count = counts[option.value];
    const label = option.dataset.label || option.value;
    option.textContent = typeof count === "number" ? `${label} (${count})` : label;
    if (typeof count === "number") option.dataset.count = String(count);
  }
}

// --- user input ---------------------------------------------------------------------------------

let searchTimer = null;

function applySearch({ force = false } = {}) {
  clearTimeout(searchTimer);
  const q = ui.search.value.trim().slice(0, 200);
  if (q === state.q && !force) return;
  state.q = q;
  history.replaceState(history.state, "", urlFor());
  loadList();
}

function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applySearch, SEARCH_DEBOUNCE);
}

function onFilterChange() {
  state.status = ui.statusFilter.value;
  history.replaceState(history.state, "", urlFor());
  loadList();
}

function onListClick(event) {
  const link = event.target.closest(".conversation-link");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  const id = link.closest(".conversation").dataset.conversationId;
  // event.detail is 0 for a link activated from the keyboard: follow it into the thread
  openConversation(id, { focus: narrowScreen.matches || event.detail === 0 });
}

function onListKeydown(event) {
  const steps = { ArrowDown: 1, ArrowUp: -1, Home: "first", End: "last" };
  if (!(event.key in steps) || event.altKey || event.ctrlKey || event.metaKey) return;
  if (list.moveFocus(steps[event.key])) event.preventDefault();
}

function onSearchKeydown(event) {
  if (event.key === "ArrowDown" && list.moveFocus("first")) event.preventDefault();
  if (event.key === "Escape" && ui.search.value) {
    event.preventDefault();
    event.stopPropagation();
    ui.search.value = "";
    applySearch();
  }
}

function onDocumentKeydown(event) {
  if (event.key !== "Escape" || event.defaultPrevented || !state.openId) return;
  if (!ui.thread.contains(document.activeElement) && document.activeElement !== document.body) return;
  if (narrowScreen.matches) {
    event.preventDefault();
    backToList();
  } else if (ui.thread.contains(document.activeElement)) {
    event.preventDefault();
    list.focusItem(state.openId);
  }
}

function onPopState() {
  const wanted = readUrl();
  if (wanted.status !== state.status || wanted.q !== state.q) {
    state.status = wanted.status;
    state.q = wanted.q;
    ui.statusFilter.value = state.status;
    ui.search.value = state.q;
    loadList();
  }
  if (wanted.openId) openConversation(wanted.openId, { push: false, focus: narrowScreen.matches });
  else closeConversation({ push: false });
}

function onAttention() {
  if (state.openId && unreadOf(state.openId) > 0 && attentive() && !state.loadingThreadId) scheduleRead(state.openId);
}

// --- start --------------------------------------------------------------------------------------

async function boot() {
  const initial = readUrl();
  state.status = initial.status;
  state.q = initial.q;
  ui.statusFilter.value = state.status;
  ui.search.value = state.q;
  history.replaceState(initial.openId ? { c: initial.openId } : {}, "", urlFor({ openId: initial.openId }));

  ui.list.addEventListener("click", onListClick);
  ui.list.addEventListener("keydown", onListKeydown);
  ui.search.addEventListener("input", onSearchInput);
  ui.search.addEventListener("keydown", onSearchKeydown);
  ui.statusFilter.addEventListener("change", onFilterChange);
  ui.listTools.addEventListener("submit", (event) => {
    event.preventDefault();
    applySearch({ force: true });
  });
  ui.loadMore.addEventListener("click", () => loadList({ append: true }));
  ui.backToList.addEventListener("click", backToList);
  document.addEventListener("keydown", onDocumentKeydown);
  document.addEventListener("inbox:marked-unread", (event) => {
    // Marked unread from the thread: back to the list, where it shows as unread again.
    const { id, unread_count: count } = event.detail;
    clearTimeout(state.readTimers.get(String(id))); // a read mark still waiting would undo it
    state.readTimers.delete(String(id));
    if (state.openId === String(id)) closeConversation();
    setUnread(id, count);
  });
  document.addEventListener("inbox:open-conversation", (event) => openConversation(event.detail.id, { focus: true }));
  window.addEventListener("popstate", onPopState);
  window.addEventListener("focus", onAttention);
  document.addEventListener("visibilitychange", onAttention);
  setInterval(() => refreshTimes(), 30_000);

  live.onStatus(onLiveStatus);
  live.subscribe("message.created", onMessageCreated);
  live.subscribe("message.updated", onMessageUpdated);
  live.subscribe("conversation.updated", onConversationUpdated);
  live.subscribe("consent.changed", onConsentChanged);
  live.subscribe("customer.updated", onConsentChanged); // the same merge: the customer's new fields
  live.onStatus((status) => {
    if (status === "live") scheduleCounts(); // after a reconnect, too: events may have been missed
  });

  if (initial.openId) openConversation(initial.openId, { push: false });
  refreshCounts();
  await loadList();
  if (state.openId) list.setCurrent(state.openId);
  // Only now: events after the page was rendered are replayed onto the loaded list.
  live.start(Number(document.body.dataset.lastEventId) || 0);
}

boot();
