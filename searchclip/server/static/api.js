// Calls to the JSON API. Every URL is relative to the page, so a server mounted under a
// prefix (/photos/) and one started with ?token= (which sets a cookie on the first request)
// both work with nothing more: the browser sends the cookie with each of these requests.

import { toJson, toParams } from "./state.js";

/** A failed call: the HTTP status (0 when the server could not be reached) and the API's
 * one-line message ({"error": "..."}). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiUrl(path, params) {
  const url = new URL(path, document.baseURI);
  if (params) url.search = params.toString();
  return url.href;
}

async function call(url, init = {}) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...init });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the server cannot be reached: is `searchclip serve` still running?");
  }
  if (response.ok) return response.json();
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch {
    // not JSON (a proxy's error page): the status line says enough
  }
  throw new ApiError(response.status, message);
}

export const getInfo = () => call(apiUrl("api/info"));
export const getTags = () => call(apiUrl("api/tags"));
export const getImage = (id) => call(apiUrl(`api/images/${id}`));

export function getSimilar(id, limit = 12) {
  return call(apiUrl(`api/images/${id}/similar`, new URLSearchParams({ limit })));
}

/** One page of a search: GET with the query's parameters, or, with an uploaded image, a
 * multipart POST holding the image and the rest of the query as JSON. */
export function search(query, { offset, limit, image, signal }) {
  if (!image) {
    return call(apiUrl("api/search", toParams(query, { limit, offset })), { signal });
  }
  const form = new FormData();
  form.append("image", image, image.name || "image");
  form.append("query", JSON.stringify(toJson(query, { limit, offset })));
  return call(apiUrl("api/search"), { method: "POST", body: form, signal });
}

/** What to tell a person about `err`: a title and a line (the API's message kept as is). */
export function explain(err) {
  if (err.status === 401) {
    return {
      title: "This server needs its access token",
      text:
        "Open the address that `searchclip serve --token …` printed (it ends in ?token=…) " +
        `once in this browser; it remembers the token for the session. (${err.message})`,
    };
  }
  if (err.status === 0) return { title: "No connection", text: err.message };
  if (err.status === 409) return { title: "The index cannot answer yet", text: err.message };
  if (err.status >= 500) return { title: "The server failed", text: err.message };
  return { title: "The search could not run", text: err.message };
}
