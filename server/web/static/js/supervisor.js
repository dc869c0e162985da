// The supervisor's page: the model's live precision per type and version, the labels reviewers
// recorded with their decisions (what retraining learns from), review throughput
// per reviewer, open cases by age against their SLA, places where violations recur, and what the
// sign register decided (the signs it kept out of the queue).
// Every table has its CSV (the same rows) one click away.

import { apiUrl, get } from "./api.js";
import { el, query, replace, typeName, when } from "./util.js";

export class Supervisor {
  constructor(root) {
    this.root = root;
    this.range = { since: "", until: "" };
    this.bucket = "day";
  }

  params() {
    return {
      since: this.range.since ? new Date(this.range.since).toISOString() : "",
      until: this.range.until ? new Date(this.range.until).toISOString() : "",
    };
  }

  csv(path, extra = {}) {
    return el("a", { href: apiUrl(`${path}${query({ ...this.params(), ...extra, format: "csv" })}`), download: "", class: "csv" }, "CSV");
  }

  async show() {
    const toolbar = el(
      "form",
      { class: "toolbar", id: "stats-range" },
      el("label", {}, "From ", el("input", { type: "datetime-local", name: "since", value: this.range.since })),
      el("label", {}, "To ", el("input", { type: "datetime-local", name: "until", value: this.range.until })),
      el("label", {}, "Throughput per ", el("select", { name: "bucket" }, ["hour", "day"].map((b) => el("option", { value: b, selected: b === this.bucket }, b)))),
    );
    toolbar.addEventListener("change", (event) => {
      const t = event.target;
      if (t.name === "bucket") this.bucket = t.value;
      else this.range[t.name] = t.value;
      this.show();
    });
    const cards = el("div", { class: "cards" });
    replace(this.root, el("h2", {}, "Supervisor"), toolbar, cards);
    const parts = [
      ["Live precision by model", "/stats/precision", {}, (d) => this.precision(d)],
      ["Labels from reviews", "/stats/labels", {}, (d) => this.labels(d)],
      ["Review throughput", "/stats/throughput", { bucket: this.bucket }, (d) => this.throughput(d)],
      ["Open cases by age", "/stats/open-cases", {}, (d) => this.openCases(d)],
      // Places that came back: several cases at once (a shop front's signs) are not recurring.
      ["Recurring places", "/stats/recurrences", { min_recurrences: 1 }, (d) => this.recurrences(d)],
      ["Sign register", "/stats/signs", {}, (d) => this.signs(d)],
    ];
    for (const [title, path, extra, draw] of parts) {
      const body = el("div", {}, "Loading…");
      cards.append(el("section", { class: "card", id: `stats-${path.split("/").pop()}` }, el("h3", {}, title, " ", this.csv(path, extra)), body));
      get(`${path}${query({ ...this.params(), ...extra })}`)
        .then((data) => replace(body, draw(data)))
        .catch((err) => replace(body, el("p", { class: "error" }, `Not available: ${err.message}`)));
    }
  }

  table(headers, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, headers.map(([h, num]) => el("th", { class: num ? "num" : "" }, h)))), el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "nothing in this period"))));
  }

  precision(data) {
    const share = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
    const bar = (v) => {
      const node = el("span", { class: "bar" });
      node.style.width = `${Math.round((v || 0) * 80)}px`;
      return node;
    };
    // Two shares: how many cases were violations, and how often the model was right about the
    // object. A sign marked permitted is no violation but was a sign; rollouts halt on the second.
    return el(
      "div",
      {},
      this.table(
        [["Type"], ["Model"], ["Configuration"], ["Reviewed", 1], ["Confirmed", 1], ["Rejected", 1], ["Permitted", 1], ["Excluded", 1], ["Violations", 1], ["Model right", 1], [""]],
        (data.rows || []).map((r) =>
          el("tr", {}, el("td", {}, typeName(r.violation_type)), el("td", {}, `${r.model_name} ${r.model_version}`), el("td", { class: r.config ? "" : "muted" }, r.config || "box's own"), el("td", { class: "num" }, r.reviewed), el("td", { class: "num" }, r.confirmed), el("td", { class: "num" }, r.rejected), el("td", { class: "num" }, r.permitted || 0), el("td", { class: "num" }, r.excluded), el("td", { class: "num" }, share(r.share_confirmed)), el("td", { class: "num" }, share(r.share_real)), el("td", {}, bar(r.share_real))),
        ),
      ),
      el("p", { class: "muted" }, "Violations: confirmed of the reviewed, less duplicates and bad images (excluded). Model right: confirmed or permitted of the same; a permitted sign is no violation but is a sign. A rollout halts when a new version's model right drops."),
    );
  }

  /** What reviewers recorded with their decisions, per attribute value: what a retrained model learns. */
  labels(data) {
    const cell = (n) => el("td", { class: n ? "num" : "num muted" }, String(n));
    const body = [];
    let group = "";
    for (const r of data.rows || []) {
      if (`${r.violation_type}:${r.attribute}` !== group) {
        group = `${r.violation_type}:${r.attribute}`;
        body.push(el("tr", { class: "group" }, el("th", { colspan: 3 }, `${typeName(r.violation_type)}: ${r.attribute}`)));
      }
      const name = r.value === null ? "not recorded" : r.value.replaceAll("_", " ");
      // A value opens the queue on its cases, every state, as the "Reviewed as" filter does.
      const what = r.value === null ? el("span", { class: "muted" }, name) : el("a", { href: `#/queue?state=all&violation_type=${r.violation_type}&attribute=${r.attribute}:${r.value}`, title: "Its cases in the queue" }, name);
      const flag = r.violation ? [" ", el("span", { class: "badge", title: "classes.yaml: a case with this value is a violation" }, "violation")] : [];
      body.push(el("tr", { dataset: { value: `${r.attribute}:${r.value ?? ""}` } }, el("td", {}, what, ...flag), cell(r.confirmed), cell(r.rejected)));
    }
    return el(
      "div",
      {},
      this.table([["Recorded"], ["Confirmed", 1], ["Rejected", 1]], body),
      el("p", { class: "muted" }, `${data.decided ?? 0} cases of these types decided in this period (duplicates and bad images left out). Each recorded value is a label for retraining: a truck's load feeds the load classifier (python -m training.truck_load.field_labels), which waits for open loads above all.`),
    );
  }

  throughput(data) {
    return el(
      "div",
      {},
      this.table(
        [["Reviewer"], ["Actions", 1], [`Active ${data.bucket}s`, 1], [`Per ${data.bucket}`, 1]],
        (data.reviewers || []).map((r) => el("tr", {}, el("td", {}, r.reviewer), el("td", { class: "num" }, r.actions), el("td", { class: "num" }, r.active_buckets), el("td", { class: "num" }, Number(r.per_bucket).toFixed(1)))),
      ),
      el("details", {}, el("summary", {}, `By ${data.bucket}`), this.table([["Reviewer"], ["From"], ["Actions", 1], ["Confirm", 1], ["Reject", 1], ["Other", 1]], (data.rows || []).map((r) => el("tr", {}, el("td", {}, r.reviewer), el("td", {}, when(r.bucket_start)), el("td", { class: "num" }, r.actions), el("td", { class: "num" }, r.confirm), el("td", { class: "num" }, r.reject), el("td", { class: "num" }, r.other))))),
    );
  }

  openCases(data) {
    const buckets = data.buckets || [];
    const types = [...new Set((data.rows || []).map((r) => r.violation_type))];
    const cell = (type, age) => {
      const r = (data.rows || []).find((x) => x.violation_type === type && x.age === age);
      if (!r) return el("td", { class: "num muted" }, "0");
      return el("td", { class: "num" }, String(r.open), r.overdue ? el("span", { class: "error" }, ` (${r.overdue} late)`) : null);
    };
    return el(
      "div",
      {},
      el("p", {}, `${data.total_open ?? 0} open, `, el("b", { class: "error" }, `${data.total_overdue ?? 0} past their SLA`)),
      this.table([["Type"], ...buckets.map((b) => [b, 1])], types.map((t) => el("tr", {}, el("td", {}, typeName(t)), buckets.map((b) => cell(t, b))))),
    );
  }

  signs(data) {
    const names = { attached: "registered: no case", new: "new sign", changed: "changed sign", expired: "permit expired", unverified: "look not checked", restricted: "in a no-sign zone", pending: "waiting for its crop" };
    const seen = data.signs_without_case + data.signs_with_case;
    return el(
      "div",
      {},
      el("p", {}, seen ? `${data.signs_without_case} of ${seen} signs seen were registered and opened no case.` : "No signboard seen in this period.", ` Register: ${data.entries_in_force} ${data.entries_in_force === 1 ? "entry" : "entries"} in force`, data.permits_lapsed ? el("span", { class: "error" }, ` (${data.permits_lapsed} with a lapsed permit)`) : null, data.entries_replaced ? `, ${data.entries_replaced} replaced.` : ".", " ", el("a", { href: "#/signs" }, "Signs page")),
      this.table([["Decided"], ["Sightings", 1], ["Signs", 1], ["Cases", 1]], (data.rows || []).map((r) => el("tr", { dataset: { outcome: r.outcome } }, el("td", {}, names[r.outcome] || r.outcome), el("td", { class: "num" }, r.sightings), el("td", { class: "num" }, r.signs), el("td", { class: "num" }, r.cases)))),
    );
  }

  recurrences(data) {
    return this.table(
      [["Type"], ["Place"], ["Cases", 1], ["Recurrences", 1], ["Open", 1], ["Latest"]],
      // A place opens the queue on that place's cases of that type, every state.
      (data.rows || []).map((r) =>
        el("tr", {}, el("td", {}, typeName(r.violation_type)), el("td", {}, el("a", { href: `#/queue?state=all&violation_type=${r.violation_type}&bbox=${r.bbox}`, title: "Its cases in the queue" }, `${Number(r.lat).toFixed(4)}, ${Number(r.lon).toFixed(4)}`)), el("td", { class: "num" }, r.cases), el("td", { class: "num" }, r.recurrences), el("td", { class: "num" }, r.open), el("td", {}, when(r.last_event_at))),
      ),
    );
  }
}
