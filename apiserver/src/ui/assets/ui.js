// The dashboard's one script. Pages work without it; it only keeps a scenario's live page
// live: the report and timeline are fetched again every few seconds while the scenario runs,
// and the journal arrives as server-sent events. No inline script exists (the page's
// Content-Security-Policy forbids it); text from the server is set as text, never as HTML,
// except the live fragment, which the server rendered and escaped.
"use strict";

const REFRESH_MS = 3000;
const MAX_ENTRIES = 300;

function refreshLive(section) {
  const settled = () => {
    const status = section.querySelector("#status");
    const phase = status ? status.dataset.phase : "";
    return phase === "Stopped" || phase === "Failed";
  };
  const tick = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(section.dataset.src, { credentials: "same-origin" });
      if (response.status === 401) {
        // The session ended: the page itself goes to the login page.
        location.reload();
        return;
      }
      if (response.ok) {
        section.innerHTML = await response.text();
        section.dataset.refreshed = String(Date.now());
      }
    } catch (_) {
      // The next tick tries again.
    }
    if (settled()) clearInterval(timer);
  };
  const timer = setInterval(tick, REFRESH_MS);
}

function describe(entry) {
  const fields = Object.entries(entry.fields || {})
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  const who = [entry.volume, entry.instance].filter(Boolean).join(" ");
  return `${entry.time.replace("T", " ").replace(/\.\d+Z$/, "Z")}  ${entry.kind}  ${who}  ${fields}`;
}

function streamJournal(list) {
  const state = document.getElementById("stream-state");
  const source = new EventSource(list.dataset.src);
  source.addEventListener("open", () => { state.textContent = "Live."; });
  source.addEventListener("entry", (message) => {
    const entry = JSON.parse(message.data);
    const item = document.createElement("li");
    item.dataset.seq = String(entry.seq);
    item.dataset.kind = entry.kind;
    item.textContent = describe(entry);
    list.prepend(item);
    while (list.children.length > MAX_ENTRIES) list.lastElementChild.remove();
  });
  source.addEventListener("end", (message) => {
    state.textContent = `The stream ended: ${message.data}`;
    source.close();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CONNECTING) state.textContent = "Reconnecting…";
    if (source.readyState === EventSource.CLOSED) state.textContent = "The stream ended; reload to follow it again.";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) refreshLive(live);
  const events = document.getElementById("events");
  if (events) streamJournal(events);
});
