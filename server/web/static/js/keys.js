// Keyboard triage: one key per decision, so a reviewer clears a plain case in a couple of
// seconds without touching the mouse. ``?`` shows this table in the page.

import { dialogOpen, showHelp } from "./dialogs.js";

export const HELP = [
  [
    "Queue",
    [
      ["j ↓", "next case still to do"],
      ["k ↑", "previous case, also one just decided"],
      ["space", "select / unselect the case for a bulk action"],
      ["g", "go to a case by its number"],
      ["r", "reload the queue"],
      ["/", "go to the filters"],
    ],
  ],
  [
    "Decide (the next case opens by itself)",
    [
      ["c", "confirm"],
      ["x", "reject: then 1 not a violation · 2 wrong class · 3 duplicate · 4 bad image · 5 permitted"],
      ["d", "dispatch to a team"],
      ["s", "resolve"],
      ["w", "close"],
      ["m", "merge into another case"],
    ],
  ],
  [
    "Correct",
    [
      ["l", "change the class (label)"],
      ["a", "record an attribute: then its value by number (a truck's load, a sign's mounting)"],
      ["e", "edit boxes on the clean frame (Enter saves, Escape cancels)"],
      ["o", "reopen"],
      ["n", "add a note"],
    ],
  ],
  [
    "Look",
    [
      ["t", "annotated / clean frame"],
      ["f", "frame full screen"],
      ["?", "this help"],
    ],
  ],
];

/** Install the shortcuts; ``actions`` maps a key to a function, ``active()`` says if the queue is shown. */
export function installKeys(actions, active) {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (dialogOpen()) return;
    const target = event.target;
    const typing = target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      showHelp(HELP);
      return;
    }
    if (!active()) return;
    const handler = actions[event.key];
    if (handler) {
      event.preventDefault();
      handler(event);
    }
  });
}
