/**
 * api.js: the JSON API over fetch, with the session's CSRF token on unsafe methods.
 *
 *   request(method, path, {query, json, headers, signal}) -> parsed JSON (or null for 204)
 *   api.get(path, {query, signal})
 *   api.post(path, json, {headers, signal})
 *   api.patch(path, json, {headers, signal})
 *   listConversations({status, assignee, q, cursor}, {signal}) / getConversation(id) / markRead(id)
 *   whatsappTemplates() -> the approved WhatsApp templates, asked for once per page
 *
 * Every failure is an ApiError {status, code, detail, message}: `message` is a sentence a
 * receptionist can read (the server's `detail` when it sent one). status 0 = no network.
 */

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function csrfToken() {
  return document.body?.dataset.csrf || "";
}

function fallbackDetail(status) {
  if (status === 401) return "Your session has ended. Sign in again.";
  if (status === 403) return "You are not allowed to do that.";
  if (status === 404) return "That was not found. It may have been removed.";
  if (status === 429) return "Too many requests. Wait a moment and try again.";
  if (status >= 500) return "The inbox had a problem answering. Try again in a moment.";
  return `The request failed (HTTP ${status}).`;
}

export async function request(method, path, { query, json, headers = {}, signal } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (UNSAFE.has(method)) init.headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "network", "Could not reach the inbox. Check your connection and try again.");
  }
  const type = response.headers.get("content-type") || "";
  const payload = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const code = payload?.error || `http_${response.status}`;
    const detail = typeof payload?.detail === "string" && payload.detail ? payload.detail : fallbackDetail(response.status);
    throw new ApiError(response.status, code, detail);
  }
  return payload;
}

export const api = {
  get: (path, { query, signal } = {}) => request("GET", path, { query, signal }),
  post: (path, json, { headers, signal } = {}) => request("POST", path, { json, headers, signal }),
  patch: (path, json, { headers, signal } = {}) => request("PATCH", path, { json, headers, signal }),
};

export function listConversations({ status = "open", assignee = null, q = "", cursor = null } = {}, { signal } = {}) {
  return api.get("/api/conversations", { query: { status, assignee, q, cursor }, signal });
}

export function getConversation(id, { signal } = {}) {
  return api.get(`/api/conversations/${encodeURIComponent(id)}`, { signal });
}

let templates = null;

export async function whatsappTemplates() {
  if (templates === null) {
    try {
      templates = (await api.get("/api/whatsapp-templates")).templates;
    } catch {
      templates = [];
    }
  }
  return templates;
}

export function markRead(id) {
  return api.post(`/api/conversations/${encodeURIComponent(id)}/read`);
}
