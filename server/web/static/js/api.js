// Every call the console makes to the server: same origin, the session cookie, and the CSRF
// header on writes. Errors become ApiError with the server's own sentence.

const API = "/api/v1";
let csrfToken = null;
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(typeof detail === "string" ? detail : describe(detail));
    this.status = status;
    this.detail = detail;
    this.body = body || {};
  }
}

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((p) => `${(p.loc || []).slice(1).join(".") || "request"}: ${p.msg}`).join("; ");
  }
  return detail ? JSON.stringify(detail) : "the server refused the request";
}

export function setCsrf(token) {
  csrfToken = token;
}

/** Called when the server answers 401: the session ended (signed out elsewhere, expired). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-StreetWatch-CSRF"] = csrfToken;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "cannot reach the server; check the network and try again");
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onSignedOut();
    throw new ApiError(response.status, data && data.detail, data);
  }
  return data;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);
export const patch = (path, body) => request("PATCH", path, body);
export const apiUrl = (path) => API + path;
