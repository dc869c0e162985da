// The queue: filters, counts per type and state, the list of cases (with evidence thumbnails),
// the live stream that adds new cases without moving the dispatcher's place, and bulk actions.

import { ApiError, apiUrl, get, post } from "./api.js";
import { ask, choose, confirmDialog, showPanel } from "./dialogs.js";
import { drawMap, metresEastNorth } from "./map.js";
import { OPEN_STATES, STATE_NAMES, TYPE_NAMES, TYPE_SHORT_NAMES, ago, caseNumber, counted, dueText, el, isOverdue, query, replace, stateName, typeName } from "./util.js";
import { FALLBACK_REASONS, FINISH_EDITS_FIRST } from "./caseview.js";

const PAGE = 100;
// Short enough for the filter column at 1366 px; the select's title says the rest.
const SORTS = { urgent: "Most urgent", "-last_event_at": "Newest", sla_due_at: "SLA due first", "-event_count": "Most events" };
const STATE_SETS = { review: ["new"], open: OPEN_STATES, all: [] };
/** An action as the bulk bar's hints say it: "2 of the 3 selected can be closed". */
const PAST = { confirm: "confirmed", reject: "rejected", dispatch: "dispatched", resolve: "resolved", close: "closed" };

/** The server's device filter (``device_clause``): an id, or a prefix with a trailing ``*``. */
function deviceMatches(deviceId, wanted) {
  return wanted.endsWith("*") ? (deviceId || "").startsWith(wanted.slice(0, -1)) : deviceId === wanted;
}

export const DEFAULT_FILTERS = { state: "review", violation_type: "", candidate: "", device_id: "", since: "", until: "", bbox: "", overdue: false, attribute: "", sort: "urgent" };

export class Queue {
  constructor(ctx) {
    this.ctx = ctx; // {caseView, canAct(), flash(text, kind), signOut()}
    this.list = document.getElementById("queue");
    this.form = document.getElementById("filters");
    this.countsBox = document.getElementById("counts");
    this.bulkBox = document.getElementById("bulk");
    this.foot = document.getElementById("queue-foot");
    this.filters = { ...DEFAULT_FILTERS };
    this.items = [];
    this.byId = new Map();
    this.selectedId = null;
    this.checked = new Set();
    // Cases that arrived live and were not opened yet: marked "new" until they are, so a dispatcher
    // who looked away while they came still finds them (the arrival's flash fades in seconds).
    this.unseen = new Set();
    // The case just decided, when a decision moved on from it: where k goes back to.
    this.backTo = null;
    this.nextCursor = null;
    this.total = 0;
    this.loading = false;
    this.devices = [];
    this.source = null;
    // Ages ("3 min ago") stay true while the page is open all shift.
    setInterval(() => {
      for (const span of this.list.querySelectorAll(".ago")) span.textContent = ago(span.dataset.at);
    }, 30000);
    this.list.addEventListener("scroll", () => {
      if (this.nextCursor && this.list.scrollTop + this.list.clientHeight > this.list.scrollHeight - 200) this.loadMore();
      this.drawAbove();
    });
    // Live arrivals inserted above the rows in view, by id: named on a button over the list until
    // scrolled into view (j goes down and would never reach them; the flash fades in seconds).
    this.above = new Set();
    this.aboveButton = document.getElementById("new-above");
    this.aboveButton.addEventListener("click", () => {
      const tops = [...this.above].map((id) => document.getElementById(`case-${id}`)).filter(Boolean).map((n) => n.getBoundingClientRect().top);
      const view = this.list.getBoundingClientRect().top;
      this.list.scrollTop = tops.length ? this.list.scrollTop + Math.min(...tops) - view : 0;
      this.drawAbove();
    });
  }

  /** The "N new above" button: arrivals still above the view and not opened. */
  drawAbove() {
    const view = this.list.getBoundingClientRect().top;
    for (const id of [...this.above]) {
      const node = document.getElementById(`case-${id}`);
      if (!node || !this.unseen.has(id) || node.getBoundingClientRect().bottom > view + 1) this.above.delete(id);
    }
    const n = this.above.size;
    this.aboveButton.hidden = n === 0;
    this.aboveButton.textContent = n ? `↑ ${counted(n, "new case")} above` : "";
  }

  // ---- filters ------------------------------------------------------------------------------

  stateParam() {
    const f = this.filters.state;
    return f in STATE_SETS ? STATE_SETS[f] : [f];
  }

  params(withState = true) {
    const f = this.filters;
    return {
      state: withState ? this.stateParam() : undefined,
      violation_type: f.violation_type,
      candidate: f.candidate,
      device_id: f.device_id,
      since: f.since ? new Date(f.since).toISOString() : "",
      until: f.until ? new Date(f.until).toISOString() : "",
      bbox: f.bbox,
      overdue: f.overdue ? "true" : "",
      attribute: f.attribute,
    };
  }

  /** Does ``item`` belong in the list under the current filters? (For cases arriving live.) */
  matches(item) {
    const f = this.filters;
    const states = this.stateParam();
    if (states.length && !states.includes(item.state)) return false;
    if (f.violation_type && item.violation_type !== f.violation_type) return false;
    if (f.candidate && String(item.candidate) !== f.candidate) return false;
    if (f.device_id && !deviceMatches(item.device_id, f.device_id)) return false;
    if (f.overdue && !isOverdue(item)) return false;
    // What a reviewer recorded is not in a list row: the server chose the rows listed, and a case
    // arriving live has no reviewer's attributes yet.
    if (f.attribute && !this.byId.has(item.id)) return false;
    if (f.since && Date.parse(item.last_event_at) < Date.parse(new Date(f.since).toISOString())) return false;
    if (f.until && Date.parse(item.first_event_at) >= Date.parse(new Date(f.until).toISOString())) return false;
    if (f.bbox) {
      const [x1, y1, x2, y2] = f.bbox.split(",").map(Number);
      if (item.lat === null || item.lon < x1 || item.lon > x2 || item.lat < y1 || item.lat > y2) return false;
    }
    return true;
  }

  /** Sort order of the list, so a live case goes where a reload would put it. */
  compare(a, b) {
    const t = (x) => Date.parse(x);
    switch (this.filters.sort) {
      case "urgent": {
        // As the server's order: priority, then the open case due soonest, then newest.
        const due = (c) => (OPEN_STATES.includes(c.state) && c.sla_due_at ? t(c.sla_due_at) : Infinity);
        return a.priority - b.priority || due(a) - due(b) || t(b.last_event_at) - t(a.last_event_at) || b.id - a.id;
      }
      case "sla_due_at":
        return (a.sla_due_at ? t(a.sla_due_at) : Infinity) - (b.sla_due_at ? t(b.sla_due_at) : Infinity) || a.id - b.id;
      case "-event_count":
        return b.event_count - a.event_count || b.id - a.id;
      default:
        return t(b.last_event_at) - t(a.last_event_at) || b.id - a.id;
    }
  }

  drawFilters() {
    const f = this.filters;
    const select = (name, label, options, value) =>
      el("label", {}, el("span", { class: "sr" }, label), el("select", { name, id: `filter-${name}`, title: label }, Object.entries(options).map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
    const states = { review: "To review", open: "Open", all: "All states", ...STATE_NAMES };
    const types = { "": "All types", ...TYPE_NAMES };
    replace(
      this.form,
      select("state", "State", states, f.state),
      select("violation_type", "Type", types, f.violation_type),
      select("sort", "Sort", SORTS, f.sort),
      select("candidate", "Candidates: generic-class detections", { "": "Candidates too", true: "Candidates only", false: "No candidates" }, f.candidate),
      el("label", {}, el("span", { class: "sr" }, "Device"), el("input", { name: "device_id", id: "filter-device_id", list: "device-list", value: f.device_id, size: 10, placeholder: "any device", title: "Device: an id, or its start and * (d7-*) for every box whose id starts so" })),
      el("datalist", { id: "device-list" }, this.devices.map((d) => el("option", { value: d }))),
      el("label", {}, el("input", { type: "checkbox", name: "overdue", id: "filter-overdue", checked: f.overdue }), "SLA overdue"),
      this.attributeFilter(),
      el("label", { class: "wide" }, "From", el("input", { type: "datetime-local", name: "since", id: "filter-since", value: f.since })),
      f.bbox
        ? el("span", {}, el("button", { type: "button", id: "filter-area", onclick: () => this.pickArea() }, "Area ✓"), el("button", { type: "button", class: "link", id: "filter-area-clear", onclick: () => this.setFilters({ bbox: "" }) }, "clear"))
        : el("button", { type: "button", id: "filter-area", onclick: () => this.pickArea() }, "Area…"),
      el("label", { class: "wide" }, "To", el("input", { type: "datetime-local", name: "until", id: "filter-until", value: f.until })),
      el("button", { type: "button", class: "link", id: "filter-reset", onclick: () => this.setFilters({ ...DEFAULT_FILTERS }) }, "reset"),
    );
    this.form.onchange = (event) => {
      const target = event.target;
      if (!target.name) return;
      this.setFilters({ [target.name]: target.type === "checkbox" ? target.checked : target.value });
    };
    this.form.onsubmit = (event) => event.preventDefault();
  }

  /** "Reviewed as" (a sign's mounting, a truck's load, ...): the attributes the chosen type, or any
   * type, lets a reviewer record, one group per attribute; none: no select. An option reads as its
   * value alone ("free standing" under "mounting"): the name in each option cut the longer ones
   * in a filter column. */
  attributeFilter() {
    const f = this.filters;
    const byType = this.ctx.options.attributes || {};
    const types = f.violation_type ? [f.violation_type] : Object.keys(byType);
    const groups = new Map(); // attribute name -> Map(filter value -> text)
    const text = (value) => value.replaceAll("_", " ");
    for (const type of types) {
      for (const def of byType[type] || []) {
        if (!groups.has(def.name)) groups.set(def.name, new Map());
        for (const v of def.values) groups.get(def.name).set(`${def.name}:${v.value}`, text(v.value));
      }
    }
    const known = [...groups.values()].some((values) => values.has(f.attribute));
    if (f.attribute && !known) {
      // A link may name an attribute this type does not take: keep it visible, so it can be cleared.
      const [name, value = ""] = f.attribute.split(":");
      if (!groups.has(name)) groups.set(name, new Map());
      groups.get(name).set(f.attribute, text(value));
    }
    if (!groups.size) return null;
    const chosen = f.attribute ? `Reviewed as ${f.attribute.replace(":", ": ").replaceAll("_", " ")}` : "Reviewed as";
    const options = [...groups].map(([name, values]) =>
      el("optgroup", { label: name }, [...values].map(([value, label]) => el("option", { value, selected: value === f.attribute }, label))),
    );
    return el(
      "label",
      {},
      el("span", { class: "sr" }, "Reviewed as"),
      el("select", { name: "attribute", id: "filter-attribute", title: chosen }, el("option", { value: "", selected: !f.attribute }, "Reviewed as…"), options),
    );
  }

  setFilters(change) {
    Object.assign(this.filters, change);
    this.checked.clear();
    this.ctx.saveHash();
    this.drawFilters();
    this.reload();
  }

  async pickArea() {
    const points = this.items.filter((c) => c.lat !== null).map((c) => ({ lat: c.lat, lon: c.lon, kind: "event", title: `#${c.id}` }));
    if (!points.length) {
      this.ctx.flash("No case in the list has a position to draw an area around.", "error");
      return;
    }
    const tiles = this.ctx.config.tile_url ? { url: this.ctx.config.tile_url, attribution: this.ctx.config.tile_attribution } : null;
    let picked = null;
    const map = drawMap(points, { width: 480, height: 320, tiles, label: "Drag a rectangle", onArea: (bbox) => (picked = bbox) });
    map.classList.add("area-map"); // its own shape, not the case pane's flat strip
    const ok = await showPanel("Area on the map", map, "Drag a rectangle over the cases to keep, then press OK (Enter).");
    if (ok && picked) this.setFilters({ bbox: picked.map((v) => v.toFixed(6)).join(",") });
  }

  // ---- loading ------------------------------------------------------------------------------

  async reload({ keepSelection = true } = {}) {
    const token = (this.loadToken = Symbol("load"));
    this.loading = true;
    this.foot.textContent = "Loading…";
    let page;
    try {
      page = await this.fetchPage();
    } catch (err) {
      if (token !== this.loadToken) return;
      this.loading = false;
      this.foot.textContent = "";
      this.ctx.flash(`Cannot load the queue: ${err.message}`, "error");
      return;
    }
    if (token !== this.loadToken) return;
    this.loading = false;
    this.items = page.items;
    this.byId = new Map(this.items.map((c) => [c.id, c]));
    this.nextCursor = page.next_cursor;
    this.total = page.total;
    this.draw();
    this.loadCounts();
    const wanted = keepSelection && this.selectedId && this.byId.has(this.selectedId) ? this.selectedId : this.items[0]?.id;
    if (this.ctx.wantedCase && !this.byId.has(this.ctx.wantedCase)) {
      this.ctx.caseView.show(this.ctx.wantedCase);
      this.selectedId = this.ctx.wantedCase;
    } else if (wanted) this.select(this.ctx.wantedCase || wanted, { scroll: true });
    else {
      this.selectedId = null;
      this.ctx.caseView.empty("No case matches these filters.");
    }
    this.ctx.wantedCase = null;
  }

  async fetchPage(cursor = null) {
    const base = { ...this.params(), sort: this.filters.sort, limit: PAGE, cursor };
    try {
      return await get(`/cases${query(base)}`);
    } catch (err) {
      // A server without the combined "urgent" order: fall back to newest first, and say so once.
      if (err instanceof ApiError && err.status === 422 && this.filters.sort === "urgent" && /sort/.test(err.message)) {
        this.filters.sort = "-last_event_at";
        this.drawFilters();
        return get(`/cases${query({ ...base, sort: "-last_event_at" })}`);
      }
      throw err;
    }
  }

  async loadMore() {
    if (this.loading || !this.nextCursor) return;
    this.loading = true;
    try {
      const page = await this.fetchPage(this.nextCursor);
      for (const item of page.items) {
        if (this.byId.has(item.id)) continue;
        this.items.push(item);
        this.byId.set(item.id, item);
        this.list.append(this.row(item));
      }
      this.nextCursor = page.next_cursor;
      this.drawFoot();
    } catch (err) {
      this.ctx.flash(`Cannot load more cases: ${err.message}`, "error");
    } finally {
      this.loading = false;
    }
  }

  async loadCounts() {
    const asked = (this.countsAsked = (this.countsAsked || 0) + 1);
    try {
      const counts = await get(`/cases/counts${query(this.params(false))}`);
      if (asked !== this.countsAsked) return; // a newer count is on its way
      this.drawCounts(counts);
    } catch {
      replace(this.countsBox, el("span", { class: "chip" }, "cases ", el("b", {}, String(this.total))));
    }
  }

  drawCounts(counts) {
    const chip = (text, n, on, onclick, extra = "", title = null) =>
      el("button", { type: "button", class: `chip${on ? " on" : ""} ${extra}`, title, onclick }, `${text} `, el("b", {}, String(n || 0)));
    const byState = counts.by_state || {};
    const open = OPEN_STATES.reduce((sum, s) => sum + (byState[s] || 0), 0);
    const first = this.list.scrollTop > 0 ? this.list.firstElementChild : null;
    const was = first?.getBoundingClientRect().top;
    replace(
      this.countsBox,
      el(
        "div",
        { class: "count-row" },
        chip("To review", byState.new, this.filters.state === "review", () => this.setFilters({ state: "review" })),
        chip("Open", open, this.filters.state === "open", () => this.setFilters({ state: "open" })),
        // Third, so it stays on the first line with these two; the row wraps onto more lines for
        // the rest (console.css .count-row), so every state's chip is in sight, none scrolled to.
        chip("Overdue", counts.overdue, this.filters.overdue, () => this.setFilters({ overdue: !this.filters.overdue }), counts.overdue ? "overdue" : ""),
        ["confirmed", "dispatched", "possibly_resolved", "rejected", "resolved", "closed"]
          .filter((s) => byState[s])
          .map((s) => chip(stateName(s), byState[s], this.filters.state === s, () => this.setFilters({ state: s }))),
      ),
      el(
        "div",
        { class: "count-row" },
        Object.entries(counts.by_type || {}).map(([type, n]) => {
          const states = (counts.by_type_state || {})[type] || {};
          const inView = this.stateParam().length ? this.stateParam().reduce((sum, st) => sum + (states[st] || 0), 0) : n;
          const short = TYPE_SHORT_NAMES[type] || typeName(type);
          return chip(short, inView, this.filters.violation_type === type, () => this.setFilters({ violation_type: this.filters.violation_type === type ? "" : type }), "", typeName(type));
        }),
      ),
    );
    this.countsBox.id = "counts";
    // The rows may now wrap onto more or fewer lines (a state's first case or its last, a count
    // gaining a digit): a scrolled list keeps its rows where they were on screen, as for a row
    // arriving above them. At the top of the list nothing is scrolled out of sight for it.
    if (first) this.list.scrollTop += first.getBoundingClientRect().top - was;
  }

  // ---- drawing ------------------------------------------------------------------------------

  row(item) {
    const thumb = item.thumbnail_url || item.crop_url;
    const node = el(
      "li",
      {
        class: `row${item.id === this.selectedId ? " selected" : ""}${this.matches(item) ? "" : " done"}${this.unseen.has(item.id) ? " unseen" : ""}`,
        id: `case-${item.id}`,
        role: "option",
        dataset: { id: item.id },
        "aria-selected": item.id === this.selectedId ? "true" : "false",
        onclick: (event) => {
          if (event.target.type !== "checkbox") this.select(item.id);
        },
      },
      el("input", { type: "checkbox", "aria-label": `select case ${item.id}`, checked: this.checked.has(item.id), disabled: !this.ctx.canAct(), onchange: (e) => this.check(item.id, e.target.checked) }),
      thumb
        ? el("img", {
            class: "thumb",
            src: thumb,
            alt: "",
            loading: "lazy",
            // The image may still be on its way from the box (evidence travels apart from events).
            onerror: (event) => event.target.replaceWith(el("div", { class: "noimg" }, "no image yet")),
          })
        : el("div", { class: "noimg" }, "no image"),
      el(
        "div",
        { class: "main" },
        el("div", { class: "title" }, `#${item.id} ${typeName(item.violation_type)}${item.detector_class ? ` · ${item.detector_class}` : ""}`),
        el(
          "div",
          { class: "meta" },
          this.unseen.has(item.id) ? el("span", { class: "badge new", title: "Arrived while you worked; not opened yet" }, "unopened") : null,
          this.viewersBadge(item.id),
          el("span", { class: `badge state-${item.state}` }, stateName(item.state)),
          el("span", { class: `badge prio prio-${item.priority}`, title: `Priority ${item.priority} (1 most urgent, 5 least)` }, `P${item.priority}`),
          item.candidate ? el("span", { class: "badge candidate" }, "candidate") : null,
          isOverdue(item) ? el("span", { class: "badge overdue" }, dueText(item.sla_due_at)) : null,
          el("span", { class: "ago", dataset: { at: item.last_event_at } }, ago(item.last_event_at)),
          el("span", {}, item.device_id || ""),
          el("span", {}, `${item.event_count} ev`),
        ),
      ),
    );
    return node;
  }

  /** Others who have the case open now, named on its row (an empty placeholder otherwise). */
  viewersBadge(id) {
    const names = this.ctx.viewers ? this.ctx.viewers(id) : [];
    return names.length
      ? el("span", { class: "badge viewing", dataset: { viewers: id }, title: `Open in ${names.join(", ")}'s console now` }, `open: ${names.join(", ")}`)
      : el("span", { dataset: { viewers: id }, hidden: true });
  }

  /** The presence answer changed: redraw the rows' badges alone. */
  drawViewers() {
    for (const badge of this.list.querySelectorAll("[data-viewers]")) badge.replaceWith(this.viewersBadge(Number(badge.dataset.viewers)));
  }

  draw() {
    replace(this.list, this.items.map((item) => this.row(item)));
    this.drawFoot();
    this.drawBulk();
  }

  /** Cases the filters match now: the loaded total less the listed rows dealt with since. */
  matching() {
    return Math.max(0, this.total - this.items.filter((c) => !this.matches(c)).length);
  }

  drawFoot() {
    const done = this.total - this.matching();
    replace(
      this.foot,
      el("span", { id: "queue-total" }, `${this.items.length} of ${this.total} shown${done ? `, ${done} dealt with` : ""}`),
      this.nextCursor ? el("button", { type: "button", class: "link", onclick: () => this.loadMore() }, "load more") : null,
      this.ctx.canAct() && this.matching() ? el("button", { type: "button", class: "link", id: "bulk-filter", onclick: () => this.bulkOnFilter() }, this.matching() === 1 ? "act on the 1 matching…" : `act on all ${this.matching()} matching…`) : null,
      // Every case the filters match, every page, for a spreadsheet (GET /cases/export).
      this.total ? el("a", { id: "queue-csv", class: "csv", href: apiUrl(`/cases/export${query({ ...this.params(), sort: this.filters.sort })}`), download: "", title: `The ${counted(this.total, "case")} these filters match, as CSV` }, "CSV") : null,
    );
  }

  // ---- selection and keyboard navigation ----------------------------------------------------

  /**
   * ``g``: open a case by its number, as a caller or an officer names it. The list keeps its
   * filters; a case outside them opens beside it, as a shared link does. A number that is no case
   * says so and leaves the open case as it was.
   */
  async goTo() {
    const answer = await ask("Go to case", { label: "Case number (1234 or #1234)" });
    if (!answer) return;
    const id = caseNumber(answer);
    if (!id) {
      this.ctx.flash(`"${answer}" is not a case number.`);
      return;
    }
    try {
      await this.ctx.caseView.fetch(id); // cached: the case view shows it without asking again
    } catch (err) {
      this.ctx.flash(err instanceof ApiError && err.status === 404 ? `There is no case #${id}.` : `Cannot open case #${id}: ${err.message}`);
      return;
    }
    this.select(id);
  }

  select(id, { scroll = true } = {}) {
    if (this.ctx.caseView.editing) {
      this.ctx.flash(FINISH_EDITS_FIRST);
      return;
    }
    this.backTo = null; // any other way to a case ends the way back
    const previous = this.selectedId;
    this.selectedId = id;
    if (previous !== null) {
      const old = document.getElementById(`case-${previous}`);
      if (old) {
        old.classList.remove("selected");
        old.setAttribute("aria-selected", "false");
      }
    }
    const node = document.getElementById(`case-${id}`);
    if (this.unseen.delete(id) && node) {
      node.classList.remove("unseen");
      const badge = node.querySelector(".badge.new");
      if (badge) badge.remove();
      this.drawAbove();
    }
    if (node) {
      node.classList.add("selected");
      node.setAttribute("aria-selected", "true");
      if (scroll) node.scrollIntoView({ block: "nearest" });
    }
    this.ctx.saveHash();
    this.ctx.caseView.show(id);
    const ahead = this.neighbour(1);
    if (ahead) this.ctx.caseView.prefetch(ahead.id);
  }

  /**
   * The next case still to work on (rows already dealt with are skipped), or the row just above
   * (``step`` -1), dealt with or not: a reviewer who pressed the wrong key steps back to the case
   * they just decided.
   */
  neighbour(step) {
    const index = this.items.findIndex((c) => c.id === this.selectedId);
    for (let i = index + step; i >= 0 && i < this.items.length; i += step) {
      if (step < 0 || this.matches(this.items[i])) return this.items[i];
    }
    return null;
  }

  /** On to the next case after a decision; ``k`` then comes back to the decided one, however
   * many rows others dealt with lie between. */
  advance() {
    const from = this.selectedId;
    const moved = this.move(1);
    this.backTo = moved ? from : null;
    return moved;
  }

  move(step) {
    if (step < 0 && this.backTo !== null && this.byId.has(this.backTo)) {
      const id = this.backTo;
      this.select(id);
      return true;
    }
    const target = this.neighbour(step);
    if (target) {
      this.select(target.id);
      return true;
    }
    if (step > 0 && this.nextCursor) this.loadMore().then(() => this.neighbour(1) && this.move(1));
    else this.ctx.flash(step > 0 ? "End of the queue." : "Top of the queue.", "info");
    return false;
  }

  /** Teams to offer when dispatching: the configured ones, then those cases went to. */
  teams() {
    const seen = this.items.map((c) => c.assigned_team).filter(Boolean);
    return [...new Set([...(this.ctx.config.teams || []), ...seen])];
  }

  /**
   * Where to dispatch. Once the server keeps a team list (GET /teams says so), a pick among its
   * active teams, read now so a team an admin just added is there; until then free text that
   * suggests the configured teams and those cases went to (the server takes any name then).
   */
  async pickTeam(title, current = "") {
    const register = await get("/teams").catch(() => null);
    if (register && !register.free_text_dispatch) {
      if (!register.items.length) {
        this.ctx.flash("No team is active: an admin adds or reactivates teams on the Users page.");
        return null;
      }
      const choices = register.items.map((t) => ({ value: t.name, label: t.name, hint: t.description }));
      return choose(title, choices, { filter: choices.length > 9, note: current ? `Now with ${current}.` : "" });
    }
    return ask(title, { label: "Team or grid", suggestions: this.teams(), value: current });
  }

  /** Cases in the list within ``metres`` of ``detail`` (for the case's map). */
  nearby(detail, metres) {
    return this.items.filter((c) => {
      if (c.id === detail.id || c.lat === null || c.lon === null) return false;
      const { east, north } = metresEastNorth(detail, c);
      return Math.hypot(east, north) <= metres;
    });
  }

  // ---- live updates -------------------------------------------------------------------------

  connectLive() {
    if (this.source) this.source.close();
    const live = document.getElementById("live");
    const source = new EventSource("/api/v1/live/cases");
    this.source = source;
    source.addEventListener("ready", () => live.classList.add("on"));
    source.addEventListener("cases", (event) => {
      live.classList.add("on");
      this.applyLive(JSON.parse(event.data).cases);
    });
    source.addEventListener("reset", () => this.reload());
    source.addEventListener("signed-out", () => {
      source.close();
      this.ctx.signOut("Your session ended.");
    });
    source.onerror = () => {
      live.classList.remove("on");
      // A stream refused outright (its credential ended while it reconnected) is not retried by
      // the browser: ask once whether the session still works, so a revoked one ends now (a 401
      // signs out), not at the next request.
      if (source.readyState === EventSource.CLOSED) get("/session").catch(() => {});
    };
  }

  disconnectLive() {
    if (this.source) this.source.close();
    this.source = null;
    document.getElementById("live").classList.remove("on");
  }

  /** Changed cases from the stream: update rows in place, insert new ones where they sort. */
  applyLive(cases) {
    let arrived = 0;
    for (const item of cases) {
      const known = this.byId.get(item.id);
      if (known) {
        Object.assign(known, item);
        const node = document.getElementById(`case-${item.id}`);
        if (node) node.replaceWith(this.row(known));
        this.ctx.caseView.updated(known);
        continue;
      }
      if (!this.matches(item)) continue;
      // Where a reload would put it; beyond the loaded part it arrives with "load more".
      let index = this.items.findIndex((c) => this.compare(item, c) < 0);
      if (index === -1) {
        if (this.nextCursor) continue;
        index = this.items.length;
      }
      this.items.splice(index, 0, item);
      this.byId.set(item.id, item);
      this.unseen.add(item.id);
      const node = this.row(item);
      node.classList.add("fresh");
      // Keep the dispatcher's place: the open case's row stays where it is on screen, and a row
      // inserted above the view must not push the list down.
      const before = this.list.scrollTop;
      const anchor = this.list.children[index] || null;
      const above = anchor && anchor.offsetTop < before;
      const open = this.selectedId !== null ? document.getElementById(`case-${this.selectedId}`) : null;
      const view = this.list.getBoundingClientRect();
      const was = open ? open.getBoundingClientRect().top : null;
      const inView = open && was >= view.top && was < view.bottom;
      this.list.insertBefore(node, anchor);
      if (inView) this.list.scrollTop += open.getBoundingClientRect().top - was;
      else if (above) this.list.scrollTop = before + node.offsetHeight;
      this.above.add(item.id); // kept only while it is above the view (drawAbove)
      this.total += 1;
      arrived += 1;
    }
    if (arrived) {
      this.drawAbove();
      this.drawFoot();
      this.ctx.flash(`${arrived} new case${arrived > 1 ? "s" : ""} arrived.`, "info");
      if (this.selectedId === null && this.items.length) this.select(this.items[0].id);
    }
    if (cases.length) {
      this.drawFoot(); // a colleague's decisions change what still matches too
      this.scheduleCounts();
    }
  }

  /** Recount soon, at most about twice a second however many changes stream in. */
  scheduleCounts() {
    if (this.countsTimer) return;
    this.countsTimer = setTimeout(() => {
      this.countsTimer = null;
      this.loadCounts();
    }, 500);
  }

  /** A case changed by this console (an action): redraw its row; it may no longer belong. */
  changed(detail) {
    const known = this.byId.get(detail.id);
    if (!known) return;
    for (const key of Object.keys(known)) if (key in detail) known[key] = detail[key];
    const node = document.getElementById(`case-${detail.id}`);
    if (node) node.replaceWith(this.row(known));
    this.drawFoot();
    this.scheduleCounts();
  }

  // ---- bulk actions -------------------------------------------------------------------------

  check(id, on) {
    if (on) this.checked.add(id);
    else this.checked.delete(id);
    this.drawBulk();
  }

  toggleCurrent() {
    if (this.selectedId === null || !this.ctx.canAct()) return;
    const on = !this.checked.has(this.selectedId);
    this.check(this.selectedId, on);
    const box = document.querySelector(`#case-${this.selectedId} input[type=checkbox]`);
    if (box) box.checked = on;
  }

  drawBulk() {
    if (!this.ctx.canAct()) {
      this.bulkBox.hidden = true;
      return;
    }
    const n = this.checked.size;
    this.bulkBox.hidden = n === 0;
    if (!n) return;
    const target = `${n} selected`;
    // How many of the selection each action fits (a closed case takes none, a new one no close):
    // say it on the button instead of refusing after the question.
    const b = (label, action, id) => {
      const k = this.fitting(action).length;
      const title = k === n ? `${label.replace("…", "")} all ${n}` : `${k} of the ${n} selected can be ${PAST[action]}`;
      return el("button", { type: "button", id, disabled: k === 0, title, onclick: () => this.bulk(action) }, k === n ? label : `${label} (${k} of ${n})`);
    };
    replace(
      this.bulkBox,
      el("span", { id: "bulk-target" }, `Bulk on ${target}:`),
      b("Confirm", "confirm", "bulk-confirm"),
      b("Reject…", "reject", "bulk-reject"),
      b("Dispatch…", "dispatch", "bulk-dispatch"),
      b("Resolve", "resolve", "bulk-resolve"),
      b("Close", "close", "bulk-close"),
      n ? el("button", { type: "button", class: "link", onclick: () => this.clearChecks() }, "clear selection") : null,
    );
  }

  /** The selected cases ``action`` fits, by their state (``actions_by_state``; a case not listed
   * any more is left to the server to judge). */
  fitting(action) {
    const byState = this.ctx.options.actions_by_state || {};
    return [...this.checked].filter((id) => {
      const state = this.byId.get(id)?.state;
      return !state || !byState[state] || byState[state].includes(action);
    });
  }

  async bulkOnFilter() {
    const actions = ["confirm", "reject", "dispatch", "resolve", "close"];
    const action = await choose(`All ${this.matching()} cases matching the filter`, actions.map((a) => ({ value: a, label: a })), { note: "Select rows with the space bar to act on a few instead." });
    if (action) await this.bulk(action, { useFilter: true });
  }

  clearChecks() {
    this.checked.clear();
    this.draw();
  }

  filterBody() {
    const p = this.params();
    const body = {};
    if (p.state && p.state.length) body.state = p.state;
    for (const key of ["violation_type", "device_id", "since", "until", "bbox", "attribute"]) if (p[key]) body[key] = p[key];
    if (p.candidate) body.candidate = p.candidate === "true";
    if (this.filters.overdue) body.overdue = true;
    return body;
  }

  async bulk(action, { useFilter = false } = {}) {
    const body = { action };
    if (action === "reject") {
      const reasons = this.ctx.options.reject_reasons || FALLBACK_REASONS;
      const code = await choose("Reject them all: why?", reasons.map((r) => ({ value: r.code, label: r.code.replaceAll("_", " "), hint: r.description })));
      if (!code) return;
      body.reject_reason = code;
      const why = await ask("Reason in words, if you want one (kept in each case's history)", { required: false });
      if (why === null) return;
      if (why) body.reason = why;
    }
    if (action === "dispatch") {
      const team = await this.pickTeam("Dispatch them all to");
      if (!team) return;
      body.team = team;
    }
    let count = useFilter ? 0 : this.checked.size;
    let dryStates = [];
    let misfits = [];
    if (count) {
      // Only the cases the action fits are sent; the others stay selected for another action.
      body.case_ids = this.fitting(action);
      misfits = [...this.checked].filter((id) => !body.case_ids.includes(id));
      count = body.case_ids.length;
    } else {
      body.filter = this.filterBody();
      try {
        const dry = await post("/cases/bulk-actions", { ...body, dry_run: true });
        count = dry.matched;
        dryStates = dry.results.map((r) => r.state);
      } catch (err) {
        this.ctx.flash(`Bulk ${action} refused: ${err.message}`, "error");
        return;
      }
    }
    if (!count) {
      this.ctx.flash("No case to act on.", "info");
      return;
    }
    const verb = action.charAt(0).toUpperCase() + action.slice(1);
    // Confirming takes a dispatched or resolved case back (the single action asks the same).
    const states = body.case_ids ? body.case_ids.map((id) => this.byId.get(id)?.state) : dryStates;
    const back = action === "confirm" ? states.filter((st) => st === "dispatched" || st === "resolved").length : 0;
    const warning = back ? ` ${counted(back, "of them is", "of them are")} dispatched or resolved: confirming takes ${back === 1 ? "it" : "them"} back, to be dispatched again.` : "";
    const left = misfits.length ? ` ${counted(misfits.length, "other selected case")} cannot be ${PAST[action]} and ${misfits.length === 1 ? "stays" : "stay"} selected.` : "";
    if (!(await confirmDialog(`Bulk ${action}`, `${verb} ${counted(count, "case")}? Each is recorded in its history as done by you.${warning}${left}`))) return;
    let failed = [];
    try {
      const result = await post("/cases/bulk-actions", body);
      failed = result.results.filter((r) => r.status !== 200);
      const kept = body.case_ids ? ", still selected" : "";
      const text = `Bulk ${action}: ${result.succeeded} done` + (failed.length ? `, ${failed.length} not done${kept} (${failed.slice(0, 3).map((r) => `#${r.case_id}: ${r.detail}`).join("; ")})` : ".");
      this.ctx.flash(text, failed.length ? "error" : "info");
    } catch (err) {
      this.ctx.flash(`Bulk ${action} refused: ${err.message}`, "error");
      return;
    }
    // What was not done stays selected, to be dealt with another way; what was done is let go.
    this.checked = new Set(body.case_ids ? [...failed.map((r) => r.case_id), ...misfits] : []);
    await this.reload();
  }
}
