// Live values over Server-Sent Events (/api/v1/live). EventSource reconnects by itself; the
// page shows in words whether the live connection stands.
import { config, text } from "./config.js";

export function connectLive(onEvents, { stateElement = null, batchMs = 400 } = {}) {
  if (!("EventSource" in window) || !config.live) return null;
  const source = new EventSource(config.live);
  let pending = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const batch = pending;
    pending = [];
    onEvents(batch);
  };
  const showState = (on) => {
    if (!stateElement) return;
    stateElement.hidden = false;
    stateElement.dataset.state = on ? "on" : "off";
    stateElement.textContent = on ? text("live_on") : text("live_off");
  };
  const handle = (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    pending.push(...(Array.isArray(data) ? data : [data]));
    // Bursts (a gateway delivering many uplinks) become one update of the page.
    if (!timer) timer = setTimeout(flush, batchMs);
  };
  source.addEventListener("message", handle);
  source.addEventListener("observation", handle);
  source.addEventListener("open", () => showState(true));
  source.addEventListener("error", () => showState(false));
  window.ortspulsLive = source;
  return source;
}
