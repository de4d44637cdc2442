/**
 * live.js: owns the one websocket to /ws and hands its events to subscribers.
 *
 *   import { live } from "./live.js";
 *   live.start(afterId)                 connect with ?after=afterId (inbox.js does this once)
 *   live.subscribe(type, fn)            fn(event) for each new event of that type ("*" = all);
 *                                       returns an unsubscribe function
 *   live.onStatus(fn)                   fn(state, info) now and on every change; returns unsubscribe
 *   live.send(object)                   sends one JSON frame if the socket is open (presence); false if not
 *   live.reconnectNow() / live.stop()
 *   live.lastId                         the newest event id seen
 *
 * Events are `{id, type, conversation_id, data}` and reach subscribers once each (de-duplicated
 * by id, so a replay after a reconnect repeats nothing). States:
 *
 *   idle → connecting → live ⇄ reconnecting      (stop() → stopped)
 *
 * A lost socket reconnects after 0.5 s, 1 s, 2 s … at most 10 s, each with jitter, and asks for
 * `?after=<lastId>` so the server replays what was missed. Close code 4000 (this client fell
 * behind) reconnects at once. The browser going offline drops the socket; coming back online or
 * back into view retries without waiting out the backoff.
 *
 * Close code 4401 means this session ended (signed out in another tab, the account disabled, a
 * new password): the page goes to the sign-in page. A handshake the server refuses reaches the
 * browser only as a failed connection, so a socket that never opened asks /api/me once: a 401
 * there means the same.
 */

const BASE_DELAY = 500;
const MAX_DELAY = 10_000;
const STABLE_AFTER = 5_000; // a socket open this long resets the backoff
const CLOSE_RESYNC = 4000;
const CLOSE_SIGNED_OUT = 4401;

// Signing out in this tab closes this tab's socket with 4401 too: the logout form's own answer
// (the sign-in page) must win over the close handler's navigation, or the two race.
let signingOutHere = false;
document.addEventListener(
  "submit",
  (event) => {
    if (event.target instanceof HTMLFormElement && event.target.getAttribute("action") === "/logout") {
      signingOutHere = true;
    }
  },
  true,
);
const SEEN_LIMIT = 5_000;

export class Live {
  constructor(path = "/ws") {
    this.path = path;
    this.state = "idle";
    this.lastId = 0;
    this.attempt = 0;
    this.socket = null;
    this.retryTimer = null;
    this.stableTimer = null;
    this.seen = new Set();
    this.floor = 0; // ids at or below it count as seen (the set forgets old ids)
    this.subscribers = new Map();
    this.statusListeners = new Set();
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.drop();
    this.onVisible = () => {
      if (document.visibilityState === "visible" && this.state === "reconnecting") this.reconnectNow();
    };
  }

  start(after = 0) {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.lastId = Math.max(this.lastId, Number(after) || 0);
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.setState("connecting");
    this.connect();
  }

  stop() {
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "stopped");
    this.setState("stopped");
  }

  subscribe(type, fn) {
    if (!this.subscribers.has(type)) this.subscribers.set(type, new Set());
    this.subscribers.get(type).add(fn);
    return () => this.subscribers.get(type)?.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.state, { attempt: this.attempt });
    return () => this.statusListeners.delete(fn);
  }

  send(payload) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(payload));
    return true;
  }

  reconnectNow() {
    if (this.state !== "reconnecting" && this.state !== "connecting") return;
    if (this.socket) return; // already trying
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** Gives up on the current socket (it is known to be dead) and schedules a reconnect. */
  drop() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.detach(socket);
    socket.close();
    this.scheduleReconnect(false);
  }

  // --- internals -------------------------------------------------------------------------

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.path}?after=${encodeURIComponent(this.lastId)}`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      opened = true;
      this.setState("live");
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => { this.attempt = 0; }, STABLE_AFTER);
    };
    socket.onmessage = (message) => {
      if (this.socket === socket) this.receive(message.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.detach(socket);
      if (event.code === CLOSE_SIGNED_OUT) {
        this.signedOut();
        return;
      }
      if (!opened) this.checkSignedIn();
      this.scheduleReconnect(event.code === CLOSE_RESYNC);
    };
    socket.onerror = () => {}; // a close event always follows
  }

  /** The session is over: stop, and show the sign-in page (coming back here afterwards). */
  signedOut() {
    this.stop();
    if (signingOutHere) return;
    const here = window.location.pathname + window.location.search;
    window.location.assign(`/login?next=${encodeURIComponent(here)}`);
  }

  async checkSignedIn() {
    try {
      const response = await fetch("/api/me", { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401 && this.state !== "stopped") this.signedOut();
    } catch {
      // offline: the reconnect loop keeps trying
    }
  }

  detach(socket) {
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    clearTimeout(this.stableTimer);
  }

  scheduleReconnect(resync) {
    if (this.state === "stopped") return;
    clearTimeout(this.retryTimer);
    const ceiling = resync ? BASE_DELAY / 2 : Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    if (!resync) this.attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    this.setState("reconnecting", { delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (event?.id === null && typeof event.type === "string") {
      this.dispatch(event); // presence (staff.typing, staff.viewing): ephemeral, no id to track
      return;
    }
    const id = Number(event?.id);
    if (!Number.isFinite(id) || typeof event.type !== "string") return;
    if (this.seen.has(id) || id <= this.floor) return;
    this.remember(id);
    this.lastId = Math.max(this.lastId, id);
    this.dispatch(event);
  }

  dispatch(event) {
    for (const key of [event.type, "*"]) {
      for (const fn of this.subscribers.get(key) || []) {
        try {
          fn(event);
        } catch (error) {
          console.error("live event handler failed", event.type, error);
        }
      }
    }
  }

  remember(id) {
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) {
      // forget the oldest half; anything at or below the floor counts as seen
      const sorted = [...this.seen].sort((a, b) => a - b);
      const cut = sorted.slice(0, sorted.length / 2);
      for (const old of cut) this.seen.delete(old);
      this.floor = cut[cut.length - 1];
    }
  }

  setState(state, info = {}) {
    const changed = state !== this.state;
    this.state = state;
    if (!changed && state !== "reconnecting") return;
    for (const fn of this.statusListeners) fn(state, { attempt: this.attempt, ...info });
  }
}

/** The page's one connection. */
export const live = new Live();
