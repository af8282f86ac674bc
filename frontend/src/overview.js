// Overview page: relative times tick, and tiles update without reload when new observations
// arrive. The server renders each changed tile's data part (same template as the page), so
// numbers, words and status look exactly as after a reload; the tile's link keeps its focus.
import { config } from "./lib/config.js";
import { tickRelativeTimes, updateRelativeTimes } from "./lib/format.js";
import { connectLive } from "./lib/live.js";

tickRelativeTimes();

let inFlight = false;
let again = false;

async function refreshTiles() {
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    const url = `${config.tiles}?lang=${encodeURIComponent(config.lang)}`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const fragments = await response.json();
    for (const [slug, html] of Object.entries(fragments)) {
      const tile = document.querySelector(`[data-usecase="${CSS.escape(slug)}"] [data-tile-data]`);
      if (!tile || tile.innerHTML === html) continue;
      tile.innerHTML = html;
      tile.classList.remove("flash");
      void tile.offsetWidth; // restart the highlight animation
      tile.classList.add("flash");
      updateRelativeTimes(tile);
    }
  } catch {
    // A failed refresh is retried with the next event.
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      refreshTiles();
    }
  }
}

// Besides live events, a periodic refresh: "today so far" rolls over at midnight, data turns
// stale, and with several server processes an event may arrive through another one.
setInterval(() => {
  if (!document.hidden) refreshTiles();
}, 60000);

connectLive(() => refreshTiles(), {
  stateElement: document.querySelector("[data-live-state]"),
});
