// Strings the scripts render. One catalog per language lives in server/i18n/<lang>.json;
// the page embeds the part scripts may use (the namespaces in server/i18n BROWSER_NAMESPACES)
// as <script id="lt-i18n" type="application/json">, in the page's language (<html lang>).

export const lang = (document.documentElement.lang || "").toLowerCase().startsWith("en") ? "en" : "zh-CN";

function readTable() {
  const node = document.getElementById("lt-i18n");
  if (!node) return {};
  try {
    return JSON.parse(node.textContent) || {};
  } catch {
    return {};
  }
}

const table = readTable();

// t("round.n", {n: 2}) -> "第2轮"; an unknown key returns the key.
export function t(key, params = {}) {
  const s = table[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

const intFormat = new Intl.NumberFormat(lang);

export function fmtInt(n) {
  return intFormat.format(Math.round(Number(n) || 0));
}
