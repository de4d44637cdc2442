/**
 * keys.js: the inbox's single-key shortcuts (team.js handles `e` and `a`).
 *
 *   j / k    focus the next / previous conversation in the list (Enter opens it: it is a link)
 *   r        focus the reply box of the open conversation
 *   /        focus the search box
 *   ?        show the list of shortcuts (#shortcuts, a <dialog>)
 *
 * Never while typing in a field, and never with Ctrl, Alt or Meta held.
 */

import { ui } from "./dom.js";

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function step(direction) {
  const links = [...ui.list.querySelectorAll(".conversation-link")];
  if (!links.length) return;
  let index = links.indexOf(document.activeElement);
  if (index === -1) index = links.findIndex((link) => link.getAttribute("aria-current") === "true");
  const next = index === -1 ? (direction > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, index + direction));
  links[next].focus();
  links[next].scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
  const dialog = document.getElementById("shortcuts");
  if (dialog?.open) return;
  if (event.key === "j" || event.key === "k") {
    event.preventDefault();
    step(event.key === "j" ? 1 : -1);
  } else if (event.key === "r") {
    const box = document.getElementById("composer-body");
    if (box && !ui.threadBody.hidden && !box.closest("[hidden]")) {
      event.preventDefault();
      box.focus();
    }
  } else if (event.key === "/") {
    event.preventDefault();
    ui.search.focus();
    ui.search.select();
  } else if (event.key === "?") {
    event.preventDefault();
    dialog?.showModal();
  }
});
