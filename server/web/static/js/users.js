// The admin's page: who may use the console, and making new users (viewer, reviewer, admin).

import { get, post } from "./api.js";
import { el, replace, when } from "./util.js";

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
  const load = async () => {
    try {
      const page = await get("/users?limit=500");
      replace(
        list,
        el(
          "table",
          { id: "users-table" },
          el("thead", {}, el("tr", {}, ["Name", "Role", "Since", "Status"].map((h) => el("th", {}, h)))),
          el("tbody", {}, page.items.map((u) => el("tr", {}, el("td", {}, u.username), el("td", {}, u.role), el("td", {}, when(u.created_at)), el("td", {}, u.disabled ? "disabled" : "active")))),
        ),
      );
    } catch (err) {
      replace(list, el("p", { class: "error" }, err.message));
    }
  };
  replace(
    root,
    el("h2", {}, "Users"),
    el("p", { class: "muted" }, "Viewers see cases; reviewers also act on them; admins also manage users. Teams offered for dispatch are set in the server settings (", el("code", {}, "console.teams"), "). Disable a user or revoke a token with ", el("code", {}, "streetwatch user disable|revoke"), "."),
    form,
    result,
    list,
  );
  load();
}
