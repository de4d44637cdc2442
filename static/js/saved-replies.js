/**
 * saved-replies.js: the managers' list of saved replies on the settings page: list, add, edit,
 * remove (GET, POST, PUT and DELETE /api/quick-replies). Texts are shown with their fields ({first_name},
 * {name}, {business_name}) marked; everything typed reaches the page through textContent only.
 */

import { api, ApiError, request } from "./api.js";
import { el } from "./dom.js";

const list = document.getElementById("saved-reply-list");
const form = document.getElementById("saved-reply-form");
const error = document.getElementById("saved-reply-error");

function marked(text) {
  return text.split(/(\{(?:first_name|name|business_name)\})/g).map((piece, i) => (i % 2 ? el("mark", {}, piece) : piece));
}

function showError(message) {
  error.textContent = message || "";
  error.hidden = !message;
}

async function refresh() {
  try {
    const { quick_replies: items } = await api.get("/api/quick-replies");
    list.replaceChildren(...(items.length ? items.map((item) => {
      const edit = el("button", { type: "button", class: "button button-quiet", "data-edit": String(item.id) },
        `Edit “${item.title}”`);
      const remove = el("button", { type: "button", class: "button button-quiet", "data-id": String(item.id) },
        `Remove “${item.title}”`);
      const row = el("li", { class: "saved-reply-item", "data-id": String(item.id) },
        el("p", { class: "saved-reply-title" }, item.title),
        el("p", { class: "saved-reply-body" }, ...marked(item.body)), el("p", { class: "form-actions" }, edit, remove));
      edit.addEventListener("click", () => editInPlace(row, item));
      return row;
    }) : [el("li", {}, "No saved replies yet.")]));
  } catch (failure) {
    list.replaceChildren(el("li", {}, failure instanceof ApiError ? failure.message : "The saved replies could not be loaded."));
  }
}

/** The item becomes a small form: Save sends PUT, Cancel shows the list again. */
function editInPlace(row, item) {
  const id = `saved-reply-edit-${item.id}`;
  const title = el("input", { id: `${id}-title`, name: "title", required: "", maxlength: "200", value: item.title });
  const body = el("textarea", { id: `${id}-body`, name: "body", rows: "3", required: "", maxlength: "1600" });
  body.value = item.body;
  const save = el("button", { type: "submit", class: "button button-primary" }, "Save");
  const cancel = el("button", { type: "button", class: "button button-quiet" }, "Cancel");
  const editor = el("form", { class: "form", novalidate: "" },
    el("div", { class: "field" }, el("label", { for: title.id }, "Title"), title),
    el("div", { class: "field" }, el("label", { for: body.id }, "Text"), body),
    el("p", { class: "form-actions" }, save, cancel));
  cancel.addEventListener("click", refresh);
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await request("PUT", `/api/quick-replies/${item.id}`, { json: { title: title.value, body: body.value } });
      showError("");
      await refresh();
    } catch (failure) {
      showError(failure instanceof ApiError ? failure.message : "The saved reply could not be saved.");
    }
  });
  row.replaceChildren(editor);
  title.focus();
}

async function add(event) {
  event.preventDefault();
  try {
    await api.post("/api/quick-replies", { title: form.elements.title.value, body: form.elements.body.value });
    form.reset();
    showError("");
    await refresh();
  } catch (failure) {
    showError(failure instanceof ApiError ? failure.message : "The saved reply could not be added.");
  }
}

async function onClick(event) {
  const button = event.target.closest("button[data-id]");
  if (!button) return;
  button.disabled = true;
  try {
    await request("DELETE", `/api/quick-replies/${button.dataset.id}`);
    showError("");
  } catch (failure) {
    showError(failure instanceof ApiError ? failure.message : "The saved reply could not be removed.");
  }
  await refresh();
}

if (list && form) {
  form.addEventListener("submit", add);
  list.addEventListener("click", onClick);
  refresh();
}
