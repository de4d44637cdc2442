/**
 * connection.js: "Test the connection" on the settings page (managers).
 *
 * Check credentials: POST /settings/connection/check, each answer shown as a sentence (ok or
 * not). Send a test SMS: POST /settings/connection/test-sms; the message's delivery status is then
 * followed live on /ws (its message.updated events, from the event id the answer gives) and
 * shown in words until it is delivered or has failed.
 */

import { api, ApiError } from "./api.js";
import { el } from "./dom.js";
import { Live } from "./live.js";

const STATUS_WORDS = {
  queued: "Queued: the inbox is handing it to Twilio…",
  accepted: "Accepted by Twilio: choosing the sender…",
  sending: "Twilio is sending it…",
  sent: "Sent: Twilio handed it to the carrier; waiting for the delivery report…",
  delivered: "Delivered to the phone.",
  undelivered: "Not delivered",
  failed: "Failed",
  read: "Delivered and read.",
};
const FINAL = new Set(["delivered", "undelivered", "failed", "read"]);
const checkButton = document.getElementById("check-credentials");
const checks = document.getElementById("connection-checks");
const checking = document.getElementById("connection-checking");
const smsForm = document.getElementById("test-sms-form");
const smsStatus = document.getElementById("test-sms-status");
let socket = null;
let watched = null;

async function checkCredentials() {
  checkButton.disabled = true;
  checking.textContent = "Asking Twilio…";
  checks.replaceChildren();
  try {
    const report = await api.post("/settings/connection/check", {});
    checks.replaceChildren(...report.checks.map((check) => el("li", {
      class: "connection-check", "data-ok": String(check.ok), "data-name": check.name },
    `${check.ok ? "✓" : "✗"} ${check.text}`)));
    checking.textContent = report.ok ? "The connection works." : "Something needs attention:";
  } catch (error) {
    checking.textContent = error instanceof ApiError ? error.message : "The check could not be run.";
  } finally {
    checkButton.disabled = false;
  }
}

function showStatus(message) {
  const words = STATUS_WORDS[message.status] || message.status;
  const reason = message.error_message ? `: ${message.error_message}` : "";
  smsStatus.dataset.state = message.status;
  smsStatus.textContent = `Test SMS to ${message.to}: ${words}${FINAL.has(message.status) && !reason ? "" : reason}`;
  if (FINAL.has(message.status)) {
    socket?.stop();
    socket = null;
  }
}

async function sendTest(event) {
  event.preventDefault();
  const to = smsForm.elements.to.value.trim();
  const button = smsForm.querySelector("button[type='submit']");
  if (!to) {
    smsStatus.dataset.state = "failed";
    smsStatus.textContent = "Type the number to send the test SMS to.";
    return;
  }
  button.disabled = true;
  try {
    const answer = await api.post("/settings/connection/test-sms", { to });
    watched = answer.message.id;
    showStatus(answer.message);
    socket?.stop();
    socket = new Live();
    socket.subscribe("message.updated", (update) => {
      const message = update.data?.message;
      if (message && message.id === watched) showStatus(message);
    });
    socket.start(answer.after);
  } catch (error) {
    smsStatus.dataset.state = "failed";
    smsStatus.textContent = error instanceof ApiError ? error.message : "The test SMS could not be sent.";
  } finally {
    button.disabled = false;
  }
}

if (checkButton) checkButton.addEventListener("click", checkCredentials);
if (smsForm) smsForm.addEventListener("submit", sendTest);
