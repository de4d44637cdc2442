/**
 * drafts.js: an unsent reply belongs to its conversation.
 *
 *   drafts.get(conversationId) -> string ("" when never typed in)
 *   drafts.set(conversationId, text)   an empty text forgets the draft
 *   drafts.clearAll()                  every draft of this tab (sign-out calls it)
 *
 * Kept in sessionStorage: it survives a reload of this tab, never reaches another tab or the
 * disk of a shared computer after the tab closes, and is keyed by the signed-in staff member so
 * a colleague signing in on the same tab never sees someone else's words.
 */

const PREFIX = "inbox:draft:";

function store() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: drafts live only as long as the textarea
  }
}

function keyFor(conversationId) {
  const staff = document.body?.dataset.staffId || "";
  return `${PREFIX}${staff}:${conversationId}`;
}

export const drafts = {
  get(conversationId) {
    if (conversationId === null || conversationId === undefined) return "";
    return store()?.getItem(keyFor(conversationId)) || "";
  },
  set(conversationId, text) {
    const storage = store();
    if (!storage || conversationId === null || conversationId === undefined) return;
    try {
      if (text) storage.setItem(keyFor(conversationId), text);
      else storage.removeItem(keyFor(conversationId));
    } catch {
      // quota exceeded: the draft stays in the textarea only
    }
  },
  clearAll() {
    const storage = store();
    if (!storage) return;
    for (const key of Object.keys(storage)) if (key.startsWith(PREFIX)) storage.removeItem(key);
  },
};
