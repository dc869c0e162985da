// The signs page: the signboard register (known signs that open no case) and the no-sign zones
// in force (GET /signs, /signs/{id}, /signs/zones). A dispatcher looks up why a sign raised
// nothing (it is registered: by which case or permit, seen how often, last when) and what the
// register decided each time a box saw it. A reviewer imports the permit office's list (POST
// /signs/import: checked first, a dry run, then imported on OK), edits an entry (a renewed
// permit's last day) and removes one a permit no longer covers (its sign's next sighting opens
// a case again).

import { ApiError, apiUrl, del, get, patch, post } from "./api.js";
import { confirmDialog, showPanel } from "./dialogs.js";
import { drawMap } from "./map.js";
import { REGISTER_CHANGED, ago, counted, el, query, replace, when } from "./util.js";

const PAGE_SIZE = 50;
const SOURCES = { review: "case marked permitted", import: "permit list", api: "added by hand" };
const OUTCOMES = {
  attached: "attached (no case)",
  new: "new sign: case",
  changed: "changed sign: case",
  expired: "permit expired: case",
  unverified: "appearance not checked: case",
  restricted: "in a no-sign zone: case",
  pending: "waiting for its crop",
};

export class SignsPage {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.filters = { permit_id: "", source: "" };
    this.offset = 0;
    this.openId = null;
    this.items = [];
    this.mapBox = null;
  }

  /** ``entry``: open this register entry (a case's link to the sign it was compared with). */
  async show(entry = null) {
    if (entry) this.openId = entry;
    const form = el(
      "form",
      { class: "toolbar", id: "signs-filters", autocomplete: "off" },
      el("label", {}, "Permit ", el("input", { name: "permit_id", value: this.filters.permit_id, placeholder: "any permit", size: 14 })),
      el(
        "label",
        {},
        "Registered from ",
        el("select", { name: "source" }, el("option", { value: "" }, "anywhere"), Object.entries(SOURCES).map(([v, text]) => el("option", { value: v, selected: v === this.filters.source }, text))),
      ),
    );
    form.addEventListener("change", (event) => {
      this.filters[event.target.name] = event.target.value.trim();
      this.offset = 0;
      this.load();
    });
    form.addEventListener("submit", (event) => event.preventDefault());
    if (this.ctx.canAct()) {
      // One choice: the list and the photos its rows name, picked together.
      const picker = el("input", { type: "file", accept: ".csv,.geojson,.json,.jpg,.jpeg,.png", multiple: true, id: "permit-file", hidden: true });
      picker.addEventListener("change", () => picker.files.length && this.importList([...picker.files]).finally(() => (picker.value = "")));
      form.append(picker, el("button", { type: "button", id: "permit-import", title: "Choose the list (CSV or GeoJSON) and the photos it names, together", onclick: () => picker.click() }, "Import a permit list…"));
    }
    this.zonesBody = el("div", {}, "Loading…");
    this.listBody = el("div", {}, "Loading…");
    this.detail = el("section", { class: "card", id: "sign-detail", hidden: true });
    replace(
      this.root,
      el("h2", {}, "Signs"),
      el("p", { class: "muted" }, "Registered signs open no case when a box sees them again at their place, looking the same. A signboard case rejected as permitted registers its sign; a permit list comes in here (choose the list and its photos together) or with streetwatch signs import."),
      el("div", { class: "cards" }, el("section", { class: "card", id: "signs-register" }, el("h3", {}, "Register"), form, this.listBody), el("div", { class: "signs-side" }, this.detail, el("section", { class: "card", id: "signs-zones" }, el("h3", {}, "No-sign zones"), this.zonesBody))),
    );
    await this.loadZones(); // first: the map under the register draws the zones in force
    await this.load();
    if (this.openId !== null) this.open(this.openId);
  }

  async loadZones() {
    let data;
    try {
      data = await get("/signs/zones");
    } catch (err) {
      replace(this.zonesBody, el("p", { class: "error" }, `Not available: ${err.message}`));
      return;
    }
    this.ctx.zones = data.items; // case maps draw the zones in force, not those of sign-in time
    if (!data.read_at) {
      replace(this.zonesBody, el("p", { class: "muted" }, "No zone file is configured (signs.no_sign_zones): only the register decides."));
      return;
    }
    replace(
      this.zonesBody,
      data.problem ? el("p", { class: "error", id: "zones-problem", role: "alert" }, `The zone file's latest change is not in force: ${data.problem}`) : null,
      el("p", { class: "muted" }, `Read ${when(data.read_at)} (${ago(data.read_at)}); a change to the file is read within seconds.`),
      el(
        "table",
        { id: "zones-table" },
        el("thead", {}, el("tr", {}, ["Zone", "Why", "Parts"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          data.items.length
            ? data.items.map((z) => el("tr", { dataset: { zone: z.name } }, el("td", {}, z.name), el("td", {}, z.reason || "–"), el("td", { class: "num" }, z.polygons.length)))
            : el("tr", {}, el("td", { colspan: 3, class: "muted" }, "the file lists no zone")),
        ),
      ),
    );
  }

  async load() {
    let page;
    try {
      page = await get(`/signs${query({ ...this.filters, limit: PAGE_SIZE, offset: this.offset })}`);
    } catch (err) {
      replace(this.listBody, el("p", { class: "error" }, `Not available: ${err.message}`));
      return;
    }
    const now = Date.now();
    const rows = page.items.map((s) => {
      const expired = s.valid_until && Date.parse(s.valid_until) < now;
      return el(
        "tr",
        { dataset: { sign: s.id }, class: s.id === this.openId ? "selected" : "", tabindex: 0, onclick: () => this.open(s.id), onkeydown: (e) => e.key === "Enter" && this.open(s.id) },
        el("td", {}, s.crop_sha256 ? el("img", { class: "sign-thumb", src: apiUrl(`/evidence/${s.crop_sha256}/thumbnail`), alt: `sign ${s.id}` }) : el("span", { class: "noimg" }, "no photo")),
        el("td", {}, `#${s.id}`),
        el("td", {}, s.permit_id || "–"),
        s.superseded_by
          ? el("td", { class: "muted", title: "a case about it was marked permitted: the later entry decides" }, "replaced by ", el("a", { href: `#/signs?entry=${s.superseded_by}` }, `#${s.superseded_by}`))
          : el("td", { class: expired ? "expired" : "", title: s.valid_until ? when(s.valid_until) : "" }, s.valid_until ? `${expired ? "expired " : "through "}${s.valid_until.slice(0, 10)}` : "no end"),
        el("td", {}, s.source === "review" && s.case_id ? el("a", { href: `#/queue?state=all&case=${s.case_id}` }, `case #${s.case_id}`) : SOURCES[s.source] || s.source),
        el("td", { title: when(s.last_seen_at) }, s.last_seen_at ? ago(s.last_seen_at) : "not yet"),
        el("td", { class: "num" }, s.sighting_count),
      );
    });
    this.items = page.items;
    const last = Math.min(this.offset + page.items.length, page.total);
    const prev = el("button", { type: "button", disabled: this.offset === 0, onclick: () => this.turn(-PAGE_SIZE) }, "Previous");
    const next = el("button", { type: "button", disabled: last >= page.total, onclick: () => this.turn(PAGE_SIZE) }, "Next");
    replace(
      this.listBody,
      el(
        "table",
        { id: "signs-table" },
        el("thead", {}, el("tr", {}, ["", "Entry", "Permit", "Valid", "Registered from", "Last seen", "Sightings"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no registered sign matches"))),
      ),
      el("div", { class: "toolbar" }, el("span", { id: "signs-count", class: "muted" }, page.total ? `${this.offset + 1}–${last} of ${page.total}` : "0 entries"), prev, next),
      this.map(),
    );
  }

  /** The entries listed, with the no-sign zones they reach into; a dot opens its entry. */
  map() {
    if (!this.items.length) return null;
    const points = this.items.map((s) => ({
      lat: s.lat,
      lon: s.lon,
      kind: s.id === this.openId ? "case" : "other",
      title: `entry #${s.id}${s.permit_id ? ` (permit ${s.permit_id})` : ""}`,
      onclick: () => this.open(s.id),
    }));
    const areas = (this.ctx.zones || []).map((z) => ({ title: `No-sign zone ${z.name}${z.reason ? `: ${z.reason}` : ""}`, polygons: z.polygons }));
    const config = this.ctx.config;
    const tiles = config.tile_url ? { url: config.tile_url, attribution: config.tile_attribution } : null;
    const box = el("div", { id: "signs-map" }, drawMap(points, { width: 600, height: 260, tiles, label: "Map of the registered signs listed", areas }));
    this.mapBox = box;
    return box;
  }

  turn(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.load();
  }

  async open(id) {
    this.openId = id;
    for (const row of this.listBody.querySelectorAll("tr[data-sign]")) row.classList.toggle("selected", Number(row.dataset.sign) === id);
    if (this.mapBox) this.mapBox.replaceWith(this.map()); // the open entry in red
    this.detail.hidden = false;
    replace(this.detail, el("h3", {}, `Entry #${id}`), "Loading…");
    let sign;
    try {
      sign = await get(`/signs/${id}`);
    } catch (err) {
      replace(this.detail, el("h3", {}, `Entry #${id}`), el("p", { class: "error" }, err instanceof ApiError && err.status === 404 ? "This entry was removed." : err.message));
      return;
    }
    const facts = [
      ["Place", `${sign.lat.toFixed(5)}, ${sign.lon.toFixed(5)}`],
      ["Permit", sign.permit_id || "–"],
      // A permit runs through a day (stored as that day's end, UTC): the day, as the permit says it.
      ["Valid through", sign.valid_until ? sign.valid_until.slice(0, 10) : "no end known"],
      ["Replaced", sign.superseded_by ? `by entry #${sign.superseded_by} (${when(sign.superseded_at)}): history, it decides no sighting` : "–"],
      ["Registered", `${when(sign.created_at)} by ${sign.created_by} (${SOURCES[sign.source] || sign.source})`],
      ["Appearance", sign.views ? `${counted(sign.views, "view")} on record` : "no photo yet: the next sighting gives one"],
      ["Description", sign.description || "–"],
    ];
    const actions = this.ctx.canAct()
      ? el(
          "div",
          { class: "row-buttons" },
          el("button", { type: "button", id: "sign-edit", onclick: () => this.edit(sign) }, "Edit permit…"),
          el("button", { type: "button", class: "danger", id: "sign-remove", onclick: () => this.remove(sign) }, "Remove from the register…"),
        )
      : null;
    replace(
      this.detail,
      el("h3", {}, `Entry #${sign.id}`),
      sign.crop_sha256 ? el("img", { class: "sign-photo", src: apiUrl(`/evidence/${sign.crop_sha256}`), alt: `the registered sign #${sign.id}` }) : null,
      el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      actions,
      el("h3", {}, "Latest sightings"),
      el(
        "table",
        { id: "sign-sightings" },
        el("thead", {}, el("tr", {}, ["When", "Box", "Decided", "Case", "Distance", "Looks alike"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          sign.sightings.length
            ? sign.sightings.map((s) =>
                el(
                  "tr",
                  { dataset: { outcome: s.outcome } },
                  el("td", { title: when(s.at) }, ago(s.at)),
                  el("td", {}, s.device_id),
                  el("td", {}, (OUTCOMES[s.outcome] || s.outcome) + (s.zone_name ? ` '${s.zone_name}'` : "")),
                  el("td", {}, s.case_id ? el("a", { href: `#/queue?state=all&case=${s.case_id}` }, `#${s.case_id}`) : "–"),
                  el("td", { class: "num" }, s.distance_m === null ? "–" : `${s.distance_m.toFixed(1)} m`),
                  el("td", { class: "num" }, s.similarity === null ? "–" : s.similarity.toFixed(2)),
                ),
              )
            : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "not seen by a box since it was registered")),
        ),
      ),
    );
  }

  /** A permit list and the photos it names (chosen together): checked by a dry run, imported on OK. */
  async importList(files) {
    const isList = (f) => /\.(csv|geojson|json)$/i.test(f.name);
    const lists = files.filter(isList);
    if (lists.length !== 1) {
      this.ctx.flash(lists.length ? `Choose one list at a time (${lists.map((f) => f.name).join(", ")}), with its photos.` : "Choose the permit list itself (a .csv or .geojson file), with the photos it names.");
      return;
    }
    const file = lists[0];
    const format = file.name.toLowerCase().endsWith(".csv") ? "csv" : "geojson";
    const photos = {};
    for (const photo of files.filter((f) => !isList(f))) photos[photo.name] = await base64Of(photo);
    const body = { format, text: await file.text(), photos };
    let check;
    try {
      check = await post("/signs/import", { ...body, dry_run: true });
    } catch (err) {
      this.ctx.flash(`${file.name}: ${err.status === 413 ? "too large to send; import it on the server with streetwatch signs import" : err.message}`);
      return;
    }
    const lines = (items, cls) => (items.length ? el("ul", { class: cls }, items.slice(0, 20).map((t) => el("li", {}, t)), items.length > 20 ? el("li", {}, `… and ${items.length - 20} more`) : null) : null);
    const content = el(
      "div",
      { id: "permit-check" },
      el("p", {}, `${check.added} to add, ${check.updated} to update (same permit id), ${counted(check.errors.length, "row")} to skip; ${counted(Object.keys(photos).length, "photo")} sent.`),
      lines(check.errors, "error"),
      lines(check.notes, "muted"),
      check.open_cases.length ? el("p", { id: "permit-open-cases" }, coveredCases(check.open_cases, true)) : null,
    );
    if (!(await showPanel(`Import ${file.name}?`, content, "Nothing has changed yet: OK adds and updates the entries counted below, skipping the rows listed."))) return;
    let done;
    try {
      done = await post("/signs/import", body);
    } catch (err) {
      this.ctx.flash(`${file.name}: ${err.message}`);
      return;
    }
    document.dispatchEvent(new CustomEvent(REGISTER_CHANGED));
    this.ctx.flash(`${file.name}: ${done.added} added, ${done.updated} updated, ${done.errors.length} skipped.`, "info");
    this.offset = 0;
    await this.load();
    // Cases opened before their sign's permit was known: the register cannot take them back by
    // itself (a permit at a place is not proof the case shows that sign), so say where they are.
    if (done.open_cases.length) {
      await showPanel("Open cases at these permits", el("p", { id: "permit-open-cases" }, coveredCases(done.open_cases, false)), "Each case shows the permit beside its sign.");
    }
  }

  /** A renewed permit (its new end), a permit id learnt later, a note: PATCH /signs/{id}. */
  async edit(sign) {
    const permit = el("input", { name: "permit_id", value: sign.permit_id || "", maxlength: 64, placeholder: "none" });
    const until = el("input", { name: "valid_until", type: "date", value: sign.valid_until ? sign.valid_until.slice(0, 10) : "" });
    const note = el("input", { name: "description", value: sign.description || "", maxlength: 500, size: 40 });
    const form = el("div", { class: "edit-form", id: "sign-edit-form" }, el("label", {}, "Permit ", permit), el("label", {}, "Valid through ", until, el("span", { class: "muted" }, " (empty: no end)")), el("label", {}, "Description ", note));
    if (!(await showPanel(`Entry #${sign.id}`, form, "A permit renewed: its new last day. The sign's look and place stay."))) return;
    const body = {};
    if ((permit.value.trim() || null) !== sign.permit_id) body.permit_id = permit.value.trim() || null;
    const day = until.value ? `${until.value}T23:59:59.999999+00:00` : null; // valid through that day, UTC
    if ((until.value || null) !== (sign.valid_until ? sign.valid_until.slice(0, 10) : null)) body.valid_until = day;
    if (note.value !== (sign.description || "")) body.description = note.value;
    if (!Object.keys(body).length) return;
    try {
      await patch(`/signs/${sign.id}`, body);
    } catch (err) {
      this.ctx.flash(`Not changed: ${err.message}`);
      return;
    }
    document.dispatchEvent(new CustomEvent(REGISTER_CHANGED));
    this.ctx.flash(`Entry #${sign.id} changed.`, "info");
    await this.load();
    await this.open(sign.id);
  }

  async remove(sign) {
    const what = sign.permit_id ? `permit ${sign.permit_id}` : `entry #${sign.id}`;
    if (!(await confirmDialog("Remove from the register?", `The sign of ${what} stops being known: the next time a box sees it, it opens a case. Its sightings stay on record.`))) return;
    try {
      await del(`/signs/${sign.id}`);
    } catch (err) {
      this.ctx.flash(`Not removed: ${err.message}`);
      return;
    }
    document.dispatchEvent(new CustomEvent(REGISTER_CHANGED));
    this.ctx.flash(`Removed ${what} from the register.`, "info");
    this.openId = null;
    this.detail.hidden = true;
    await this.load();
  }
}

/** A file's bytes as base64 (the API takes photos inside the JSON body). */
async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** "2 open signboard cases stand where a permit now is: #13, #14 …", each a link to the case;
 * ``checking``: the import is only being checked ("would stand"). */
function coveredCases(ids, checking) {
  const verb = ids.length === 1 ? "stands" : "stand";
  const where = checking ? "where the list puts a permit" : "where a permit now is";
  // While the import is still being asked about, a case opens in a new tab, so the question stays.
  const tab = checking ? { target: "_blank", rel: "noopener" } : {};
  const links = ids.flatMap((id, i) => [i ? ", " : "", el("a", { href: `#/queue?state=open&case=${id}`, ...tab }, `#${id}`)]);
  return [
    `${counted(ids.length, "open signboard case")} ${verb} ${where}, opened before it was known: `,
    ...links,
    ". They stay open: reject as permitted (x 5) each that shows the permitted sign.",
  ];
}
