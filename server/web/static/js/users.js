// The admin's page: who may use the console, making new users (viewer, reviewer, admin), and the
// teams cases are dispatched to (add, rename, deactivate).

import { get, patch, post } from "./api.js";
import { ask, confirmDialog } from "./dialogs.js";
import { ago, el, replace, when } from "./util.js";

export async function showUsers(root, flash) {
  const list = el("div", {}, "Loading…");
  const form = el(
    "form",
    { class: "toolbar", id: "user-form" },
    el("label", {}, "Name ", el("input", { name: "username", autocomplete: "off", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.@\\-]{0,63}" })),
    el("label", {}, "Role ", el("select", { name: "role" }, ["viewer", "reviewer", "admin"].map((r) => el("option", { value: r }, r)))),
    el("label", {}, "Password ", el("input", { name: "password", type: "password", minlength: 8, autocomplete: "new-password" })),
    el("button", { type: "submit", class: "primary" }, "Add user"),
  );
  const result = el("p", { role: "status" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    if (!data.password) delete data.password;
    try {
      const made = await post("/users", data);
      replace(result, `User ${made.user.username} made. Their API token (shown once): `, el("code", {}, made.token.token));
      form.reset();
      load();
    } catch (err) {
      flash(`Cannot add the user: ${err.message}`, "error");
    }
  });
  const change = (user, body, done) => patchThenReload(`/users/${user.id}`, body, done, `Cannot change ${user.username}`, flash, load);
  const disable = async (user) => {
    if (await confirmDialog(`Disable ${user.username}?`, "Every request with any of their tokens is refused from now on, and an open console is signed out. Enable them again at any time."))
      change(user, { disabled: true }, `${user.username} is disabled: every request is refused.`);
  };
  const setPassword = async (user) => {
    const password = await ask(`New password for ${user.username}`, { label: "Password (8 characters or more)", secret: true, note: "Their sign-ins with the old password end now; tokens made for scripts keep working." });
    if (password) change(user, { password }, `${user.username}'s password is set.`);
  };
  // A role is what someone may do from their next request on: asked first, like disabling.
  const setRole = async (user, select) => {
    const role = select.value;
    const a = role === "admin" ? "an" : "a";
    const may = { viewer: "see cases but not act on them", reviewer: "review, dispatch and close cases", admin: "do everything, users and the fleet included" }[role];
    if (await confirmDialog(`Make ${user.username} ${a} ${role}?`, `From their next request on they may ${may}.`)) change(user, { role }, `${user.username} is ${a} ${role} now.`);
    else select.value = user.role;
  };
  // An admin changes everyone but themselves (another admin can); a box's account is only disabled or enabled.
  const row = (u, me) => {
    const self = u.id === me;
    const person = u.role !== "device";
    const role = person && !self
      ? el("select", { "aria-label": `Role of ${u.username}`, onchange: (event) => setRole(u, event.target) }, ["viewer", "reviewer", "admin"].map((r) => el("option", { value: r, selected: r === u.role }, r)))
      : u.role;
    return el(
      "tr",
      { dataset: { user: u.username }, class: u.disabled ? "muted" : "" },
      el("td", {}, u.username, self ? " (you)" : ""),
      el("td", {}, role),
      el("td", {}, when(u.created_at)),
      el("td", { title: u.last_active_at ? when(u.last_active_at) : "" }, u.last_active_at ? ago(u.last_active_at) : "never"),
      el("td", {}, u.disabled ? "disabled" : "active"),
      el(
        "td",
        {},
        self ? null : u.disabled
          ? el("button", { type: "button", onclick: () => change(u, { disabled: false }, `${u.username} may sign in again.`) }, "Enable")
          : el("button", { type: "button", onclick: () => disable(u) }, "Disable"),
        " ",
        person ? el("button", { type: "button", onclick: () => setPassword(u) }, "Set password…") : null,
      ),
    );
  };
  const load = async () => {
    try {
      const [me, page] = await Promise.all([get("/users/me"), get("/users?limit=500")]);
      replace(
        list,
        el(
          "table",
          { id: "users-table" },
          el("thead", {}, el("tr", {}, ["Name", "Role", "Since", "Last active", "Status", ""].map((h) => el("th", {}, h)))),
          el("tbody", {}, page.items.map((u) => row(u, me.id))),
        ),
      );
    } catch (err) {
      replace(list, el("p", { class: "error" }, err.message));
    }
  };
  replace(
    root,
    el("h2", {}, "Users"),
    el("p", { class: "muted" }, "Viewers see cases; reviewers also act on them; admins also manage users and teams. A disabled user's every request is refused, whatever token it holds; revoke single tokens with ", el("code", {}, "streetwatch user revoke"), "."),
    form,
    result,
    list,
    teams(flash),
  );
  load();
}

/** PATCH ``path``, say ``done`` (or why it was refused), and reload the list either way: a select
 * that showed a value the server refused shows the saved one again. */
async function patchThenReload(path, body, done, refused, flash, reload) {
  try {
    await patch(path, body);
    flash(done, "info");
  } catch (err) {
    flash(`${refused}: ${err.message}`, "error");
  }
  reload();
}

/** The teams section: once one team exists, dispatch offers and takes only the active teams. */
function teams(flash) {
  const list = el("div", {}, "Loading…");
  const note = el("p", { class: "muted" });
  const form = el(
    "form",
    { class: "toolbar", id: "team-form" },
    el("label", {}, "Team ", el("input", { name: "name", autocomplete: "off", required: true, maxlength: 64 })),
    el("label", {}, "Covers ", el("input", { name: "description", autocomplete: "off", maxlength: 2000 })),
    el("button", { type: "submit", class: "primary" }, "Add team"),
  );
  const change = (team, body, done) => patchThenReload(`/teams/${team.id}`, body, done, `Cannot change team ${team.name}`, flash, load);
  const rename = async (team) => {
    const name = await ask(`Rename team ${team.name}`, { label: "New name", value: team.name, note: "Cases keep the name they were dispatched under." });
    if (name && name !== team.name) change(team, { name }, `Team ${team.name} is now ${name}.`);
  };
  const row = (t) =>
    el(
      "tr",
      { dataset: { team: t.name }, class: t.active ? "" : "muted" },
      el("td", {}, t.name),
      el("td", {}, t.description),
      el("td", {}, t.active ? "active" : "inactive"),
      el("td", {}, `${when(t.updated_at)} by ${t.updated_by}`),
      el(
        "td",
        {},
        el("button", { type: "button", onclick: () => rename(t) }, "Rename"),
        " ",
        t.active
          ? el("button", { type: "button", onclick: () => change(t, { active: false }, `Team ${t.name} is no longer offered for dispatch.`) }, "Deactivate")
          : el("button", { type: "button", onclick: () => change(t, { active: true }, `Team ${t.name} is offered again.`) }, "Reactivate"),
      ),
    );
  const load = async () => {
    try {
      const page = await get("/teams?include_inactive=true&limit=500");
      note.textContent = page.free_text_dispatch
        ? "No team defined yet: dispatchers may type any team (the server settings' console.teams are suggested). Once you add one, dispatch offers and accepts the active teams only."
        : "Dispatch offers and accepts the active teams only. A deactivated team stays on the cases it holds.";
      replace(
        list,
        page.items.length
          ? el(
              "table",
              { id: "teams-table" },
              el("thead", {}, el("tr", {}, ["Team", "Covers", "Status", "Changed", ""].map((h) => el("th", {}, h)))),
              el("tbody", {}, page.items.map(row)),
            )
          : null,
      );
    } catch (err) {
      replace(list, el("p", { class: "error" }, err.message));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    try {
      const made = await post("/teams", data);
      flash(`Team ${made.name} added.`, "info");
      form.reset();
      load();
    } catch (err) {
      flash(`Cannot add the team: ${err.message}`, "error");
    }
  });
  load();
  return el("section", { id: "teams", "aria-label": "Teams" }, el("h2", {}, "Teams"), note, form, list);
}
