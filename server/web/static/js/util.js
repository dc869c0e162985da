// Small DOM and formatting helpers shared by every view. No framework: the page is small enough
// that building elements by hand keeps it fast and dependency-free.

/** Build an element: el("div", {class: "row", onclick: fn}, child, "text", ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** The same for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.setAttribute("class", value);
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A detector class as people write it: "garbage bin", "A-frame sign". */
export function className(name) {
  return name === "a_frame_sign" ? "A-frame sign" : name.replaceAll("_", " ");
}

/** "1 box", "2 boxes": counts in sentences people read. */
export function counted(n, noun, plural = `${noun}s`) {
  return `${n} ${n === 1 ? noun : plural}`;
}

/** Replace every child of ``node``. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const TYPE_NAMES = {
  street_vending: "Street vending",
  garbage_overflow: "Garbage overflow",
  illegal_signboard: "Illegal signboard",
  unsealed_truck: "Unsealed truck",
};

/** The same, short, for the count chips: four types fit one line of a 330 px list. */
export const TYPE_SHORT_NAMES = {
  street_vending: "Vending",
  garbage_overflow: "Garbage",
  illegal_signboard: "Signboard",
  unsealed_truck: "Truck",
};

export const STATE_NAMES = {
  new: "New",
  confirmed: "Confirmed",
  rejected: "Rejected",
  dispatched: "Dispatched",
  possibly_resolved: "Possibly resolved",
  resolved: "Resolved",
  closed: "Closed",
  // Patrol sightings of street vending: not in the queue until a second pass (listed by this filter).
  awaiting_recurrence: "Awaiting 2nd pass",
  expired: "Expired sighting",
};

export const OPEN_STATES = ["new", "confirmed", "dispatched", "possibly_resolved"];

/** A case number as a person types it ("1234" or "#1234"); null for anything else. */
export function caseNumber(text) {
  const trimmed = String(text || "").trim();
  return /^#?\d{1,10}$/.test(trimmed) ? Number(trimmed.replace("#", "")) : null;
}

export function typeName(type) {
  return TYPE_NAMES[type] || type;
}

export function stateName(state) {
  return STATE_NAMES[state] || state;
}

/** "3 min ago", "2 h ago", "4 d ago": how dispatchers read age at a glance. */
export function ago(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 0) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Local date and time, to the second, in a fixed readable form; ``zoned`` adds the zone ("UTC+8"). */
export function when(iso, zoned = false) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return zoned ? `${text} ${zoneName(d)}` : text;
}

/**
 * The browser's offset from UTC at ``date`` as "UTC", "UTC+8" or "UTC-3:30": the console shows
 * local times, and a dispatcher comparing them with a box's log or a colleague elsewhere must
 * know which clock they are on. An offset, not a zone name: it is the same in every browser.
 */
export function zoneName(date = new Date()) {
  const east = -date.getTimezoneOffset(); // minutes; getTimezoneOffset counts west as positive
  if (east === 0) return "UTC";
  const hours = Math.floor(Math.abs(east) / 60);
  const minutes = Math.abs(east) % 60;
  return `UTC${east > 0 ? "+" : "-"}${hours}${minutes ? `:${String(minutes).padStart(2, "0")}` : ""}`;
}

/** Due in / overdue by, for an SLA time. */
export function dueText(iso, now = Date.now()) {
  if (!iso) return "";
  const minutes = Math.round((Date.parse(iso) - now) / 60000);
  const span = (m) => (Math.abs(m) < 90 ? `${Math.abs(m)} min` : `${Math.round(Math.abs(m) / 60)} h`);
  return minutes >= 0 ? `due in ${span(minutes)}` : `overdue ${span(minutes)}`;
}

export function isOverdue(item, now = Date.now()) {
  if (typeof item.overdue === "boolean") return item.overdue;
  return OPEN_STATES.includes(item.state) && !!item.sla_due_at && Date.parse(item.sla_due_at) < now;
}

/** Query string from an object, skipping empty values and repeating arrays. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Sent on ``document`` by the Signs page when it changed the register (what signboard cases say). */
export const REGISTER_CHANGED = "streetwatch:register-changed";
