// Who else has which case open: this page says which case it shows (POST /viewing) whenever that
// changes and every HEARTBEAT_MS, and hears back every case someone else has open. The queue marks
// those rows and the case view names who is on the case, so two dispatchers see each other before
// both decide it. A courtesy, not a lock: a decision is still refused if the case moved meanwhile.

import { post } from "./api.js";

const HEARTBEAT_MS = 15000;

/** A random id for this page: two tabs of one person are two viewers, each with its own case. */
function tabId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Presence {
  constructor(onChange) {
    this.onChange = onChange; // called with no argument after every answer that changed something
    this.tab = tabId();
    this.caseId = null;
    this.byCase = new Map(); // case id -> names of the others who have it open
    this.timer = null;
  }

  /** The names of the others who have ``caseId`` open now (none: []). */
  others(caseId) {
    return this.byCase.get(caseId) || [];
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.send(), HEARTBEAT_MS);
    this.send();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.byCase = new Map();
  }

  /** This page shows ``caseId`` now (null: none); said at once when it changed. */
  shows(caseId) {
    if (caseId === this.caseId) return;
    this.caseId = caseId;
    if (this.timer) this.send();
  }

  async send() {
    let answer;
    try {
      answer = await post("/viewing", { tab: this.tab, case_id: this.caseId });
    } catch {
      return; // presence is a courtesy: a missed heartbeat costs nothing, the next one retries
    }
    const next = new Map(answer.cases.map((c) => [c.case_id, c.usernames]));
    const same = next.size === this.byCase.size && [...next].every(([id, names]) => (this.byCase.get(id) || []).join() === names.join());
    this.byCase = next;
    if (!same) this.onChange();
  }
}
