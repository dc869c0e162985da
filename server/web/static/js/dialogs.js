// Modal pickers and prompts that work from the keyboard: number keys pick a choice, arrows move,
// Enter accepts, Escape cancels. Each returns a promise of the answer (null when cancelled).

import { el, replace } from "./util.js";

const overlay = () => document.getElementById("overlay");

/** Put ``node`` (the overlay, the flash) where it can be seen: in the element shown full screen,
 * if any (nothing outside it is drawn then), else back in the page. */
export function onScreen(node) {
  const host = document.fullscreenElement || document.body;
  if (node && node.parentElement !== host) host.append(node);
  return node;
}
let closeCurrent = null;

export function dialogOpen() {
  return !overlay().hidden;
}

export function closeDialog() {
  if (closeCurrent) closeCurrent(null);
}

function open(content, onKey) {
  return new Promise((resolve) => {
    const box = onScreen(overlay());
    const keyHandler = (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        finish(null);
        return;
      }
      if (onKey) onKey(event, finish);
    };
    const finish = (value) => {
      document.removeEventListener("keydown", keyHandler, true);
      box.hidden = true;
      box.replaceChildren();
      closeCurrent = null;
      resolve(value);
    };
    closeCurrent = finish;
    replace(box, content);
    box.hidden = false;
    box.onclick = (event) => {
      if (event.target === box) {
        finish(null);
        return;
      }
      // A link in a dialog (a case named in a panel) leaves the dialog: closed first, so the page
      // the link opens is not left behind it. Followed by hand, because an anchor taken out of the
      // page while its click is dispatched no longer navigates. Links to a new tab, and downloads,
      // keep it open.
      const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
      if (link && !link.target && !link.hasAttribute("download")) {
        event.preventDefault();
        const href = link.getAttribute("href");
        finish(null);
        if (href.startsWith("#")) location.hash = href;
        else location.href = href;
      }
    };
    document.addEventListener("keydown", keyHandler, true);
    content.finish = finish;
  });
}

/**
 * Pick one of ``choices`` ([{value, label, hint}]). Keys 1..9 pick directly; with ``filter``
 * a text box narrows a long list (class names) and Enter takes the highlighted one.
 */
export function choose(title, choices, { filter = false, note = "" } = {}) {
  let shown = choices;
  let active = 0;
  const list = el("div", { class: "choices", role: "listbox" });
  const input = filter ? el("input", { type: "search", placeholder: "type to filter", "aria-label": "filter" }) : null;
  const dialog = el("div", { class: "dialog", role: "dialog", "aria-label": title }, el("h2", {}, title), note ? el("p", { class: "muted" }, note) : null, input, list);

  const draw = () => {
    replace(
      list,
      shown.map((choice, i) =>
        el(
          "button",
          {
            type: "button",
            class: i === active ? "active" : "",
            dataset: { value: choice.value },
            onclick: () => dialog.finish(choice.value),
          },
          i < 9 ? el("kbd", {}, String(i + 1)) : null,
          el("span", {}, choice.label),
          choice.hint ? el("span", { class: "muted" }, choice.hint) : null,
        ),
      ),
    );
  };
  if (input) {
    input.addEventListener("input", () => {
      const text = input.value.trim().toLowerCase();
      shown = choices.filter((c) => c.label.toLowerCase().includes(text) || String(c.value).includes(text));
      active = 0;
      draw();
    });
  }
  draw();
  const promise = open(dialog, (event, finish) => {
    const typing = input && document.activeElement === input;
    if (/^[1-9]$/.test(event.key) && !(typing && input.value)) {
      const choice = shown[Number(event.key) - 1];
      if (choice) {
        event.preventDefault();
        finish(choice.value);
      }
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = Math.max(0, Math.min(shown.length - 1, active + (event.key === "ArrowDown" ? 1 : -1)));
      draw();
    } else if (event.key === "Enter" && shown[active]) {
      event.preventDefault();
      finish(shown[active].value);
    }
  });
  (input || list.querySelector("button"))?.focus();
  return promise;
}

/** Ask for text (a note, a team, a case number). Enter accepts (Ctrl+Enter in a long text). */
export function ask(title, { label = "", value = "", multiline = false, suggestions = [], required = true, note = "", secret = false } = {}) {
  const listId = `suggest-${Math.random().toString(36).slice(2)}`;
  // secret: a password, typed unseen and never offered by the browser's autocomplete.
  const field = multiline
    ? el("textarea", { "aria-label": label || title })
    : el("input", { "aria-label": label || title, list: suggestions.length ? listId : null, type: secret ? "password" : "text", autocomplete: secret ? "new-password" : null });
  field.value = value;
  const error = el("p", { class: "error" });
  const datalist = suggestions.length ? el("datalist", { id: listId }, suggestions.map((s) => el("option", { value: s }))) : null;
  const ok = el("button", { type: "button", class: "primary" }, "OK");
  const cancel = el("button", { type: "button" }, "Cancel");
  const dialog = el(
    "div",
    { class: "dialog", role: "dialog", "aria-label": title },
    el("h2", {}, title),
    note ? el("p", { class: "muted" }, note) : null,
    label ? el("label", {}, label) : null,
    field,
    datalist,
    error,
    el("div", { class: "row-buttons" }, cancel, ok),
  );
  const accept = () => {
    const text = field.value.trim();
    if (required && !text) {
      error.textContent = "Please fill this in (or press Escape to cancel).";
      return;
    }
    dialog.finish(text);
  };
  ok.addEventListener("click", accept);
  cancel.addEventListener("click", () => dialog.finish(null));
  const promise = open(dialog, (event) => {
    if (event.key === "Enter" && (!multiline || event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      accept();
    }
  });
  field.focus();
  return promise;
}

/** Yes or no, Enter for yes. */
export function confirmDialog(title, text, { careful = false } = {}) {
  const yes = el("button", { type: "button", class: "primary" }, "Yes");
  const no = el("button", { type: "button" }, "Cancel");
  // ``text``: a sentence, or nodes (photos, a warning) for a decision that needs them.
  const body = typeof text === "string" ? el("p", {}, text) : el("div", { class: "dialog-body" }, text);
  const dialog = el("div", { class: "dialog", role: "dialog", "aria-label": title }, el("h2", {}, title), body, el("div", { class: "row-buttons" }, no, yes));
  yes.addEventListener("click", () => dialog.finish(true));
  no.addEventListener("click", () => dialog.finish(false));
  // ``careful``: a step the text warns about is not taken by a reflex Enter; Cancel has the
  // focus, and Enter answers whichever button has it.
  const promise = open(dialog, (event, finish) => {
    if (event.key === "Enter") {
      event.preventDefault();
      finish(careful ? document.activeElement === yes : true);
    }
  });
  (careful ? no : yes).focus();
  return promise.then((v) => v === true);
}

/** The help overlay (``?``). */
export function showHelp(sections) {
  const dialog = el(
    "div",
    { class: "dialog", role: "dialog", "aria-label": "Keyboard shortcuts", id: "help" },
    el("h2", {}, "Keyboard shortcuts"),
    sections.map(([heading, keys]) => [
      el("h3", {}, heading),
      el("div", { class: "help-grid" }, keys.map(([k, text]) => [el("span", {}, k.split(" ").map((part) => el("kbd", {}, part))), el("span", {}, text)])),
    ]),
    el("p", { class: "muted" }, "Press Escape or ? to close."),
  );
  return open(dialog, (event, finish) => {
    if (event.key === "?") {
      event.preventDefault();
      finish(null);
    }
  });
}

/** Show ``content`` (e.g. a map to drag an area on) with OK / Cancel; true on OK. */
export function showPanel(title, content, note = "") {
  const ok = el("button", { type: "button", class: "primary" }, "OK");
  const cancel = el("button", { type: "button" }, "Cancel");
  const dialog = el("div", { class: "dialog", role: "dialog", "aria-label": title }, el("h2", {}, title), note ? el("p", { class: "muted" }, note) : null, content, el("div", { class: "row-buttons" }, cancel, ok));
  ok.addEventListener("click", () => dialog.finish(true));
  cancel.addEventListener("click", () => dialog.finish(false));
  const promise = open(dialog, (event, finish) => {
    if (event.key === "Enter") {
      event.preventDefault();
      finish(true);
    }
  });
  ok.focus();
  return promise.then((v) => v === true);
}
