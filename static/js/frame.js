/**
 * frame.js: behaviour shared by every page that uses templates/base.html.
 *
 * - Signing out (the frame's "Sign out" form) forgets this tab's unsent drafts first.
 * - The sign-in page forgets them too: whoever ended the last session, nothing of it stays.
 */

import { drafts } from "./drafts.js";

for (const form of document.querySelectorAll("form.signout")) {
  form.addEventListener("submit", () => drafts.clearAll());
}
if (document.body.classList.contains("login-page")) drafts.clearAll();
