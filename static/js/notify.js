/**
 * notify.js: a desktop notification and a short sound for a customer's new message, and the
 * frame's "Notifications" menu (#notify-menu) where each person turns them on or off.
 *
 *   preferences   GET /api/me → `preferences`; PATCH /api/me/preferences saves a change. They are
 *                 the person's own, on the server, so they follow them to any browser; other tabs
 *                 of this browser hear of a change at once (BroadcastChannel "inbox-preferences").
 *   when          an inbound `message.created` in a conversation I own or nobody owns, while this
 *                 tab is in the background (document.hidden). Who owns it comes from the
 *                 `conversation.updated` the server records in the same transaction, right after
 *                 the message, so the message waits in `waiting` until that event.
 *   what          the customer's name (or number) and never the message's text: a notification may
 *                 show on a locked screen. One per conversation at a time (its tag); clicking it
 *                 brings this tab forward and opens the conversation (inbox:open-conversation).
 *   sound         two short sine tones made with the Web Audio API (no file to fetch).
 *   one tab       a person with several tabs open in one browser gets one alert per message: the
 *                 tabs agree through a Web Lock named after the message; a tab in front claims it
 *                 and keeps quiet, so a background tab of the same browser does not ring either.
 *   permission    asked of the browser only when the person ticks "Desktop notifications", or
 *                 clicks "Allow" when the preference is on but this browser has not allowed it yet.
 */

import { api } from "./api.js";
import { displayName } from "./conversation-list.js";
import { setText } from "./dom.js";
import { live } from "./live.js";

const myId = String(document.body.dataset.staffId || "");
const byId = (id) => document.getElementById(id);
const el = {
  menu: byId("notify-menu"),
  desktop: byId("pref-desktop"),
  sound: byId("pref-sound"),
  allow: byId("notify-allow"),
  status: byId("notify-status"),
};
const WAITING_LIMIT = 500;
const BACKGROUND_WAIT_MS = 250; // a background tab waits this long before claiming an alert
const LOCK_HOLD_MS = 60_000; // how long a claimed alert stays claimed

let prefs = { desktop_notifications: false, sound: false };
const waiting = new Map(); // conversation id -> newest inbound message id, until its conversation.updated
const channel = "BroadcastChannel" in window ? new BroadcastChannel("inbox-preferences") : null;

const supported = () => "Notification" in window;
const permission = () => (supported() ? Notification.permission : "denied");

// --- the menu --------------------------------------------------------------------------------

function say(text) {
  setText(el.status, text);
}

function paint() {
  el.desktop.checked = prefs.desktop_notifications;
  el.sound.checked = prefs.sound;
  // on (perhaps chosen in another browser) but not allowed in this one yet: offer to ask
  el.allow.hidden = !(prefs.desktop_notifications && permission() === "default");
  if (prefs.desktop_notifications && permission() === "denied") {
    say("This browser blocks notifications from the inbox: allow them in its site settings.");
  }
}

async function save(changes) {
  el.desktop.disabled = el.sound.disabled = true;
  say("Saving…");
  try {
    prefs = await api.patch("/api/me/preferences", changes);
    channel?.postMessage(prefs);
    say("Saved.");
  } catch (error) {
    say(`Not saved: ${error.message}`);
  } finally {
    el.desktop.disabled = el.sound.disabled = false;
    paint();
  }
}

async function ask() {
  if (!supported()) return "denied";
  try {
    return await Notification.requestPermission();
  } catch {
    return permission();
  }
}

async function onDesktopChange() {
  if (!el.desktop.checked) return save({ desktop_notifications: false });
  if (!supported()) {
    el.desktop.checked = false;
    say("This browser cannot show desktop notifications.");
    return undefined;
  }
  const answer = permission() === "default" ? await ask() : permission();
  if (answer !== "granted") {
    el.desktop.checked = false;
    say("This browser blocks notifications from the inbox: allow them in its site settings, then try again.");
    return undefined;
  }
  return save({ desktop_notifications: true });
}

function onSoundChange() {
  if (el.sound.checked) chime(); // what it will sound like (and a click lets audio play later)
  return save({ sound: el.sound.checked });
}

async function onAllow() {
  const answer = await ask();
  say(answer === "granted" ? "Notifications are allowed in this browser." : "This browser did not allow notifications.");
  paint();
}

// --- the sound -------------------------------------------------------------------------------

let audio = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  audio ??= new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

function chime() {
  const context = audioContext();
  if (!context) return;
  const start = context.currentTime + 0.01;
  [880, 1320].forEach((frequency, index) => {
    const tone = context.createOscillator();
    const volume = context.createGain();
    const at = start + index * 0.12;
    tone.type = "sine";
    tone.frequency.value = frequency;
    volume.gain.setValueAtTime(0.0001, at);
    volume.gain.exponentialRampToValueAtTime(0.12, at + 0.02);
    volume.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
    tone.connect(volume).connect(context.destination);
    tone.start(at);
    tone.stop(at + 0.3);
  });
}

// --- new messages ----------------------------------------------------------------------------

function wanted() {
  return prefs.sound || (prefs.desktop_notifications && permission() === "granted");
}

function onMessageCreated(event) {
  const message = event.data?.message;
  const id = event.conversation_id ?? message?.conversation_id;
  if (!message || message.direction !== "inbound" || id == null || !wanted()) return;
  const key = String(id);
  waiting.set(key, Math.max(Number(message.id) || 0, waiting.get(key) || 0));
  if (waiting.size > WAITING_LIMIT) waiting.delete(waiting.keys().next().value);
}

function onConversationUpdated(event) {
  const conversation = event.data?.conversation;
  if (!conversation) return;
  const key = String(conversation.id);
  if (!waiting.has(key)) return;
  const messageId = waiting.get(key);
  waiting.delete(key);
  const owner = conversation.assignee ? String(conversation.assignee.id) : null;
  if (owner !== null && owner !== myId) return; // someone else's: they will hear of it
  const lock = `inbox-alert-${messageId}`;
  if (!document.hidden) {
    inOneTab(lock); // the tab is in front: the list and the title say it, and the other tabs stay quiet
    return;
  }
  setTimeout(() => { // a tab in front, hearing of it at the same moment, takes the lock first
    if (document.hidden) inOneTab(lock, () => ring(conversation));
  }, BACKGROUND_WAIT_MS);
}

function ring(conversation) {
  if (prefs.desktop_notifications && permission() === "granted") show(conversation);
  if (prefs.sound) chime();
}

/**
 * One alert per message in this browser, however many of its tabs are open: the first tab to
 * take the message's Web Lock alerts (or, in front, keeps quiet for all), the others find it
 * taken. The lock is held a while, so a tab that hears of the message a moment later still
 * finds it. Without Web Locks (a page not served over https) every tab alerts, as before.
 */
function inOneTab(name, onTaken = () => {}) {
  if (!navigator.locks) {
    onTaken();
    return;
  }
  navigator.locks.request(name, { ifAvailable: true }, (taken) => {
    if (!taken) return undefined;
    onTaken();
    return new Promise((resolve) => { setTimeout(resolve, LOCK_HOLD_MS); });
  }).catch(() => {});
}

function show(conversation) {
  const id = String(conversation.id);
  let notification;
  try {
    notification = new Notification(`New message from ${displayName(conversation)}`, {
      body: "Open the inbox to read it.", // never the text: this may show on a locked screen
      tag: `conversation-${id}`,
      renotify: true,
      silent: prefs.sound, // the inbox plays its own sound when that is on
      icon: "/static/img/favicon.svg",
    });
  } catch (error) {
    console.warn("could not show a notification", error.message); // e.g. a browser that wants a service worker
    return;
  }
  notification.addEventListener("click", () => {
    window.focus();
    notification.close();
    document.dispatchEvent(new CustomEvent("inbox:open-conversation", { detail: { id } }));
  });
}

// --- start -----------------------------------------------------------------------------------

async function load() {
  try {
    const me = await api.get("/api/me");
    prefs = { ...prefs, ...(me.preferences || {}) };
    el.desktop.disabled = el.sound.disabled = false;
    paint();
  } catch (error) {
    say(`Could not load your preferences: ${error.message}`);
  }
}

if (el.menu) {
  el.desktop.addEventListener("change", onDesktopChange);
  el.sound.addEventListener("change", onSoundChange);
  el.allow.addEventListener("click", onAllow);
  // a menu: a click elsewhere or Escape folds it away (Escape gives focus back to its summary)
  document.addEventListener("click", (event) => {
    if (el.menu.open && !el.menu.contains(event.target)) el.menu.open = false;
  });
  el.menu.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !el.menu.open) return;
    event.preventDefault();
    el.menu.open = false;
    el.menu.querySelector("summary").focus();
  });
  channel?.addEventListener("message", (event) => {
    prefs = { ...prefs, ...event.data };
    paint();
  });
  // Browsers let a page make sound only after the person has interacted with it: the first
  // click or key prepares the audio, so a later message in a background tab can be heard.
  const prepare = () => {
    if (prefs.sound && audio?.state !== "running") audioContext();
  };
  document.addEventListener("pointerdown", prepare);
  document.addEventListener("keydown", prepare);
  live.subscribe("message.created", onMessageCreated);
  live.subscribe("conversation.updated", onConversationUpdated);
  load();
}
