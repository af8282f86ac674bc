// Number and time formatting matching the server's (ortspuls/web/i18n.py): Intl with at most
// two fraction digits (half-up on the shortest decimal form), times in the town's time zone.
import { config, text } from "./config.js";

const numberFormats = new Map();

export function formatNumber(value, maxFraction = 2) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  let fmt = numberFormats.get(maxFraction);
  if (!fmt) {
    fmt = new Intl.NumberFormat(config.locale, { maximumFractionDigits: maxFraction });
    numberFormats.set(maxFraction, fmt);
  }
  const out = fmt.format(value);
  return out === "-0" ? "0" : out;
}

export function formatValue(value) {
  if (value === null || value === undefined) return text("value_none", {}, config.texts);
  if (typeof value === "boolean") return text(value ? "value_true" : "value_false");
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

const dateTimeFormat = () =>
  new Intl.DateTimeFormat(config.locale, {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
const dateFormat = () =>
  new Intl.DateTimeFormat(config.locale, {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
  });

let dtf;
let df;
export function formatDateTime(iso) {
  dtf = dtf || dateTimeFormat();
  return dtf.format(new Date(iso));
}
export function formatDate(iso) {
  df = df || dateFormat();
  return df.format(new Date(iso));
}

// "vor 5 Min." from the same catalogue entries the server uses.
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return text("time.never");
  const end = iso.includes("/") ? iso.split("/").pop() : iso;
  const seconds = (now - new Date(end).getTime()) / 1000;
  if (seconds < 60) return text("time.just_now");
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return text("time.minutes_ago", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return text("time.hours_ago", { n: hours });
  return text("time.days_ago", { n: Math.floor(hours / 24) });
}

export function updateRelativeTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-relative]")) {
    const iso = el.getAttribute("datetime");
    if (iso) el.textContent = relativeTime(iso);
  }
}

// Keep every <time data-relative> current while the page is open.
export function tickRelativeTimes() {
  updateRelativeTimes(document);
  return setInterval(() => updateRelativeTimes(document), 30000);
}
