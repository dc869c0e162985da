// The console's entry point: sign-in, the pages (queue, supervisor, signs, fleet, users), routing by
// the URL's hash (so a reload or a shared link keeps the filters and the case), shortcuts.

import { ApiError, del, get, post, setCsrf, whenSignedOut } from "./api.js";
import { CaseView } from "./caseview.js";
import { closeDialog, onScreen, showHelp } from "./dialogs.js";
import { HELP, installKeys } from "./keys.js";
import { DEFAULT_FILTERS, Queue } from "./queue.js";
import { Supervisor } from "./supervisor.js";
import { showUsers } from "./users.js";
import { showFleet } from "./fleet.js";
import { SignsPage } from "./signs.js";
import { Presence } from "./presence.js";
import { el, replace } from "./util.js";

const $ = (id) => document.getElementById(id);
const RANK = { viewer: 1, reviewer: 2, admin: 3 };
const PAGES = ["queue", "supervisor", "signs", "fleet", "users"];
const ZONES_REFRESH_MS = 5 * 60 * 1000;

const ctx = {
  user: null,
  viewers: (caseId) => presence.others(caseId),
  config: { classes: [], teams: [] },
  options: {},
  zones: [],
  wantedCase: null,
  page: "queue",
  canAct: () => RANK[ctx.user?.role] >= RANK.reviewer,
  flash,
  signOut: (message) => showSignIn(message),
  saveHash,
};
let queue = null;
let caseView = null;
let supervisor = null;
let signs = null;
let zonesRefresh = null;
let keysInstalled = false;
let flashTimer = null;
// Who else has which case open: rows and the case view are marked when that changes.
const presence = new Presence(() => {
  if (queue) queue.drawViewers();
  if (caseView) caseView.drawViewers();
});

/** The case this console is working on, for presence: the one open on the queue page. Away from
 * the queue none is, though the case view keeps its case (and redraws it on live updates). */
function shownCase() {
  return ctx.page === "queue" && caseView && caseView.detail ? caseView.detail.id : null;
}

function flash(text, kind = "error") {
  const box = onScreen($("flash"));
  box.textContent = text;
  box.className = `flash ${kind === "info" ? "info" : ""}`;
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (box.hidden = true), kind === "info" ? 3000 : 8000);
}

function showSignIn(message = "") {
  if (queue) queue.disconnectLive();
  presence.stop();
  closeDialog();
  setCsrf(null);
  ctx.user = null;
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("signin-password").value = "";
  $("signin-user").focus();
}

async function signIn(event) {
  event.preventDefault();
  const username = $("signin-user").value.trim();
  const password = $("signin-password").value;
  const button = event.target.querySelector("button");
  button.disabled = true;
  try {
    const session = await post("/session", { username, password });
    await start(session);
  } catch (err) {
    $("signin-error").textContent =
      err instanceof ApiError && err.status === 401 ? "Wrong user name or password." : err.message;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await del("/session");
  } catch {
    // Ending the session failed (server away): still forget it here.
  }
  history.replaceState(null, "", "#/queue");
  showSignIn("Signed out.");
}

// ---- hash routing -----------------------------------------------------------------------------

function parseHash() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  return { page: (path || "/queue").replace(/^\//, "") || "queue", params: new URLSearchParams(search || "") };
}

function saveHash() {
  if (ctx.page !== "queue" || !queue) return;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(queue.filters)) {
    if (value !== DEFAULT_FILTERS[key] && value !== "" && value !== false) params.set(key, String(value));
  }
  if (queue.selectedId !== null) params.set("case", String(queue.selectedId));
  const text = params.toString();
  history.replaceState(null, "", `#/queue${text ? `?${text}` : ""}`);
}

function route() {
  if (!ctx.user || !queue) return; // still starting: start() routes once the pages exist
  const { page, params } = parseHash();
  ctx.page = PAGES.includes(page) ? page : "queue";
  if (ctx.page === "users" && ctx.user.role !== "admin") ctx.page = "queue";
  for (const name of PAGES) {
    $(`view-${name}`).hidden = name !== ctx.page;
    $(`nav-${name}`).classList.toggle("active", name === ctx.page);
  }
  presence.shows(shownCase());
  if (ctx.page === "queue") {
    const filters = { ...DEFAULT_FILTERS };
    for (const key of Object.keys(DEFAULT_FILTERS)) {
      if (params.has(key)) filters[key] = typeof DEFAULT_FILTERS[key] === "boolean" ? params.get(key) === "true" : params.get(key);
    }
    const wanted = Number(params.get("case")) || null;
    const same = JSON.stringify(filters) === JSON.stringify(queue.filters) && queue.items.length;
    queue.filters = filters;
    if (same && wanted && queue.byId.has(wanted)) {
      queue.select(wanted);
      return;
    }
    ctx.wantedCase = wanted;
    queue.drawFilters();
    queue.reload();
  } else if (ctx.page === "supervisor") {
    supervisor.show();
  } else if (ctx.page === "signs") {
    signs.show(Number(params.get("entry")) || null);
  } else if (ctx.page === "fleet") {
    showFleet($("view-fleet"));
  } else {
    showUsers($("view-users"), flash);
  }
}

// ---- start ------------------------------------------------------------------------------------

async function start(session) {
  setCsrf(session.csrf_token);
  ctx.user = session.user;
  $("signin").hidden = true;
  $("app").hidden = false;
  replace($("whoami"), el("span", { id: "whoami-name" }, session.user.username), ` (${session.user.role})`);
  $("nav-users").hidden = session.user.role !== "admin";

  const [config, options, devices, zones] = await Promise.all([
    get("/console/config"),
    get("/review-options").catch(() => ({})),
    get("/devices?limit=500").catch(() => ({ items: [] })),
    get("/signs/zones").catch(() => ({ items: [] })),
  ]);
  ctx.config = config;
  ctx.zones = zones.items || [];
  ctx.options = options || {};
  if (!ctx.options.classes) ctx.options.classes = config.classes;

  if (!queue) {
    caseView = new CaseView($("case"), {
      get config() {
        return ctx.config;
      },
      get options() {
        return ctx.options;
      },
      get zones() {
        return ctx.zones;
      },
      canAct: ctx.canAct,
      flash,
      viewers: ctx.viewers,
      // The case view's case changed (shown, redrawn or gone): presence hears what this console shows.
      shown: () => presence.shows(shownCase()),
      nearby: (detail, metres) => queue.nearby(detail, metres),
      pickTeam: (title, current) => queue.pickTeam(title, current),
      open: (id) => queue.select(id),
      onChanged: (detail) => queue.changed(detail),
      next: () => queue.advance(),
    });
    ctx.caseView = caseView;
    queue = new Queue(ctx);
    supervisor = new Supervisor($("view-supervisor"));
    signs = new SignsPage($("view-signs"), ctx);
  } else {
    // Signed in again (the session had ended): start from a clean page, possibly as someone else.
    queue.filters = { ...DEFAULT_FILTERS };
    queue.items = [];
    queue.checked.clear();
    caseView.cache.clear();
    caseView.empty();
  }
  queue.devices = devices.items.map((d) => d.device_id);

  if (!keysInstalled) {
    keysInstalled = true;
    const q = () => queue;
    const cv = () => caseView;
    installKeys(
      {
        j: () => q().move(1),
        ArrowDown: () => q().move(1),
        k: () => q().move(-1),
        ArrowUp: () => q().move(-1),
        c: () => cv().confirm(),
        x: () => cv().reject(),
        l: () => cv().relabel(),
        a: () => cv().attribute(),
        e: () => cv().editBoxes(),
        d: () => cv().dispatch(),
        s: () => cv().simple("resolve"),
        w: () => cv().simple("close"),
        o: () => cv().simple("reopen"),
        m: () => cv().merge(),
        n: () => cv().note(),
        t: () => cv().toggleFrame(),
        f: () => cv().fullScreen(),
        " ": () => q().toggleCurrent(),
        r: () => q().reload(),
        g: () => q().goTo(),
        "/": () => document.querySelector("#filters select, #filters input")?.focus(),
      },
      () => ctx.user !== null && ctx.page === "queue" && !cv().editing,
    );
  }
  queue.connectLive();
  presence.start();
  if (!zonesRefresh) {
    // The server reads a changed zone file within seconds; case maps follow within minutes.
    zonesRefresh = setInterval(() => {
      if (ctx.user) get("/signs/zones").then((z) => (ctx.zones = z.items || [])).catch(() => {});
    }, ZONES_REFRESH_MS);
  }
  route();
}

async function boot() {
  whenSignedOut(() => {
    if (ctx.user) showSignIn("Your session ended."); // the words the live stream's signed-out says too
  });
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("help-button").addEventListener("click", () => showHelp(HELP));
  window.addEventListener("hashchange", route);
  try {
    const session = await get("/session");
    if (session.user) await start(session);
    else showSignIn("");
  } catch (err) {
    showSignIn(err instanceof ApiError && err.status === 401 ? "" : err.message);
  }
}

boot();
