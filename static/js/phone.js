// The demo's customer phone: sends as the customer through the sandbox, shows both sides.
// Everything shown comes from the sandbox and is set with textContent only.

const identity = document.getElementById("identity");
const screen = document.getElementById("screen");
const compose = document.getElementById("compose");
const error = document.getElementById("phone-error");
const bubble = document.getElementById("bubble");

function number() {
  return identity.elements.number.value.trim();
}

function render(messages) {
  const atBottom = screen.scrollTop + screen.clientHeight >= screen.scrollHeight - 8;
  screen.replaceChildren(...messages.map((message) => {
    const item = bubble.content.firstElementChild.cloneNode(true);
    item.classList.add(message.direction === "in" ? "mine" : "theirs");
    item.querySelector(".text").textContent = message.body;
    item.querySelector(".media").replaceChildren(...(message.media || []).map(mediaOf));
    const channel = (message.to || "").startsWith("whatsapp:") || (message.from || "").startsWith("whatsapp:") ? "WhatsApp" : "SMS";
    item.querySelector(".meta").textContent = `${channel} · ${message.direction === "in" ? "you" : message.from} · ${message.status}`;
    return item;
  }));
  if (atBottom) screen.scrollTop = screen.scrollHeight;
}

// A received picture is shown as the phone would; any other file is a link.
function mediaOf(media) {
  if (/^image\/(jpeg|png|gif)$/.test(media.content_type)) {
    const picture = document.createElement("img");
    picture.src = media.url;
    picture.alt = "Picture received";
    picture.loading = "lazy";
    return picture;
  }
  const link = document.createElement("a");
  link.href = media.url;
  link.textContent = media.content_type === "application/pdf" ? "PDF document" : "Attachment";
  return link;
}

async function refresh() {
  if (!/^\+[1-9][0-9]{6,14}$/.test(number())) return;
  const response = await fetch(`/dev/phone/messages?number=${encodeURIComponent(number())}`);
  if (response.ok) render((await response.json()).messages);
}

compose.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const body = compose.elements.body.value;
  const file = compose.elements.picture.files[0];
  if (!body.trim() && !file) return;
  const picture = file ? await new Promise((resolve) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(String(reader.result)));
    reader.readAsDataURL(file);
  }) : "";
  const response = await fetch("/dev/phone/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      number: number(),
      channel: identity.elements.channel.value,
      to: identity.elements.to.value,
      body,
      picture,
    }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ detail: "The message could not be sent." }));
    error.textContent = problem.detail;
    error.hidden = false;
    return;
  }
  compose.elements.body.value = "";
  compose.elements.picture.value = "";
  refresh();
});

compose.elements.body.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    compose.requestSubmit();
  }
});

identity.addEventListener("change", refresh);
setInterval(refresh, 1000);
refresh();
