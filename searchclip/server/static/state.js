// The search as the page holds it: each parameter of GET /api/search under its API name,
// as a list of strings (the model of URLSearchParams). The address bar, the form controls
// and the request (query string or JSON) are all views of this one object, so a bookmarked
// URL is exactly the API request it stands for.

/** Parameters that may repeat (?tag=a&tag=b). */
export const LISTS = ["not", "like", "not_like", "tag", "no_tag", "format", "in"];
/** Parameters with one value; the order here is the order in the URL (q first). */
export const SINGLES = [
  "q", "after", "before", "camera", "lens", "path", "orientation", "has_gps",
  "relevant", "min_score", "sort", "min_width", "min_height", "near", "within",
];
const KNOWN = new Set([...LISTS, ...SINGLES]);
const INTS = new Set(["like", "not_like", "min_width", "min_height"]);
const FLOATS = new Set(["min_score", "within"]);
const BOOLS = new Set(["relevant", "has_gps"]);
// Values that mean "as if not given": left out of the URL so that it stays short.
const DEFAULTS = { sort: "score", relevant: "false" };

/** The query in a URL's search part; unknown names (token, …) are left out. */
export function fromUrl(search) {
  const query = {};
  for (const [key, value] of new URLSearchParams(search)) {
    if (!KNOWN.has(key) || value.trim() === "") continue;
    if (SINGLES.includes(key)) query[key] = [value];
    else (query[key] ??= []).push(value);
  }
  return query;
}

/** The query as URL parameters (for the address bar and GET /api/search). */
export function toParams(query, page = {}) {
  const params = new URLSearchParams();
  for (const key of [...SINGLES, ...LISTS]) {
    for (const value of query[key] ?? []) {
      if (value !== "" && DEFAULTS[key] !== value) params.append(key, value);
    }
  }
  for (const [key, value] of Object.entries(page)) params.set(key, String(value));
  return params;
}

/** The query as a SearchRequest JSON object (the `query` field of an upload), typed as the
 * API wants it: a JSON body is not coerced from strings the way query parameters are. */
export function toJson(query, page = {}) {
  const body = { ...page };
  for (const [key, values] of toParams(query).entries()) {
    const value = typed(key, values);
    if (LISTS.includes(key)) (body[key] ??= []).push(value);
    else body[key] = value;
  }
  return body;
}

function typed(key, text) {
  if (INTS.has(key)) return Number.parseInt(text, 10);
  if (FLOATS.has(key)) return Number(text);
  if (BOOLS.has(key)) return text === "true";
  return text;
}

/** The one value of `key` ("" when not given). */
export function first(query, key) {
  return query[key]?.[0] ?? "";
}

/** A copy of `query` with `key` set to `values` (a string or a list; empty removes it). */
export function withValue(query, key, values) {
  const list = (Array.isArray(values) ? values : [values]).map(String).filter((v) => v !== "");
  const copy = { ...query };
  if (list.length) copy[key] = list;
  else delete copy[key];
  return copy;
}

/** A copy of `query` with `value` added to (or, with `add` false, taken from) list `key`. */
export function toggled(query, key, value, add) {
  const rest = (query[key] ?? []).filter((v) => v !== value);
  return withValue(query, key, add ? [...rest, value] : rest);
}

/** Whether the API can run `query`: it needs words, an image, like ids or a tag to list. */
export function runnable(query, image) {
  return Boolean(first(query, "q").trim() || query.like?.length || query.tag?.length || image);
}

/** The same search, compared by its URL form (order of keys does not matter). */
export function sameQuery(a, b) {
  return toParams(a).toString() === toParams(b).toString();
}

/** Texts of the "not" field: comma separated, each may carry a weight ("2:fog"). */
export function splitNot(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}
