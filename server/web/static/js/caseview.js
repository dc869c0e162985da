// The case on the right of the queue: frame (annotated / clean with the boxes drawn), the
// reviewer's actions, attributes, map, time line of events and the history of transitions.
// Every action sends expected_state, so a case someone else moved is a clear 409 message,
// never a silent override.

import { ApiError, apiUrl, get, post } from "./api.js";
import { cloneReview, drawBoxes, editBoxes } from "./boxes.js";
import { ask, choose, confirmDialog } from "./dialogs.js";
import { drawMap, metresEastNorth } from "./map.js";
import { OPEN_STATES, ago, caseNumber, className, counted, dueText, el, isOverdue, replace, stateName, svg, typeName, when, zoneName, REGISTER_CHANGED } from "./util.js";

/** Moves the workflow allows from each state (mirrors server/cases/workflow.py). */
const NEXT_STATES = {
  new: ["confirmed", "rejected", "dispatched", "resolved"],
  confirmed: ["dispatched", "rejected", "resolved"],
  dispatched: ["dispatched", "confirmed", "rejected", "resolved"],
  possibly_resolved: ["new", "confirmed", "dispatched", "resolved", "closed"],
  resolved: ["closed", "confirmed"],
  rejected: ["new", "closed"],
  closed: [],
};
/** States that confirming takes a case back from, and what that undoes (asked before it is done). */
const BACKWARDS_TO_CONFIRMED = {
  dispatched: "It is dispatched: confirming takes it back from the team, to be dispatched again.",
  resolved: "It is resolved: confirming reopens it as a violation still there, to be dispatched again.",
};
const ACTION_TARGET = { confirm: "confirmed", reject: "rejected", dispatch: "dispatched", resolve: "resolved", close: "closed" };

export const FALLBACK_REASONS = [
  { code: "not_a_violation", description: "Not a violation" },
  { code: "wrong_class", description: "Wrong class" },
  { code: "duplicate", description: "Duplicate" },
  { code: "bad_image", description: "Bad image" },
  { code: "permitted", description: "Permitted" },
];

/**
 * Where the best-placed object was from its camera, as the evidence photo shows it: ": 22 m ahead
 * of the van, 5 m to its right". The side needs the camera's heading; under 1.5 m it is not said
 * (a box that knows no field of view places objects on its route).
 */
function placedFrom(events) {
  const placed = events.filter((e) => e.object_position && e.position);
  if (!placed.length) return "";
  const e = placed.reduce((a, b) => (b.object_position.accuracy_m < a.object_position.accuracy_m ? b : a));
  const along = e.object_position.along_m;
  let text = `: ${Math.abs(along).toFixed(0)} m ${along < 0 ? "behind" : "ahead of"} the van`;
  const heading = e.position.heading_deg;
  if (heading !== null && heading !== undefined) {
    const { east, north } = metresEastNorth(e.position, e.object_position);
    const rad = (heading * Math.PI) / 180;
    const right = east * Math.cos(rad) - north * Math.sin(rad);
    if (Math.abs(right) >= 1.5) text += `, ${Math.abs(right).toFixed(0)} m to its ${right > 0 ? "right" : "left"}`;
  }
  return text;
}

export class CaseView {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx; // {role, config, options, onChanged(detail), next(), prev(), canAct()}
    this.detail = null;
    this.shownEvent = null;
    this.showClean = true;
    this.editing = false;
    this.busy = false;
    this.pending = null; // the action on its way, a promise that settles when it is done (act)
    this.cache = new Map();
    // Full screen shows the frame in #full-view, which no redraw replaces: t, j and k keep it
    // full screen (the frame box itself is rebuilt on each, and leaving the page leaves full screen).
    this.fullView = document.getElementById("full-view");
    // A register change (a permit imported, edited or removed) changes what signboard cases say
    // without touching the cases themselves: the copies fetched ahead are out of date.
    document.addEventListener(REGISTER_CHANGED, () => this.cache.clear());
    document.addEventListener("fullscreenchange", () => {
      if (document.fullscreenElement !== this.fullView && this.fullView.childElementCount) {
        this.fullView.replaceChildren();
        if (this.detail) this.render(this.detail);
      }
    });
    this.empty();
  }

  get fullScreenOn() {
    return !!this.fullView && document.fullscreenElement === this.fullView;
  }

  empty(text = "Select a case in the queue (j / k or the arrow keys).") {
    this.detail = null;
    if (this.ctx.shown) this.ctx.shown();
    replace(this.root, el("div", { class: "case-empty" }, text));
  }

  async fetch(id) {
    const detail = await get(`/cases/${id}`);
    this.cache.set(id, { at: Date.now(), detail });
    return detail;
  }

  /** Load the next case's detail and frame ahead of time, so triage never waits on the network. */
  prefetch(id) {
    if (!id || this.cache.has(id)) return;
    this.fetch(id)
      .then((detail) => {
        const event = reviewEvent(detail);
        const url = event && (event.evidence.clean_url || event.evidence.frame_url);
        if (url) new Image().src = url;
      })
      .catch(() => this.cache.delete(id));
  }

  async show(id, { fresh = false } = {}) {
    if (this.editing) return;
    this.want = id;
    const cached = this.cache.get(id);
    let detail = !fresh && cached && Date.now() - cached.at < 30000 ? cached.detail : null;
    if (!detail) {
      try {
        detail = await this.fetch(id);
      } catch (err) {
        if (this.want === id) this.empty(err instanceof ApiError && err.status === 404 ? `Case ${id} no longer exists.` : `Cannot load case ${id}: ${err.message}`);
        return;
      }
    }
    if (this.want !== id) return; // the reviewer moved on while this one loaded
    const another = !this.detail || this.detail.id !== id;
    if (another) this.shownEvent = null;
    this.render(detail);
    if (another) this.root.scrollTop = 0; // a new case opens at its title and actions
  }

  /**
   * A newer copy of the shown case arrived (live stream); redraw unless the reviewer is editing,
   * or has already moved on from it (the case just decided, still drawn while the next one loads:
   * showing it again would take the reviewer back).
   */
  updated(item) {
    this.cache.delete(item.id);
    const current = this.detail && this.detail.id === item.id && this.want === item.id;
    if (current && item.updated_at !== this.detail.updated_at && !this.editing && !this.busy) {
      this.show(item.id, { fresh: true });
    }
  }

  allowed(action) {
    const d = this.detail;
    if (!d || !this.ctx.canAct()) return false;
    if (Array.isArray(d.allowed_actions)) return d.allowed_actions.includes(action);
    if (action === "reopen") return ["rejected", "resolved", "possibly_resolved"].includes(d.state);
    if (["relabel", "annotate", "merge"].includes(action)) return d.state !== "closed";
    if (action === "note") return true;
    return (NEXT_STATES[d.state] || []).includes(ACTION_TARGET[action]);
  }

  render(detail, message = null) {
    this.detail = detail;
    if (this.ctx.shown) this.ctx.shown();
    const event = this.shownEvent ? detail.events.find((e) => e.event_id === this.shownEvent) || reviewEvent(detail) : reviewEvent(detail);
    this.shownEvent = event ? event.event_id : null;
    const models = [...new Set(detail.events.map((e) => `${e.model.name} ${e.model.version}`))];
    const devices = countBy(detail.events.map((e) => e.device_id));
    const overdue = isOverdue(detail);

    const head = el(
      "div",
      { class: "case-head" },
      el("h2", { id: "case-title" }, `#${detail.id} ${typeName(detail.violation_type)}`),
      el("span", { class: `badge state-${detail.state}`, id: "case-state" }, stateName(detail.state)),
      el("span", { class: `badge prio prio-${detail.priority}`, title: `Priority ${detail.priority} (1 most urgent, 5 least)` }, `P${detail.priority}`),
      detail.candidate ? el("span", { class: "badge candidate" }, "candidate") : null,
      // A finished case has no due time left to show.
      overdue ? el("span", { class: "badge overdue" }, dueText(detail.sla_due_at)) : detail.sla_due_at && OPEN_STATES.includes(detail.state) ? el("span", { class: "muted", id: "case-due" }, dueText(detail.sla_due_at)) : null,
      detail.review && detail.review.label ? el("span", { class: "chip" }, `label: ${detail.review.label}`) : null,
    );

    const frame = this.renderFrame(detail, event);
    const side = el(
      "div",
      { class: "side" },
      this.renderFacts(detail, models, devices),
      this.renderAttributes(detail),
      el("div", { class: "card", id: "case-map" }, el("h3", {}, "Map"), this.renderMap(detail)),
    );

    replace(
      this.root,
      head,
      el("div", { class: "muted" }, detail.title),
      this.viewersNote(detail.id),
      this.renderActions(),
      message ? el("div", { class: `message ${message.kind}`, id: "case-message", role: "alert" }, message.text) : el("div", { id: "case-message" }),
      el("div", { class: "case-grid" }, el("div", {}, this.placeFrame(frame), this.renderTimeline(detail)), side),
      this.renderHistory(detail),
    );
  }

  /** Who else has this case open now: said before anyone decides it twice. */
  viewersNote(id) {
    const names = this.ctx.viewers ? this.ctx.viewers(id) : [];
    const who = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} have` : `${names[0]} has`;
    return names.length
      ? el("div", { class: "message viewers", id: "case-viewers", role: "status" }, `${who} this case open too: agree who takes it before you both decide.`)
      : el("div", { id: "case-viewers", hidden: true });
  }

  /** The presence answer changed: redraw the note alone (the case and any dialog stay as they are). */
  drawViewers() {
    const note = this.root.querySelector("#case-viewers");
    if (this.detail && note) note.replaceWith(this.viewersNote(this.detail.id));
  }

  renderActions() {
    const b = (action, label, key, handler, cls = "") =>
      el("button", { type: "button", class: cls, id: `act-${action}`, disabled: !this.allowed(action), title: `${label} (${key})`, onclick: handler }, label, el("kbd", {}, key));
    if (!this.ctx.canAct()) return el("div", { class: "actions muted", id: "actions" }, "Read only: your role is viewer.");
    return el(
      "div",
      { class: "actions", id: "actions" },
      // Confirming is the next step of a new case only; further on it takes the case back.
      b("confirm", "Confirm", "c", () => this.confirm(), this.detail && this.detail.state === "new" ? "primary" : ""),
      b("reject", "Reject…", "x", () => this.reject(), "danger"),
      b("relabel", "Class…", "l", () => this.relabel()),
      b("annotate", "Boxes", "e", () => this.editBoxes()),
      b("dispatch", "Dispatch…", "d", () => this.dispatch()),
      b("resolve", "Resolve", "s", () => this.simple("resolve")),
      b("close", "Close", "w", () => this.simple("close")),
      b("reopen", "Reopen", "o", () => this.simple("reopen")),
      b("merge", "Merge…", "m", () => this.merge()),
      b("note", "Note…", "n", () => this.note()),
    );
  }

  renderFrame(detail, event) {
    const box = el("div", { class: "frame-box", id: "frame-box" });
    const tools = el("div", { class: "frame-tools" });
    if (!event || !event.evidence) {
      const why = detail.merged_into
        ? ["Merged into ", el("a", { href: `#/queue?case=${detail.merged_into}` }, `case #${detail.merged_into}`), ": its events and evidence are there now."]
        : "The box kept no evidence image for this case.";
      box.append(el("div", { class: "case-empty" }, why));
      return el("div", {}, box);
    }
    const ev = event.evidence;
    const clean = this.showClean && ev.clean_url;
    const img = el("img", {
      src: clean ? ev.clean_url : ev.frame_url,
      alt: clean ? "clean frame" : "annotated frame",
      id: "frame-img",
      draggable: "false",
      // Evidence travels apart from its event and may not have arrived yet.
      onerror: () => (img.closest(".frame") || img).replaceWith(el("div", { class: "case-empty" }, "The image has not reached the server yet; it shows once it does.")),
    });
    // Full screen sizes the frame from its shape (CSS cannot read it from the image); set through
    // the CSSOM, which the page's Content-Security-Policy allows where a style attribute is not.
    if (event.frame_width && event.frame_height) img.style.setProperty("--aspect", String(event.frame_width / event.frame_height));
    const frame = el("div", { class: "frame", id: "frame" }, img);
    const review = this.reviewState(detail, event);
    if (clean) {
      const layer = svg("svg", { class: "boxes", id: "boxes", viewBox: `0 0 ${event.frame_width} ${event.frame_height}`, preserveAspectRatio: "none" });
      drawBoxes(layer, review, { detectorClass: (detail.review && detail.review.label) || event.detector_class });
      frame.append(layer);
    }
    box.append(frame);
    replace(
      tools,
      el("button", { type: "button", id: "toggle-frame", disabled: !ev.clean_url, onclick: () => this.toggleFrame() }, clean ? "Show annotated" : "Show clean", el("kbd", {}, "t")),
      el("button", { type: "button", id: "full-frame", onclick: () => this.fullScreen() }, "Full screen", el("kbd", {}, "f")),
      // The time the picture was taken: the evidence frame's, which for a moving object is not the event's.
      el("span", { class: "muted", id: "frame-caption" }, `${event.detector_class} ${(event.score * 100).toFixed(0)}% · ${event.device_id} · ${when(ev.captured_at || event.observed_at, true)}`),
      clean ? el("span", { class: "muted" }, "dashed: detector · green: corrected · blue: added") : null,
    );
    return el("div", {}, tools, box);
  }

  reviewState(detail, event) {
    const r = detail.review;
    const same = r && r.event_id === event.event_id;
    const parts = {};
    if (same && r.attributes) for (const [name, a] of Object.entries(r.attributes)) if (a && a.box) parts[name] = a.box;
    return {
      // The object in the evidence frame shown; older boxes only sent the latest frame's box.
      detectorBox: (event.evidence && event.evidence.box) || event.box,
      box: same && r.box ? r.box : null,
      added: same && r.added_boxes ? r.added_boxes : [],
      parts,
    };
  }

  renderFacts(detail, models, devices) {
    const dl = el("dl", { class: "facts", id: "facts" });
    const row = (k, v) => v !== null && v !== undefined && v !== "" && dl.append(el("dt", {}, k), el("dd", {}, v));
    row("Opened", `${when(detail.opened_at, true)} (${ago(detail.opened_at)})`);
    row("Last seen", `${when(detail.last_event_at, true)} (${ago(detail.last_event_at)})`);
    row("SLA due", detail.sla_due_at ? when(detail.sla_due_at, true) : "none");
    row("Events", `${detail.events_total}`);
    row("Devices", Object.entries(devices).map(([d, n]) => `${d} (${n})`).join(", "));
    row("Model", models.join(", "));
    row("Best score", `${(detail.max_score * 100).toFixed(0)}%`);
    row("Team", detail.assigned_team);
    // A box that placed the object itself (event schema 4) puts the case there, not at its camera.
    const placed = detail.events.some((e) => e.object_position);
    const where = detail.lat !== null ? `${detail.lat.toFixed(5)}, ${detail.lon.toFixed(5)}` : null;
    const how = placed ? `the object, placed by the box${placedFrom(detail.events)}` : "camera fix";
    row("Position", where === null ? "no position" : `${where} (${how})`);
    if (detail.recurrence_of) row("Recurs", el("a", { href: `#/queue?case=${detail.recurrence_of}` }, `case #${detail.recurrence_of}`));
    if (detail.merged_into) row("Merged into", el("a", { href: `#/queue?case=${detail.merged_into}` }, `case #${detail.merged_into}`));
    if (detail.merged_from && detail.merged_from.length) row("Merged from", detail.merged_from.map((id) => `#${id}`).join(", "));
    if (detail.sign_register) row("Register", registerFacts(detail.sign_register));
    // For the officer who acts on it: images, facts and history in one file that checks itself.
    row("Evidence", el("a", { id: "case-package", href: apiUrl(`/cases/${detail.id}/package`), download: "" }, "package (ZIP)"));
    return el("div", { class: "card" }, el("h3", {}, "Case"), dl);
  }

  renderAttributes(detail) {
    const defs = (this.ctx.options.attributes || {})[detail.violation_type] || [];
    const said = boxSaid(detail.attributes);
    if (!defs.length && !said) return null;
    const current = recorded(detail);
    const box = el("div", { class: "attrs", id: "attributes" });
    if (said) box.append(said);
    for (const def of defs) {
      const select = el(
        "select",
        { "aria-label": def.name, id: `attr-${def.name}`, disabled: !this.allowed("annotate") },
        el("option", { value: "" }, "not set"),
        def.values.map((v) => el("option", { value: v.value, selected: current[def.name] && current[def.name].value === v.value }, v.value.replaceAll("_", " "))),
      );
      select.addEventListener("change", () => this.record(def, select.value));
      const part = def.box === "part";
      const hasBox = !!(current[def.name] && current[def.name].box);
      const draw = part
        ? el("button", { type: "button", id: `attr-${def.name}-box`, disabled: !this.allowed("annotate") || !current[def.name], title: `Draw ${def.box_hint} on the clean frame`, onclick: () => this.editBoxes(def.name) }, hasBox ? "redraw box" : "draw box")
        : null;
      box.append(el("label", { title: def.description }, `${def.name}:`, select, draw));
      if (part) box.append(el("span", { class: "muted" }, `box: ${def.box_hint}${hasBox ? " (drawn)" : ""}`));
    }
    return el("div", { class: "card" }, el("h3", {}, "Attributes"), box);
  }

  renderMap(detail) {
    const points = detail.events
      .filter((e) => e.position)
      .map((e) => ({ lat: e.position.lat, lon: e.position.lon, kind: "event", title: `${e.device_id} ${when(e.observed_at)}: camera` }));
    for (const e of detail.events.filter((ev) => ev.object_position)) {
      const place = e.object_position;
      points.push({ lat: place.lat, lon: place.lon, kind: "object", title: `${e.device_id} ${when(e.observed_at)}: the object, placed by the box (±${place.accuracy_m.toFixed(0)} m)` });
    }
    if (detail.lat !== null && detail.lon !== null) {
      // Other cases of the queue close by: a duplicate to merge shows up here.
      for (const other of this.ctx.nearby(detail, 300)) {
        points.push({ lat: other.lat, lon: other.lon, kind: "other", title: `case #${other.id} ${typeName(other.violation_type)} (${stateName(other.state)})`, onclick: () => this.ctx.open(other.id) });
      }
      points.push({ lat: detail.lat, lon: detail.lon, kind: "case", title: `case #${detail.id}` });
    }
    const tiles = this.ctx.config.tile_url ? { url: this.ctx.config.tile_url, attribution: this.ctx.config.tile_attribution } : null;
    // Where no sign may hang: a signboard case's map shows the zones it reaches into.
    const areas = detail.violation_type === "illegal_signboard"
      ? (this.ctx.zones || []).map((z) => ({ title: `No-sign zone ${z.name}${z.reason ? `: ${z.reason}` : ""}`, polygons: z.polygons }))
      : [];
    // What the dots are: only the kinds this map shows.
    const names = { case: "this case", event: "camera", object: "the object, placed by the box", other: "other cases (click one)" };
    const shown = Object.keys(names).filter((kind) => points.some((p) => p.kind === kind));
    const map = drawMap(points, { tiles, label: `Map of case ${detail.id}`, areas });
    const keys = shown.map((kind) => el("span", {}, el("i", { class: `dot ${kind}` }), names[kind]));
    // A zone is drawn only where it reaches into the map: name it only then.
    if (map.querySelector("path.zone")) keys.push(el("span", {}, el("i", { class: "swatch zone" }), "no-sign zone"));
    return [map, keys.length ? el("p", { class: "map-legend muted" }, keys) : null];
  }

  renderTimeline(detail) {
    const events = detail.events;
    const card = el("div", { class: "card", id: "timeline" }, el("h3", {}, `Events (${detail.events_total})`));
    if (!events.length) return card;
    const t0 = Date.parse(events[0].observed_at);
    const t1 = Date.parse(events[events.length - 1].observed_at);
    const span = Math.max(1, t1 - t0);
    const line = svg("svg", { class: "timeline", viewBox: "0 0 600 46", preserveAspectRatio: "none" });
    line.append(svg("line", { class: "axis", x1: 10, y1: 20, x2: 590, y2: 20 }));
    events.forEach((e) => {
      const x = 10 + (580 * (Date.parse(e.observed_at) - t0)) / span;
      const dot = svg("circle", { class: `tick${e.event_id === this.shownEvent ? " shown" : ""}`, cx: x, cy: 20, r: 5, onclick: () => this.showEvent(e.event_id) });
      dot.append(svg("title", {}, `${when(e.observed_at)} ${e.device_id} ${e.lifecycle}`));
      line.append(dot);
    });
    line.append(svg("text", { x: 10, y: 42 }, when(events[0].observed_at)), svg("text", { x: 590, y: 42, "text-anchor": "end" }, when(events[events.length - 1].observed_at)));
    const table = el(
      "table",
      { class: "events-table" },
      el("thead", {}, el("tr", {}, [`Time (${zoneName()})`, "Device", "Step", "Class", "Score", "Model"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        events.slice(-50).map((e) =>
          el(
            "tr",
            { class: e.event_id === this.shownEvent ? "shown" : "", onclick: () => this.showEvent(e.event_id) },
            el("td", { class: "time" }, when(e.observed_at)),
            el("td", {}, e.device_id),
            el("td", {}, e.lifecycle),
            el("td", {}, e.detector_class + (e.candidate ? " (candidate)" : "")),
            el("td", { class: "num" }, `${(e.score * 100).toFixed(0)}%`),
            el("td", {}, `${e.model.name} ${e.model.version}`),
          ),
        ),
      ),
    );
    card.append(line, table);
    return card;
  }

  renderHistory(detail) {
    return el(
      "div",
      { class: "card", id: "history" },
      el("h3", {}, "History"),
      el(
        "table",
        { class: "history-table" },
        el("thead", {}, el("tr", {}, [`When (${zoneName()})`, "Who", "Action", "State", "Why"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          detail.transitions.map((t) =>
            el(
              "tr",
              {},
              el("td", { class: "time" }, when(t.at)),
              el("td", {}, t.actor),
              el("td", {}, t.action || (t.from_state ? "" : "opened")),
              el("td", {}, t.from_state && t.from_state !== t.to_state ? `${stateName(t.from_state)} → ${stateName(t.to_state)}` : stateName(t.to_state)),
              el("td", {}, t.action === "merge" ? mergeWhy(t) : [t.reason_code ? `[${t.reason_code}] ` : "", t.reason || "", t.team ? ` team: ${t.team}` : "", t.label ? ` label: ${t.label}` : "", detailsText(t.details)].join("")),
            ),
          ),
        ),
      ),
    );
  }

  showEvent(eventId) {
    if (this.editing) return;
    this.shownEvent = eventId;
    this.render(this.detail);
  }

  toggleFrame() {
    if (this.editing) return;
    this.showClean = !this.showClean;
    this.render(this.detail);
  }

  /** The frame where it shows: in the case pane, or full screen (then a line says so in the pane). */
  placeFrame(frame) {
    if (!this.fullScreenOn) return frame;
    // Full screen shows the frame alone: say which case it is, and keep the messages in sight.
    const d = this.detail;
    const title = el("div", { class: "full-title", id: "full-title" }, `#${d.id} ${typeName(d.violation_type)} · ${stateName(d.state)}`);
    replace(this.fullView, title, frame);
    return el("p", { class: "muted", id: "frame-elsewhere" }, "The frame is shown full screen (f or Esc leaves).");
  }

  fullScreen() {
    const box = document.getElementById("frame-box");
    if (!box) return;
    if (document.fullscreenElement) {
      document.exitFullscreen();
      return;
    }
    if (!this.fullView || !this.fullView.requestFullscreen) {
      box.classList.toggle("full");
      return;
    }
    this.fullView.requestFullscreen().then(
      () => this.render(this.detail),
      () => box.classList.toggle("full"), // refused (an iframe without allowfullscreen): fill the window
    );
  }

  message(kind, text) {
    const slot = document.getElementById("case-message");
    if (slot) replace(slot, el("div", { class: `message ${kind}`, role: "alert" }, text));
  }

  /** Send one action; on success redraw (and move on when ``advance``); a 409 is said plainly. */
  /** The case and state the reviewer is looking at now, taken before any dialog opens. */
  seen() {
    return this.detail ? { id: this.detail.id, state: this.detail.state } : null;
  }

  /**
   * Send one action; on success redraw (and move on when ``advance``); a 409 is said plainly.
   * ``seen`` is what the reviewer saw when pressing the key: a case that changed while a dialog
   * was open is then a clear 409, never an override.
   */
  async act(body, { advance = false, done = "", seen = null } = {}) {
    // A key pressed while this console's previous action is on its way ("a 1 c", typed at speed)
    // waits for it instead of being lost; if that action moved on to the next case (or the next
    // case is still loading), the key was meant for the case that left, and does nothing.
    if (!(await this.settled())) return false;
    const detail = this.detail;
    const saw = seen || this.seen();
    if (saw.id !== detail.id) return false;
    let settled;
    this.pending = new Promise((resolve) => (settled = resolve));
    this.busy = true;
    const seenState = saw.state;
    try {
      const answer = await post(`/cases/${detail.id}/actions`, { ...body, expected_state: seenState });
      this.cache.delete(detail.id);
      this.ctx.onChanged(answer);
      // The reviewer opened another case while this answer was on its way: they stay there (the
      // queue's row already says the decision was made), neither moved on nor drawn over.
      if (this.want !== detail.id) return true;
      if (advance && this.ctx.next()) return true;
      this.render(answer, { kind: "ok", text: done || `Done: ${body.action}.` });
      return true;
    } catch (err) {
      if (this.want !== detail.id) {
        this.ctx.flash(`Case #${detail.id}: not done: ${err.message}`);
        return false;
      }
      if (err instanceof ApiError && err.status === 409) {
        const fresh = await this.fetch(detail.id).catch(() => null);
        // This case's own state now; a 409's body may name another case's (a merge's target).
        const now = (fresh && fresh.state) || (err.body && err.body.state);
        const text =
          now && now !== seenState
            ? `Someone else moved this case: it is ${stateName(now)} now (you saw ${stateName(seenState)}). Nothing was changed; look again and decide.`
            : `Not allowed: ${err.message}`;
        if (fresh) {
          this.ctx.onChanged(fresh);
          this.render(fresh, { kind: "conflict", text });
        } else this.message("conflict", text);
      } else if (this.detail === detail) {
        // Drawn again as stored: a refused box (say, a cargo bed off its truck) must not stay drawn.
        this.render(detail, { kind: "conflict", text: `Not done: ${err.message}` });
      } else {
        this.message("conflict", `Not done: ${err.message}`);
      }
      return false;
    } finally {
      this.busy = false;
      this.pending = null;
      settled();
    }
  }

  /** True when ``action`` may be done now; otherwise says why (a key press never fails silently). */
  may(action) {
    if (this.allowed(action)) return true;
    if (!this.detail) return false;
    if (!this.ctx.canAct()) this.message("conflict", "Read only: your role is viewer.");
    else this.message("conflict", `Cannot ${action} a case that is ${stateName(this.detail.state)}.`);
    return false;
  }

  /**
   * Waits for the action on its way, if any: a decision key typed right after "a 1" must see the
   * load that action recorded. False when that action moved on to another case, for which this key
   * was not meant.
   */
  async settled() {
    const pressedOn = this.detail ? this.detail.id : null;
    while (this.pending) await this.pending;
    return !!this.detail && this.detail.id === pressedOn && this.want === pressedOn;
  }

  async confirm() {
    if (!(await this.settled()) || !this.may("confirm")) return;
    const seen = this.seen();
    const state = this.detail.state;
    if (BACKWARDS_TO_CONFIRMED[state]) {
      const ok = await confirmDialog(`Take case #${this.detail.id} back to confirmed?`, BACKWARDS_TO_CONFIRMED[state]);
      if (!ok) return;
    }
    const review = await this.askOnDecision(true);
    if (review === null) return;
    return this.act({ action: "confirm", ...review }, { advance: true, seen });
  }

  /**
   * What the decision also says about the object, when classes.yaml marks which values of one of
   * its type's attributes are violations (a truck's load) and what is recorded does not already
   * say it: asked among the values that fit the decision (``violation`` true on confirm, false on a
   * rejection as not a violation), or "can't tell". Asked too when the recorded value says the
   * opposite of the decision (confirming a covered truck), which the server would refuse; "can't
   * tell" then clears it. So every decided truck case is also a load label, and never a
   * contradicting one. ``verb`` names the decision in the question (a dispatch decides a new case
   * too); ``unrecorded`` false asks only about a contradicting value (a case decided before).
   * Returns the fields to send with the decision ({} for none), or null when the reviewer cancelled.
   */
  async askOnDecision(violation, { verb = "Confirm", unrecorded = true } = {}) {
    const detail = this.detail;
    const defs = (this.ctx.options.attributes || {})[detail.violation_type] || [];
    const known = recorded(detail);
    const flagged = (d) => d.values.some((v) => v.violation === true || v.violation === false);
    // Asked when nothing is recorded, or when what is recorded says the opposite of the decision.
    const asks = (d) => (known[d.name] ? d.values.some((v) => v.value === known[d.name].value && v.violation === !violation) : unrecorded);
    const def = defs.find((d) => flagged(d) && asks(d));
    if (!def) return {};
    const current = known[def.name];
    const fit = def.values.filter((v) => v.violation === violation);
    const choices = fit.map((v) => ({ value: v.value, label: v.value.replaceAll("_", " "), hint: v.description }));
    const unsure = current ? `decide and clear the ${def.name} recorded` : `decide without recording the ${def.name}`;
    choices.push({ value: "", label: "can't tell", hint: unsure });
    const asked = `its ${def.name}?`;
    const title = violation ? `${verb} case #${detail.id}: ${asked}` : `Case #${detail.id} is no violation: ${asked}`;
    // Beside the question, what the box's own load classifier answered, as the Attributes card says it.
    const said = def.name === "load" ? boxSaid(detail.attributes) : null;
    const parts = [def.description];
    if (current) {
      const was = current.value.replaceAll("_", " ");
      parts.push(`It is recorded as ${was}, which ${violation ? "is no violation" : "is a violation"}.`);
    }
    if (said) parts.push(`${said.textContent}.`);
    const value = await choose(title, choices, { note: parts.join(" ") });
    if (value === null || value === undefined) return null;
    if (value) return { review: { attributes: { [def.name]: { value, box: current ? current.box || null : null } } } };
    return current ? { review: { attributes: { [def.name]: null } } } : {};
  }

  /** Record ``value`` of the attribute ``def`` ("": clear it); a cargo bed already drawn stays. */
  record(def, value) {
    const current = recorded(this.detail)[def.name];
    const keep = current && current.box;
    const done = `${def.name}: ${value ? value.replaceAll("_", " ") : "cleared"}`;
    return this.act({ action: "annotate", review: { attributes: { [def.name]: value ? { value, box: keep || null } : null } } }, { advance: false, done });
  }

  /**
   * ``a``: what the reviewer sees of the object (a truck's load, a sign's mounting) by keys, the
   * attribute and then its value, as the Attributes card's lists record it. The case stays open,
   * so ``a 1 c`` records an open load and confirms: the field labels the load model learns from.
   */
  async attribute() {
    if (!(await this.settled()) || !this.may("annotate")) return;
    const defs = (this.ctx.options.attributes || {})[this.detail.violation_type] || [];
    if (!defs.length) {
      this.message("conflict", `A ${typeName(this.detail.violation_type).toLowerCase()} case has no attributes to record.`);
      return;
    }
    let def = defs[0];
    if (defs.length > 1) {
      const name = await choose("Which attribute?", defs.map((d) => ({ value: d.name, label: d.name, hint: d.description })));
      if (!name) return;
      def = defs.find((d) => d.name === name);
    }
    const current = recorded(this.detail)[def.name];
    const choices = def.values.map((v) => ({ value: v.value, label: v.value.replaceAll("_", " ") + (current && current.value === v.value ? " (recorded)" : ""), hint: v.description }));
    if (current) choices.push({ value: "", label: "clear", hint: "record no value" });
    const value = await choose(`${def.name} of case #${this.detail.id}`, choices, { note: def.description });
    if (value === null || value === undefined) return;
    return this.record(def, value);
  }

  async reject() {
    if (!(await this.settled()) || !this.may("reject")) return;
    const seen = this.seen();
    const reasons = this.ctx.options.reject_reasons || FALLBACK_REASONS;
    const code = await choose(
      `Reject case #${this.detail.id}: why?`,
      reasons.map((r) => ({ value: r.code, label: r.code.replaceAll("_", " "), hint: r.description })),
    );
    if (!code) return;
    const body = { action: "reject", reject_reason: code };
    if (code === "wrong_class") {
      const label = await this.pickClass("What is it really?", { wrong: true });
      if (!label) return;
      body.label = label;
    }
    if (code === "not_a_violation") {
      const review = await this.askOnDecision(false);
      if (review === null) return;
      Object.assign(body, review);
    }
    return this.act(body, { advance: true, seen });
  }

  /** A detector class; the detected one first, or left out when the reviewer says it is ``wrong``. */
  pickClass(title = "Class", { wrong = false } = {}) {
    const event = reviewEvent(this.detail);
    const classes = this.ctx.options.classes || this.ctx.config.classes || [];
    const detected = event ? [event.detector_class] : [];
    const first = wrong ? [] : detected.filter((c) => classes.includes(c));
    const ordered = [...first, ...classes.filter((c) => !detected.includes(c))];
    return choose(title, ordered.map((c) => ({ value: c, label: className(c) })), { filter: true });
  }

  async relabel() {
    if (!this.may("relabel")) return;
    const seen = this.seen();
    const label = await this.pickClass(`Case #${this.detail.id}: what is the object?`);
    if (label) return this.act({ action: "relabel", label }, { done: `Labelled as ${label}.`, seen });
  }

  async dispatch() {
    if (!(await this.settled()) || !this.may("dispatch")) return;
    const seen = this.seen();
    // Dispatching a new case decides it, as confirming does: its load is asked the same way. A case
    // decided before is asked only when what is recorded says it is no violation.
    const review = await this.askOnDecision(true, { verb: "Dispatch", unrecorded: this.detail.state === "new" });
    if (review === null) return;
    const team = await this.ctx.pickTeam(`Dispatch case #${this.detail.id}`, this.detail.assigned_team || "");
    if (team) return this.act({ action: "dispatch", team, ...review }, { advance: true, seen });
  }

  simple(action) {
    if (this.may(action)) return this.act({ action }, { advance: action !== "reopen" });
  }

  async note() {
    if (!this.may("note")) return;
    const seen = this.seen();
    const text = await ask(`Note on case #${this.detail.id}`, { multiline: true, note: "Ctrl+Enter saves." });
    if (text) return this.act({ action: "note", reason: text }, { done: "Note added.", seen });
  }

  async merge() {
    if (!this.may("merge")) return;
    const seen = this.seen();
    const answer = await ask(`Merge case #${this.detail.id} into…`, { label: "Case number it duplicates" });
    if (!answer) return;
    const target = caseNumber(answer);
    if (!target) {
      this.message("conflict", `"${answer}" is not a case number.`);
      return;
    }
    let other;
    try {
      other = await get(`/cases/${target}`);
    } catch (err) {
      this.message("conflict", `Cannot merge: ${err.message}`);
      return;
    }
    const refused = mergeRefusal(this.detail, other);
    if (refused) {
      this.message("conflict", refused);
      return;
    }
    const question = mergeQuestion(this.detail, other);
    const ok = await confirmDialog("Merge?", question, { careful: mergeRisky(question) });
    if (ok) return this.act({ action: "merge", into_case_id: target }, { advance: true, seen });
  }

  partHint(name) {
    const defs = (this.ctx.options.attributes || {})[this.detail.violation_type] || [];
    const def = defs.find((d) => d.name === name);
    return def && def.box_hint ? def.box_hint : "the part";
  }

  /**
   * Box editing on the clean frame; Enter saves (annotate), Escape cancels. With ``partName``
   * (an attribute whose class boxes a part, e.g. the truck's cargo bed) a drawn box is that part.
   */
  async editBoxes(partName = null) {
    if (this.editing || !this.may("annotate")) return;
    const detail = this.detail;
    let event = detail.events.find((e) => e.event_id === this.shownEvent);
    if (!event || !event.evidence || !event.evidence.clean_url) event = reviewEvent(detail);
    if (!event || !event.evidence || !event.evidence.clean_url) {
      this.message("conflict", "This case has no clean frame to draw on.");
      return;
    }
    this.shownEvent = event.event_id;
    this.showClean = true;
    this.render(detail);
    const layer = document.getElementById("boxes");
    const frame = document.getElementById("frame");
    frame.classList.add("editing");
    this.editing = true;
    this.message(
      "ok",
      partName
        ? `Draw the ${partName} box: drag over ${this.partHint(partName)}; Enter saves, Escape cancels.`
        : "Editing boxes: drag a box or its corners; drag on the frame to add a missed object. Tab: next box, arrows: move, Shift+arrows: resize, Delete: remove, Enter: save, Escape: cancel.",
    );
    const before = this.reviewState(detail, event);
    const result = await editBoxes(layer, before, {
      width: event.frame_width,
      height: event.frame_height,
      detectorClass: event.detector_class,
      pickClass: () => this.pickClass("Class of the added box"),
      partName,
    });
    this.editing = false;
    frame.classList.remove("editing");
    // A reminder to finish the edits (a row clicked meanwhile) is out of date now.
    const reminder = document.getElementById("flash");
    if (reminder && reminder.textContent === FINISH_EDITS_FIRST) reminder.hidden = true;
    if (!result) {
      this.render(this.detail, { kind: "ok", text: "Box edits cancelled." });
      return;
    }
    const review = { event_id: event.event_id, box: result.box, added_boxes: result.added };
    if (partName) {
      const value = recorded(detail)[partName];
      review.attributes = { [partName]: { value: value ? value.value : null, box: result.parts[partName] || null } };
      await this.act({ action: "annotate", review }, { done: `${partName} box saved.` });
      return;
    }
    await this.act({ action: "annotate", review }, { done: `Boxes saved (${result.added.length} added).` });
  }
}

/** What reviewers recorded of the case's attributes: name -> {value, box} (none: {}). */
function recorded(detail) {
  return (detail.review && detail.review.attributes) || {};
}

/** What the box's second stage said about the object (the case's best event), e.g. a truck's load:
 * the reviewer sees why the box raised the case, or why it is only a candidate. */
function boxSaid(attributes) {
  if (!attributes || !attributes.load) return null;
  const leaning = attributes.load_likeliest ? attributes.load_likeliest.replaceAll("_", " ") : "its likeliest answer";
  const score = attributes.load_score === null || attributes.load_score === undefined ? "" : ` (${Math.round(attributes.load_score * 100)}%${attributes.load === "unsure" ? ` for ${leaning}` : ""})`;
  const model = attributes.load_model ? `, ${attributes.load_model}` : "";
  return el("p", { id: "attr-box-load", class: "muted" }, `The box's load classifier: ${attributes.load.replaceAll("_", " ")}${score}${model}`);
}

/**
 * What the sign register said of a signboard case, with the registered sign's photo beside it: a
 * dispatcher tells a changed sign from the permitted one by looking at both.
 */
function registerFacts(reg) {
  const entry = (id) => el("a", { href: `#/signs?entry=${id}` }, `entry #${id}`);
  const permit = reg.permit_id ? ` (permit ${reg.permit_id})` : "";
  const measured = [
    reg.distance_m !== null ? `${reg.distance_m.toFixed(1)} m away` : null,
    reg.similarity !== null ? `looks ${reg.similarity.toFixed(2)} alike` : null,
  ].filter(Boolean).join(", ");
  const why = {
    new: () => ["New: no sign is registered here"],
    changed: () => ["Changed: looks different from ", entry(reg.sign_id), permit],
    expired: () => ["Permit expired", reg.valid_until ? ` on ${reg.valid_until.slice(0, 10)}` : "", ": ", entry(reg.sign_id), permit],
    unverified: () => ["At the place of ", entry(reg.sign_id), permit, "; its look could not be checked"],
    restricted: () => [`In no-sign zone '${reg.zone_name || "?"}'`, reg.sign_id ? ["; the register has ", entry(reg.sign_id), permit] : ""],
  }[reg.outcome];
  const text = why && (reg.outcome === "new" || reg.outcome === "restricted" || reg.sign_id) ? why() : reg.outcome === "unknown" ? [] : [reg.outcome, " (the entry was removed)"];
  return el(
    "span",
    { id: "register-facts" },
    text,
    measured ? ` (${measured})` : "",
    reg.sign_crop_url ? el("img", { class: "register-photo", src: reg.sign_crop_url, alt: `the registered sign, entry #${reg.sign_id}`, title: "The registered sign" }) : null,
    reg.registered_as ? el("div", {}, "Registered as ", entry(reg.registered_as), " (marked permitted)") : null,
    (reg.registered_since || []).map((s) =>
      el(
        "div",
        { class: "register-since" },
        el("b", {}, "Registered since it opened: "),
        entry(s.sign_id),
        s.permit_id ? ` (permit ${s.permit_id})` : "",
        `, ${s.distance_m.toFixed(1)} m away. If this case shows that sign, reject it as permitted (x 5).`,
        s.sign_crop_url ? el("img", { class: "register-photo", src: s.sign_crop_url, alt: `the sign of entry #${s.sign_id}`, title: "The sign registered since" }) : null,
      ),
    ),
  );
}

/** The event whose frame the reviewer works on: the reviewed one, else the best with a clean frame. */
export function reviewEvent(detail) {
  if (!detail || !detail.events.length) return null;
  if (detail.review && detail.review.event_id) {
    const reviewed = detail.events.find((e) => e.event_id === detail.review.event_id);
    if (reviewed) return reviewed;
  }
  const withEvidence = detail.events.filter((e) => e.evidence);
  const clean = withEvidence.filter((e) => e.evidence.clean_url);
  const pool = clean.length ? clean : withEvidence.length ? withEvidence : detail.events;
  return pool.reduce((best, e) => (e.score > best.score ? e : best), pool[0]);
}

function countBy(values) {
  const counts = {};
  for (const v of values) counts[v] = (counts[v] || 0) + 1;
  return counts;
}

/** A merge in the history, on either side: the other case once, the reviewer's words if any. */
function mergeWhy(t) {
  const d = t.details || {};
  const other = d.merged_into ? `into #${d.merged_into}` : d.merged_from ? `#${d.merged_from} merged in` : "";
  // The server's own words name the other case already ("duplicate of case 30", "case 29 merged in").
  const own = t.reason && !/^(duplicate of case \d+|case \d+ merged in)$/.test(t.reason) ? `: ${t.reason}` : "";
  const moved = Number.isInteger(d.events_moved) ? `; ${counted(d.events_moved, "event")} moved` : "";
  return `${other}${own}${moved}`;
}

function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  const parts = [];
  if (details.merged_into) parts.push(` merged into #${details.merged_into}`);
  if (details.merged_from) parts.push(` merged #${details.merged_from}`);
  if (details.box) parts.push(" box corrected");
  if (details.added_boxes && details.added_boxes.length) parts.push(` ${counted(details.added_boxes.length, "box", "boxes")} added`);
  if (details.attributes) parts.push(` attributes: ${Object.entries(details.attributes).map(([k, v]) => `${k}=${v && v.value ? v.value : "none"}`).join(", ")}`);
  if (details.bulk) parts.push(" (bulk)");
  return parts.join(";");
}

export { cloneReview };

/** What the queue says when a row is clicked while boxes are being edited. */
export const FINISH_EDITS_FIRST = "Finish the box edits first: Enter saves, Escape cancels.";

/** Beyond this, two cases of one object are far from likely: the merge question warns. */
const MERGE_FAR_M = 100;

/** Why ``case_`` cannot be merged into ``other`` (said before asking, not after), or null. */
function mergeRefusal(case_, other) {
  if (other.id === case_.id) return "A case cannot be merged into itself.";
  if (other.merged_into) return `Case #${other.id} was itself merged into #${other.merged_into}: merge into that one.`;
  if (other.state === "closed") return `Case #${other.id} is closed: merge into an open case, or merge #${other.id}'s duplicate the other way.`;
  if (other.violation_type !== case_.violation_type) {
    return `Case #${other.id} is ${typeName(other.violation_type).toLowerCase()}, this one ${typeName(case_.violation_type).toLowerCase()}: only cases of one type are one violation.`;
  }
  return null;
}

/** The merge question: both cases' photos side by side, how far apart they are, and that it is final. */
function mergeQuestion(case_, other) {
  const figure = (c) =>
    el(
      "figure",
      {},
      c.thumbnail_url ? el("img", { src: c.thumbnail_url, alt: `case #${c.id}` }) : el("div", { class: "noimg" }, "no image"),
      el("figcaption", {}, `#${c.id} · ${stateName(c.state)} · ${c.event_count} ev · ${ago(c.last_event_at)}`),
    );
  let distance = el("p", { class: "muted", id: "merge-distance" }, "One of them has no position: compare the photos.");
  if (case_.lat !== null && other.lat !== null) {
    const d = metresEastNorth({ lat: case_.lat, lon: case_.lon }, { lat: other.lat, lon: other.lon });
    const apart = Math.round(Math.hypot(d.east, d.north));
    // One object seen twice lies within a few tens of metres of itself (GPS, the box's placing).
    distance = apart > MERGE_FAR_M
      ? el("p", { class: "warn", id: "merge-distance" }, `They are ${apart} m apart: one object is rarely that far from itself. Check the number.`)
      : el("p", { class: "muted", id: "merge-distance" }, `${apart} m apart.`);
  }
  // Into a finished case, an open one's events end up where nobody looks.
  const finished = !OPEN_STATES.includes(other.state) && OPEN_STATES.includes(case_.state)
    ? el("p", { class: "warn", id: "merge-finished" }, `#${other.id} is ${stateName(other.state).toLowerCase()}: this open case's ${counted(case_.event_count, "event")} would go there. Merging #${other.id} into this one may be what you mean.`)
    : null;
  return [
    el("p", {}, `Case #${case_.id} becomes part of #${other.id} (${other.title}) and is closed as a duplicate; its events and evidence move there. A merge cannot be undone.`),
    el("div", { class: "merge-pair" }, figure(case_), figure(other)),
    distance,
    finished,
  ];
}

/** A merge the question warns about (far apart, or into a finished case): Enter does not accept it. */
function mergeRisky(question) {
  return question.some((node) => node && node.classList && node.classList.contains("warn"));
}
