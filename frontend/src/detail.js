// Detail page: draws each chart with uPlot from the values of its table (the server rendered
// both from one series request), switches ranges by keyboard or mouse without reload (fetching
// the series API and rebuilding chart, table, caption, text alternative and CSV link from the
// same response), and keeps the stations' latest values live.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { config, text } from "./lib/config.js";
import { formatDate, formatDateTime, formatNumber, formatValue, tickRelativeTimes } from "./lib/format.js";
import { connectLive } from "./lib/live.js";

const chartTexts = config.chartTexts || {};
const ct = (key, params) => text(key, params, chartTexts);
const BRAND = "#0b5394";
const RANGE = "#5d7a99";
const STEP_SECONDS = { PT10M: 600, PT1H: 3600, P1D: 86400, P1M: 2629800 };
window.ortspulsCharts = {};

function readTable(figure) {
  const stats = figure.dataset.stats.split(",");
  const data = { starts: [], ends: [], stats: Object.fromEntries(stats.map((s) => [s, []])) };
  for (const row of figure.querySelectorAll("tr[data-start]")) {
    data.starts.push(row.dataset.start);
    data.ends.push(row.dataset.end);
    for (const stat of stats) {
      const cell = row.querySelector(`td[data-stat="${stat}"]`);
      const raw = cell ? cell.dataset.value : "";
      data.stats[stat].push(raw === "" || raw === undefined ? null : Number(raw));
    }
  }
  return data;
}

function fromSeries(figure, series) {
  const stats = figure.dataset.stats.split(",");
  const rows = series.value || [];
  return {
    starts: rows.map((r) => r.start),
    ends: rows.map((r) => r.end),
    stats: Object.fromEntries(stats.map((s) => [s, rows.map((r) => (r[s] ?? null))])),
  };
}

function axisTimeFormatter(spanSeconds) {
  const opts = { timeZone: config.timezone };
  if (spanSeconds <= 2 * 86400) Object.assign(opts, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  else if (spanSeconds <= 60 * 86400) Object.assign(opts, { day: "2-digit", month: "2-digit" });
  else Object.assign(opts, { month: "short", year: "numeric" });
  return new Intl.DateTimeFormat(config.locale, opts);
}

function plotOptions(figure, width, data) {
  const kind = figure.dataset.kind;
  const unit = figure.dataset.unit;
  const xs = data.starts.map((s) => Date.parse(s) / 1000);
  const span = (Date.parse(figure.dataset.to) - Date.parse(figure.dataset.from)) / 1000;
  const fmt = axisTimeFormatter(span);
  const half = (STEP_SECONDS[figure.dataset.interval] || 3600) / 2;
  const windowStart = Date.parse(figure.dataset.from) / 1000;
  const windowEnd = Date.parse(figure.dataset.to) / 1000;
  const series = [{}];
  if (kind === "sum") {
    series.push({ label: ct("col.sum"), stroke: BRAND, fill: "rgba(11,83,148,0.35)", width: 1,
      paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } });
  } else {
    series.push({ label: ct("col.mean"), stroke: BRAND, width: 2.5, spanGaps: false, points: { show: xs.length < 40 } });
    series.push({ label: ct("col.min"), stroke: RANGE, width: 1.5, dash: [6, 4], points: { show: false } });
    series.push({ label: ct("col.max"), stroke: RANGE, width: 1.5, dash: [6, 4], points: { show: false } });
  }
  return {
    width,
    height: 260,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      // The whole window, even where it has no data; values sit at their bucket's start,
      // so the axis runs half a bucket early and the first and last bar are drawn whole.
      x: { time: true, range: () => [windowStart - half, windowEnd - half] },
      y: kind === "sum" ? { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } : {},
    },
    axes: [
      { stroke: "#4a5560", grid: { stroke: "#e3e7eb" }, values: (u, splits) => splits.map((s) => fmt.format(new Date(s * 1000))) },
      { stroke: "#4a5560", grid: { stroke: "#e3e7eb" }, size: 60,
        values: (u, splits) => splits.map((v) => formatNumber(v)), label: unit || undefined },
    ],
    series,
  };
}

function plotData(figure, data) {
  const xs = data.starts.map((s) => Date.parse(s) / 1000);
  if (figure.dataset.kind === "sum") return [xs, data.stats.sum];
  return [xs, data.stats.mean, data.stats.min, data.stats.max];
}

function legend(figure) {
  if (figure.querySelector(".chart__legend")) return;
  const list = document.createElement("ul");
  list.className = "chart__legend";
  const entries = figure.dataset.kind === "sum"
    ? [["", ct("col.sum")]]
    : [["", ct("col.mean")], ["legend--range", `${ct("col.min")} / ${ct("col.max")}`]];
  for (const [cls, label] of entries) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    const swatch = document.createElement("span");
    swatch.setAttribute("aria-hidden", "true");
    li.append(swatch, label);
    list.appendChild(li);
  }
  figure.querySelector("[data-plot]").before(list);
}

function draw(figure, data) {
  const el = figure.querySelector("[data-plot]");
  const id = figure.dataset.chart;
  const old = window.ortspulsCharts[id];
  if (old) old.destroy();
  const width = Math.max(el.clientWidth, 280);
  const plot = new uPlot(plotOptions(figure, width, data), plotData(figure, data), el);
  // uPlot's canvas is decoration here: the figure's role="img" label and the table carry it.
  el.querySelectorAll("canvas").forEach((c) => c.setAttribute("aria-hidden", "true"));
  plot.ortspuls = data;
  window.ortspulsCharts[id] = plot;
  return plot;
}

function summary(figure, data, rangeKey, interval) {
  const kind = figure.dataset.kind;
  const params = {
    title: figure.querySelector("h3").textContent.trim(),
    range: ct(`range_long.${rangeKey}`),
    per: ct(`per.${interval}`),
    unit: figure.dataset.unit,
  };
  const stat = kind === "sum" ? "sum" : "mean";
  const idx = data.stats[stat].map((v, i) => (typeof v === "number" ? i : -1)).filter((i) => i >= 0);
  if (!idx.length) return ct("summary_empty", params);
  const values = idx.map((i) => data.stats[stat][i]);
  if (kind === "sum") {
    // Sum like the server: in order, as floating point.
    const total = values.reduce((a, b) => a + b, 0);
    return ct("summary_sum", { ...params, total: formatNumber(total), max: formatNumber(Math.max(...values)) });
  }
  const lows = idx.map((i) => data.stats.min?.[i] ?? data.stats.mean[i]).filter((v) => v !== null);
  const highs = idx.map((i) => data.stats.max?.[i] ?? data.stats.mean[i]).filter((v) => v !== null);
  return ct("summary_mean", { ...params, min: formatNumber(Math.min(...lows)), max: formatNumber(Math.max(...highs)) });
}

function fillTable(figure, data, interval) {
  const stats = figure.dataset.stats.split(",");
  const body = figure.querySelector("[data-series-table] tbody");
  const daily = interval === "P1D" || interval === "P1M";
  const rows = [];
  data.starts.forEach((start, i) => {
    const tr = document.createElement("tr");
    tr.dataset.start = start;
    tr.dataset.end = data.ends[i];
    const th = document.createElement("th");
    th.scope = "row";
    const time = document.createElement("time");
    time.dateTime = start;
    time.textContent = daily ? formatDate(start) : formatDateTime(start);
    th.appendChild(time);
    tr.appendChild(th);
    for (const stat of stats) {
      const td = document.createElement("td");
      td.className = "num";
      td.dataset.stat = stat;
      const v = data.stats[stat][i];
      td.dataset.value = v === null || v === undefined ? "" : String(v);
      td.textContent = v === null || v === undefined ? text("value_none") : formatNumber(v);
      tr.appendChild(td);
    }
    rows.push(tr);
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = stats.length + 1;
    td.textContent = ct("no_data");
    tr.appendChild(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

async function switchRange(figure, link) {
  const plotEl = figure.querySelector("[data-plot]");
  const message = figure.querySelector(".chart__message");
  if (message) message.remove();
  plotEl.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(link.dataset.series, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const series = await response.json();
    const data = fromSeries(figure, series);
    const key = link.dataset.range;
    const interval = link.dataset.interval;
    fillTable(figure, data, interval);
    const title = figure.querySelector("h3").textContent.trim();
    const per = ct(`per.${interval}`);
    const range = ct(`range_long.${key}`);
    figure.querySelector("[data-caption]").textContent =
      ct(figure.dataset.kind === "sum" ? "caption_sum" : "caption_mean", { title, per, range });
    plotEl.setAttribute("aria-label", summary(figure, data, key, interval));
    const csv = figure.querySelector("[data-csv-link]");
    csv.href = link.dataset.csv;
    csv.querySelector("[data-range-name]").textContent = `(${link.dataset.rangeText})`;
    for (const other of figure.querySelectorAll("[data-range]")) other.removeAttribute("aria-current");
    link.setAttribute("aria-current", "true");
    figure.dataset.interval = interval;
    figure.dataset.from = link.dataset.from;
    figure.dataset.to = link.dataset.to;
    draw(figure, data);
    history.replaceState(null, "", link.href);
  } catch {
    const p = document.createElement("p");
    p.className = "chart__message";
    p.setAttribute("role", "status");
    p.textContent = ct("load_failed");
    plotEl.after(p);
  } finally {
    plotEl.removeAttribute("aria-busy");
  }
}

for (const figure of document.querySelectorAll("figure[data-chart]")) {
  const plotEl = figure.querySelector("[data-plot]");
  if (!plotEl) continue;
  legend(figure);
  draw(figure, readTable(figure));
  for (const link of figure.querySelectorAll("[data-range]")) {
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      switchRange(figure, link);
    });
  }
  new ResizeObserver(() => {
    const plot = window.ortspulsCharts[figure.dataset.chart];
    const width = Math.max(plotEl.clientWidth, 280);
    if (plot && Math.abs(plot.width - width) > 4) plot.setSize({ width, height: 260 });
  }).observe(plotEl);
}

tickRelativeTimes();

// Latest values of the stations on this page.
connectLive((events) => {
  for (const ev of events) {
    for (const row of document.querySelectorAll(`tr[data-datastream="${ev.datastream_id}"]`)) {
      const value = row.querySelector("[data-latest-value] .value");
      if (value) {
        value.textContent = formatValue(ev.value);
        value.dataset.raw = ev.value ?? "";
      }
      const time = row.querySelector("[data-latest-time]");
      if (time && ev.time) {
        const el = document.createElement("time");
        el.dateTime = ev.time;
        el.textContent = formatDateTime(ev.time.split("/").pop());
        time.replaceChildren(el);
      }
    }
  }
});
