// The same trend line as the server's ortspuls/web/sparkline.py, as an SVG element.
const NS = "http://www.w3.org/2000/svg";
const WIDTH = 120;
const HEIGHT = 32;
const PAD = 2;

export function sparklinePoints(values) {
  const nums = values.map((v) => (typeof v === "number" && Number.isFinite(v) ? v : null));
  const present = nums.filter((v) => v !== null);
  if (present.length < 2) return "";
  const low = Math.min(...present);
  const high = Math.max(...present);
  const span = high - low || 1;
  const step = (WIDTH - 2 * PAD) / (nums.length - 1);
  const points = [];
  nums.forEach((v, i) => {
    if (v === null) return;
    const x = PAD + i * step;
    const y = high === low ? HEIGHT / 2 : HEIGHT - PAD - ((v - low) / span) * (HEIGHT - 2 * PAD);
    points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  return points.join(" ");
}

export function sparklineSvg(values, label) {
  const points = sparklinePoints(values);
  if (!points) return null;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points);
  svg.appendChild(line);
  return svg;
}
