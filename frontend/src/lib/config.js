// The page's configuration block (language, locale, time zone, texts) written by the server.
export function readJson(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : {};
}

export const config = readJson("ortspuls-config");

// A catalogue text with {name} placeholders; plural entries are {one, other} tables.
export function text(key, params = {}, texts = config.texts || {}) {
  let entry = texts[key];
  if (entry === undefined) return key;
  if (typeof entry === "object") entry = params.n === 1 ? entry.one : entry.other;
  return entry.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}
