/**
 * signed-in.js: for signed-in pages without a live view (settings, staff, export). It keeps one
 * live-only socket open (no replay: it reads no events) so that when the session ends (signed out
 * in another tab, the account disabled, a new password) the server's 4401 close brings this page
 * to the sign-in page too, as live.js does for the inbox.
 */
import { Live } from "./live.js";

class SessionWatch extends Live {
  url() {
    return super.url().replace(/\?after=.*$/, ""); // live only: nothing to catch up on
  }
}

new SessionWatch().start();
