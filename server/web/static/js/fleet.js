// The fleet page: every box with the versions it runs, when it was last heard from, its health
// (and, for a box the broker refuses, what it said over HTTP) and its part in the latest rollout;
// then the rollouts with their progress (GET /fleet).
// Read only: rollouts are staged and halted with `streetwatch fleet` or the API.

import { get } from "./api.js";
import { ago, el, replace, when } from "./util.js";

/** Health values of a box not heard from lately. */
const QUIET = ["silent", "offline"];
const HEALTH = { ok: "ok", silent: "silent", offline: "offline", update_failed: "update failed", refused: "broker refuses it" };

/** How often the page asks again while it is shown: boxes come and go, rollouts move on. */
const REFRESH_MS = 15000;
let refreshTimer = null;

export async function showFleet(root, { again = false } = {}) {
  clearTimeout(refreshTimer);
  let body = root.querySelector("#fleet-body");
  if (!again || !body) {
    body = el("div", { id: "fleet-body" }, "Loading…");
    replace(root, el("h2", {}, "Fleet"), body);
  }
  // Asked again while the page is shown; the old figures stay up until the new ones are here.
  const schedule = () => {
    refreshTimer = setTimeout(() => {
      if (!root.hidden && root.isConnected) showFleet(root, { again: true });
    }, REFRESH_MS);
  };
  let data;
  try {
    data = await get("/fleet");
  } catch (err) {
    replace(body, el("p", { class: "error" }, `Not available: ${err.message}`));
    schedule();
    return;
  }
  const num = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const boxes = el(
    "table",
    { id: "fleet-boxes" },
    el("thead", {}, el("tr", {}, ["Box", "Group", "Health", "Last seen", "Models", "Config", "fps", "GPU °C", ["Outbox", "Events waiting on the box for the server's acknowledgement"], "Rollout"].map((h) => (Array.isArray(h) ? el("th", { title: h[1] }, h[0]) : el("th", {}, h))))),
    el(
      "tbody",
      {},
      data.boxes.length
        ? data.boxes.map((b) =>
            el(
              "tr",
              { dataset: { device: b.device_id, health: b.health } },
              el("td", {}, b.device_id),
              el("td", {}, b.group || "–"),
              el(
                "td",
                { class: `health-${b.health}` },
                HEALTH[b.health] || b.health,
                // What the box said over HTTP: the broker's refusal, e.g. a password not yet on the box.
                b.link_problem ? el("div", { class: "link-problem" }, `${b.link_problem} (since ${when(b.link_problem_since)})`) : null,
              ),
              el("td", { title: when(b.last_seen_at) }, ago(b.last_seen_at)),
              el("td", {}, Object.entries(b.models).map(([name, version]) => `${name} ${version}`).join(", ") || "–"),
              el("td", {}, b.config || "–"),
              // A box not heard from lately: its figures are as it last said them, not now.
              ...[num(b.fps, 1), num(b.gpu_temp_c)].map((v) =>
                QUIET.includes(b.health) ? el("td", { class: "num stale", title: `as last reported, ${ago(b.last_seen_at)}` }, v) : el("td", { class: "num" }, v),
              ),
              el("td", { class: "num", title: "events waiting on the box for the server's acknowledgement" }, num(b.outbox_events)),
              el("td", { title: b.rollout?.reason || "" }, b.rollout ? `#${b.rollout.rollout_id} ${b.rollout.version}: ${b.rollout.state}${b.rollout.step ? ` (${b.rollout.step})` : ""}` : "–"),
            ),
          )
        : el("tr", {}, el("td", { colspan: 10, class: "muted" }, "no box has reported yet")),
    ),
  );
  const rollouts = el(
    "table",
    { id: "fleet-rollouts" },
    el("thead", {}, el("tr", {}, ["#", "What", "To", "State", "Wave", "Boxes", "Why halted"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      data.rollouts.length
        ? data.rollouts.map((r) =>
            el(
              "tr",
              { dataset: { rollout: r.id, state: r.state } },
              el("td", {}, r.id),
              el("td", {}, `${r.kind} ${r.name} ${r.version}`),
              el("td", {}, r.selector),
              el("td", {}, r.state),
              el("td", {}, `${Math.min(r.current_wave + 1, r.waves.length)}/${r.waves.length}`),
              el("td", {}, Object.entries(r.targets).map(([state, n]) => `${n} ${state}`).join(", ")),
              el("td", {}, r.halted_reason || ""),
            ),
          )
        : el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no rollout yet")),
    ),
  );
  replace(
    body,
    el("p", { class: "muted", id: "fleet-updated" }, `As of ${when(new Date().toISOString(), true)}; asked again every ${REFRESH_MS / 1000} s while shown.`),
    el("section", { class: "card" }, el("h3", {}, "Boxes"), boxes),
    el("section", { class: "card" }, el("h3", {}, "Rollouts"), rollouts),
  );
  schedule();
}
