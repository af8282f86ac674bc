// Map page: Leaflet map of all public stations. Markers show status by shape and colour, are
// reachable with the Tab key and open a popup (latest values, a 24-hour mini chart) with Enter.
// No tile server is asked unless the operator configured one; by default the background is
// plain, with the town's outline if configured. The list below the map stays the equivalent
// for screen readers; its "show on map" buttons move the focus to the marker.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { config, readJson, text } from "./lib/config.js";
import { formatDateTime, formatValue } from "./lib/format.js";
import { connectLive } from "./lib/live.js";
import { sparklineSvg } from "./lib/sparkline.js";

const mapTexts = config.mapTexts || {};
const mt = (key, params) => text(key, params, mapTexts);
const data = readJson("ortspuls-map");
const SHAPES = {
  ok: '<circle cx="8" cy="8" r="6.5"/>',
  warn: '<path d="M8 1.2 15.2 14.6H.8Z"/>',
  alert: '<rect x="1.5" y="1.5" width="13" height="13" rx="1"/>',
  unknown: '<path d="M8 .8 15.2 8 8 15.2.8 8Z"/>',
};

const el = document.querySelector("[data-map]");
const markers = new Map();
window.ortspulsMap = { markers };

function icon(level) {
  return L.divIcon({
    className: `map-marker map-marker--${level}`,
    html: `<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false">${SHAPES[level] || SHAPES.unknown}</svg>`,
    iconSize: [28, 28],
    iconAnchor: [14, 14],
    popupAnchor: [0, -12],
  });
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function popupContent(m) {
  const root = document.createElement("div");
  root.className = "map-popup";
  const values = m.datastreams.map((ds) => {
    const when = ds.time ? ` <span class="coords">${escapeHtml(formatDateTime(ds.time.split("/").pop()))}</span>` : "";
    return `<li data-datastream="${ds.id}">${escapeHtml(ds.name)}: <strong>${escapeHtml(formatValue(ds.value))}${ds.unit && ds.value !== null && ds.value !== undefined ? "&#8239;" + escapeHtml(ds.unit) : ""}</strong>${when}</li>`;
  }).join("");
  const links = m.usecases.map((u) => `<li><a href="${escapeHtml(u.url)}">${escapeHtml(u.title)}</a></li>`).join("");
  root.innerHTML = `<h2>${escapeHtml(m.name)}</h2>
    <p><span class="status status--${m.level}"><svg class="status__shape" aria-hidden="true" focusable="false" viewBox="0 0 16 16">${SHAPES[m.level]}</svg>${escapeHtml(m.statusText)}</span></p>
    <ul>${values}</ul><div class="map-popup__chart" data-mini-chart></div>
    <p>${escapeHtml(mt("details"))}:</p><ul>${links}</ul>`;
  return root;
}

async function miniChart(m, container) {
  const ds = m.datastreams.find((d) => typeof d.value === "number") || m.datastreams[0];
  if (!ds || container.dataset.loaded) return;
  container.dataset.loaded = "1";
  const end = new Date();
  end.setUTCMinutes(0, 0, 0);
  end.setUTCHours(end.getUTCHours() + 1);
  const start = new Date(end.getTime() - 24 * 3600 * 1000);
  const url = `${ds.series}?from=${start.toISOString()}&to=${end.toISOString()}&interval=PT1H&stats=mean`;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const series = await response.json();
    const values = (series.value || []).map((r) => r.mean);
    const svg = sparklineSvg(values, mt("popup_chart", { name: ds.name }));
    if (svg) container.replaceChildren(svg);
    else container.textContent = mt("popup_no_chart");
  } catch {
    container.textContent = mt("popup_no_chart");
  }
}

function describe(marker, m) {
  const element = marker.getElement();
  if (!element) return;
  const label = mt("marker", { name: m.name, status: m.statusText });
  element.setAttribute("aria-label", label);
  element.setAttribute("title", label);
  element.dataset.thing = m.id;
  element.dataset.level = m.level;
}

function addMarker(map, m) {
  const marker = L.marker([m.position[1], m.position[0]], {
    icon: icon(m.level), keyboard: true, title: mt("marker", { name: m.name, status: m.statusText }),
    riseOnHover: true,
  });
  marker.bindPopup(() => popupContent(m), { maxWidth: 320, autoPanPadding: [24, 24] });
  marker.on("popupopen", (event) => {
    const popupEl = event.popup.getElement();
    const close = popupEl.querySelector(".leaflet-popup-close-button");
    if (close) close.setAttribute("aria-label", mt("close_popup"));
    miniChart(m, popupEl.querySelector("[data-mini-chart]"));
    // Opened from the keyboard: move the focus into the popup, so its links come next.
    if (document.activeElement === marker.getElement()) {
      const heading = popupEl.querySelector("h2");
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  });
  marker.on("popupclose", () => marker.getElement()?.focus({ preventScroll: true }));
  marker.addTo(map);
  describe(marker, m);
  markers.set(String(m.id), { marker, data: m });
  return marker;
}

function setupMap() {
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const map = L.map(el, {
    keyboard: true,
    fadeAnimation: !calm,
    zoomAnimation: !calm,
    markerZoomAnimation: !calm,
    zoomControl: false,
    attributionControl: Boolean(data.tileUrl),
    scrollWheelZoom: false,
  });
  L.control.zoom({ zoomInTitle: mt("zoom_in"), zoomOutTitle: mt("zoom_out") }).addTo(map);
  if (data.tileUrl) {
    L.tileLayer(data.tileUrl, { attribution: data.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  const bounds = L.latLngBounds(data.markers.map((m) => [m.position[1], m.position[0]]));
  const fit = () => {
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.2), { maxZoom: 16 });
    else map.setView([51.16, 10.45], 6); // Germany, when there is nothing to show yet
  };
  // The view first: Leaflet creates a marker's element only once the map has one.
  fit();
  for (const m of data.markers) addMarker(map, m);
  if (data.outline) {
    fetch(data.outline)
      .then((r) => (r.ok ? r.json() : null))
      .then((geojson) => {
        if (!geojson) return;
        const layer = L.geoJSON(geojson, { style: { color: "#12324f", weight: 2, fill: true, fillColor: "#ffffff", fillOpacity: 0.6 }, interactive: false }).addTo(map);
        layer.bringToBack();
        bounds.extend(layer.getBounds());
        // Refit to show the whole town, unless the reader already opened a popup.
        if (!(map._popup && map.hasLayer(map._popup))) fit();
      })
      .catch(() => {});
  }
  // Escape closes an open popup wherever the focus is in the map (the popup's close handler
  // returns the focus to its marker); Leaflet only listens while the map itself has focus.
  el.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && map._popup && map.hasLayer(map._popup)) {
      event.preventDefault();
      map.closePopup();
    }
  });
  // Leaflet puts its own English words on the map's controls; ours come from the catalogue.
  el.querySelectorAll(".leaflet-control-zoom a").forEach((a) => a.setAttribute("aria-label", a.title));
  return map;
}

function connectList(map) {
  for (const button of document.querySelectorAll("[data-show-on-map]")) {
    const entry = markers.get(button.dataset.showOnMap);
    if (!entry) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      map.setView(entry.marker.getLatLng(), Math.max(map.getZoom(), 15));
      entry.marker.openPopup();
      el.scrollIntoView({ block: "center" });
      entry.marker.getElement()?.focus({ preventScroll: true });
    });
  }
}

async function refreshStatuses() {
  if (!data.usecases) return;
  try {
    const response = await fetch(data.usecases, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const tiles = await response.json();
    const rank = { alert: 3, warn: 2, ok: 1, unknown: 0 };
    const best = new Map();
    for (const tile of Array.isArray(tiles) ? tiles : tiles.usecases || []) {
      for (const st of tile.stations || []) {
        const level = (st.status && st.status.level) || "unknown";
        const prev = best.get(String(st.thing_id));
        if (!prev || (rank[level] ?? 0) > (rank[prev.level] ?? 0)) {
          best.set(String(st.thing_id), { level, text: (st.status && st.status.text) || "" });
        }
      }
    }
    for (const [id, entry] of markers) {
      const state = best.get(id);
      if (!state || state.level === entry.data.level) continue;
      entry.data.level = state.level;
      if (state.text) entry.data.statusText = state.text;
      entry.marker.setIcon(icon(state.level));
      describe(entry.marker, entry.data);
    }
  } catch {
    // retried with the next live event
  }
}

function applyEvents(events) {
  for (const ev of events) {
    for (const entry of markers.values()) {
      const ds = entry.data.datastreams.find((d) => String(d.id) === String(ev.datastream_id));
      if (!ds) continue;
      ds.value = ev.value;
      ds.time = ev.time;
      const popup = entry.marker.getPopup();
      if (popup && popup.isOpen()) {
        const li = popup.getElement().querySelector(`li[data-datastream="${ds.id}"] strong`);
        if (li) li.textContent = `${formatValue(ev.value)}${ds.unit ? "\u202f" + ds.unit : ""}`;
      }
    }
    for (const li of document.querySelectorAll(`.station-list li[data-datastream="${ev.datastream_id}"] .value`)) {
      li.textContent = formatValue(ev.value);
      li.dataset.raw = ev.value ?? "";
    }
  }
  refreshStatuses();
}

if (el) {
  const map = setupMap();
  window.ortspulsMap.map = map;
  connectList(map);
  connectLive(applyEvents);
  setInterval(() => {
    if (!document.hidden) refreshStatuses();
  }, 60000);
}
