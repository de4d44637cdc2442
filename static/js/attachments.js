/**
 * attachments.js: files on a reply (JPEG, PNG, GIF, PDF; up to 10 and 5 MB in all).
 *
 *   const files = mountAttachments({ form, body, onChange })   adds the Attach button, drop and paste
 *   files.ids()      uploaded ids, in order, for the reply's `media_ids`
 *   files.busy()     true while an upload is running (nothing may be sent until it is done)
 *   files.count()    how many files are attached
 *   files.clear()    after sending, or when another conversation opens
 *
 * Each file is checked here first (its first bytes, like the server: a .png that is really an
 * HTML page is refused by name), then uploaded at once (POST /api/media), so a retried send
 * names the same ids. Previews: a thumbnail for a picture (a data: URL, read locally), the name
 * for a PDF, each with a remove button. Every name a person gave a file is set with textContent.
 */

import { ApiError } from "./api.js";
import { el } from "./dom.js";

export const MAX_FILES = 10;
export const MAX_BYTES = 5 * 1024 * 1024;
const KINDS = { "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "application/pdf": "PDF" };

/** What the first bytes say a file is: {type} for an accepted kind, else {words} naming it. */
export function sniff(bytes) {
  const starts = (...values) => values.every((v, i) => bytes[i] === v);
  const text = (offset, word) => [...word].every((ch, i) => bytes[offset + i] === ch.charCodeAt(0));
  if (starts(0xff, 0xd8, 0xff)) return { type: "image/jpeg" };
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return { type: "image/png" };
  if (text(0, "GIF87a") || text(0, "GIF89a")) return { type: "image/gif" };
  if (text(0, "%PDF-")) return { type: "application/pdf" };
  if (text(8, "WEBP")) return { words: "a WebP image" };
  if (text(4, "ftypheic") || text(4, "ftypheix") || text(4, "ftypmif1")) return { words: "a HEIC photo" };
  if (text(4, "ftyp")) return { words: "a video or audio file" };
  if (text(0, "PK")) return { words: "a ZIP archive or an Office document" };
  const head = new TextDecoder().decode(bytes.slice(0, 64)).trimStart().toLowerCase();
  if (head.startsWith("<!doctype html") || head.startsWith("<html")) return { words: "an HTML page" };
  if (head.startsWith("<svg") || head.startsWith("<?xml")) return { words: "an SVG or XML file" };
  return { words: "a file of a type that cannot be sent" };
}

function sizeText(bytes) {
  return bytes < 1_048_576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1_048_576).toFixed(1)} MB`;
}

export function mountAttachments({ form, body, onChange }) {
  const items = []; // {file, id, type, status: "uploading" | "ready" | "refused", node}
  const input = el("input", { type: "file", id: "composer-files", class: "visually-hidden", multiple: "",
    accept: "image/jpeg,image/png,image/gif,application/pdf", tabindex: "-1", "aria-hidden": "true" });
  const button = el("button", { type: "button", class: "button button-quiet composer-attach", id: "composer-attach",
    "aria-label": "Attach a picture or PDF", title: "Attach a picture or PDF (or drop or paste it here)" }, "+ Attach");
  const list = el("ul", { class: "composer-attachments", id: "composer-attachments", "aria-label": "Attachments", hidden: "" });
  const problem = el("p", { class: "composer-error", id: "composer-attach-error", role: "alert", hidden: "" });
  form.querySelector(".composer-meta")?.prepend(button);
  form.append(list, problem, input);

  const changed = () => {
    list.hidden = items.length === 0;
    onChange?.();
  };
  const say = (message) => {
    problem.textContent = message || "";
    problem.hidden = !message;
  };

  function remove(item) {
    items.splice(items.indexOf(item), 1);
    item.node.remove();
    say("");
    changed();
  }

  function preview(item) {
    const name = el("span", { class: "attachment-name" });
    name.textContent = item.file.name || KINDS[item.type] || "file";
    const state = el("span", { class: "attachment-state", "data-part": "state" }, "Uploading…");
    const drop = el("button", { type: "button", class: "attachment-remove", "aria-label": `Remove ${item.file.name || "file"}` }, "×");
    drop.addEventListener("click", () => remove(item));
    const node = el("li", { class: "attachment", "data-status": "uploading" });
    if (item.type.startsWith("image/")) {
      const thumb = el("img", { class: "attachment-thumb", alt: "" });
      const reader = new FileReader();
      reader.addEventListener("load", () => { thumb.src = String(reader.result); });
      reader.readAsDataURL(item.file);
      node.append(thumb);
    } else {
      node.append(el("span", { class: "attachment-kind" }, KINDS[item.type] || "File"));
    }
    node.append(name, state, drop);
    return node;
  }

  async function upload(item) {
    const data = new FormData();
    data.append("file", item.file, item.file.name || "attachment");
    const setState = (status, text) => {
      item.status = status;
      item.node.dataset.status = status;
      item.node.querySelector("[data-part='state']").textContent = text;
      changed();
    };
    try {
      const response = await fetch("/api/media", {
        method: "POST", body: data, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": document.body?.dataset.csrf || "" },
      });
      const payload = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, payload?.error || "upload_failed", payload?.detail || "The file could not be uploaded.");
      if (!items.includes(item)) return; // removed while it uploaded
      item.id = payload.id;
      setState("ready", sizeText(payload.size));
    } catch (error) {
      if (!items.includes(item)) return;
      remove(item); // refused by the server (or not uploaded): not attached; the reason stays shown
      say(error instanceof ApiError ? error.message : "The file could not be uploaded. Check your connection.");
    }
  }

  async function add(files) {
    say("");
    for (const file of files) {
      if (items.length >= MAX_FILES) {
        say(`A message can carry at most ${MAX_FILES} files.`);
        break;
      }
      const { type, words } = sniff(new Uint8Array(await file.slice(0, 64).arrayBuffer()));
      if (!type) {
        const label = file.type ? ` (labelled ${file.type})` : "";
        say(`“${file.name || "This file"}” is ${words}${label}. Attach a JPEG, PNG or GIF picture or a PDF.`);
        continue;
      }
      const total = items.reduce((sum, i) => sum + i.file.size, 0) + file.size;
      if (file.size > MAX_BYTES || total > MAX_BYTES) {
        say(file.size > MAX_BYTES
          ? `“${file.name}” is ${sizeText(file.size)}; a file may be at most 5 MB.`
          : `With “${file.name}” the files would add up to ${sizeText(total)}; a message may carry at most 5 MB.`);
        continue;
      }
      const item = { file, id: null, type, status: "uploading" };
      item.node = preview(item);
      items.push(item);
      list.append(item.node);
      changed();
      upload(item);
    }
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = "";
  });
  body.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    add(files);
  });
  const zone = form;
  zone.addEventListener("dragover", (event) => {
    if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
    event.preventDefault();
    zone.classList.add("is-dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("is-dropping"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("is-dropping");
    const files = [...(event.dataTransfer?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    add(files);
  });

  return {
    ids: () => items.filter((i) => i.status === "ready").map((i) => i.id),
    busy: () => items.some((i) => i.status !== "ready"),
    count: () => items.length,
    clear() {
      items.splice(0).forEach((i) => i.node.remove());
      say("");
      changed();
    },
  };
}
