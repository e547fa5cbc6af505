// The rules page for admins: the priority rules in force, a JSON editor whose validation errors
// (the browser's JSON parser, then the service's rules check naming the rule) show beside it,
// and the history of versions with who changed what, each restorable. Every value from the
// service, rule names and patterns included, reaches the page as text only (Page.el).
"use strict";

(() => {
  const { el, api, clear, when } = Page;
  const $ = (id) => document.getElementById(id);
  let inForce = null;

  function list(values) {
    return (values || []).join(", ");
  }

  function matches(rule) {
    const parts = [];
    if (rule.phrases) parts.push(`phrases: ${list(rule.phrases)}`);
    if (rule.patterns) parts.push(`patterns: ${list(rule.patterns)}`);
    if (rule.keywords) parts.push(`keywords: ${list(rule.keywords)}`);
    for (const [name, values] of Object.entries(rule.fields || {})) parts.push(`field ${name}: ${list(values)}`);
    return parts.map((text) => el("div", { class: "term", text }));
  }

  function showRules(state) {
    inForce = state;
    const status = clear($("rules-status"));
    const source = state.source === "model" ? "the served model's own rules" : `edited version ${state.version}`;
    status.append(el("p", { id: "rules-version", dataset: { version: String(state.version) } },
      `In force: ${source} (${state.reason}). Model ${state.model.version}; priority labels ${list(state.labels)}.`));
    if (!state.applied) status.append(el("p", { class: "field-problem", text: "Rules are switched off on this service (TICKET_ENRICH_ENRICH_RULES)." }));
    if (state.refused) {
      status.append(el("p", { id: "rules-refused", class: "problem-summary", role: "alert" },
        `Version ${state.refused.version}, written on disk, was refused: ${state.refused.message}`));
    }
    const body = clear($("rules-table").querySelector("tbody"));
    const rules = (state.rules && state.rules.rules) || [];
    if (!rules.length) body.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No rules." })));
    for (const rule of rules) {
      body.append(el("tr", { dataset: { rule: rule.name } },
        el("th", {}, el("span", { class: "term", text: rule.name }), rule.description ? el("div", { class: "hint", text: rule.description }) : null),
        el("td", { text: rule.label !== undefined ? `label ${rule.label}` : `at least ${rule.minimum}` }),
        el("td", {}, matches(rule)),
        el("td", {}, (rule.unless || []).map((text) => el("div", { class: "term", text })))));
    }
  }

  function resetEditor() {
    const doc = inForce && inForce.rules ? inForce.rules
      : { format: "ticket-enrich/rules@1", version: "", order: inForce ? inForce.labels : [], calm: [], rules: [] };
    $("rules-editor").value = JSON.stringify(doc, null, 2);
    clear($("rules-errors"));
  }

  function showError(text) {
    $("rules-editor").setAttribute("aria-invalid", "true");
    clear($("rules-errors")).append(el("p", { class: "field-problem", role: "alert", text }));
  }

  function changes(entry) {
    const c = entry.changes;
    if (!c) return entry.action === "model" ? "the rules the model shipped with" : "written on disk";
    const parts = [];
    if (c.added && c.added.length) parts.push(`added ${list(c.added)}`);
    if (c.removed && c.removed.length) parts.push(`removed ${list(c.removed)}`);
    if (c.changed && c.changed.length) parts.push(`changed ${list(c.changed)}`);
    if (c.settings && c.settings.length) parts.push(`file settings ${list(c.settings)}`);
    const what = parts.join("; ") || "no change";
    return entry.action === "restore" ? `restored version ${entry.restored_from}: ${what}` : what;
  }

  function showHistory(history) {
    const body = clear($("rules-history").querySelector("tbody"));
    for (const entry of history.versions) {
      const version = entry.version === 0 ? "0 (model)" : String(entry.version);
      const action = entry.in_force ? el("strong", { text: "in force" })
        : (entry.version === 0 && !entry.file) ? null
          : el("button", { type: "button", class: "small secondary", dataset: { restore: String(entry.version) }, onclick: () => restore(entry.version) }, "Restore");
      body.append(el("tr", { dataset: { version: String(entry.version) } },
        el("th", { text: version }),
        el("td", { text: entry.at ? when(entry.at) : "" }),
        el("td", { text: entry.by ? `${entry.by}${entry.by_kind === "api" ? " (API key)" : ""}` : "" }),
        el("td", { text: changes(entry) }),
        el("td", { text: entry.previous === undefined || entry.previous === null ? "" : String(entry.previous) }),
        el("td", {}, action)));
    }
  }

  async function refresh() {
    const [state, history] = await Promise.all([api("/rules"), api("/rules/history")]);
    if (!state.ok) {
      const message = state.status === 401 ? "Sign in on the queue page first."
        : state.status === 403 ? "Only an admin can see and edit the priority rules."
          : (state.data && state.data.error && state.data.error.message) || `The service answered ${state.status}.`;
      clear($("rules-access")).append(el("p", { class: "problem-summary", text: message }));
      $("rules-admin").hidden = true;
      return false;
    }
    clear($("rules-access"));
    $("rules-admin").hidden = false;
    showRules(state.data);
    if (history.ok) showHistory(history.data);
    return true;
  }

  async function save(event) {
    event.preventDefault();
    let doc;
    try {
      doc = JSON.parse($("rules-editor").value);
    } catch (error) {
      showError(`Not valid JSON: ${error.message}`);
      return;
    }
    $("rules-save").disabled = true;
    try {
      const answer = await api("/rules", { method: "PUT", body: doc });
      if (!answer.ok) {
        showError((answer.data && answer.data.error && answer.data.error.message) || `The service answered ${answer.status}.`);
        return;
      }
      $("rules-editor").removeAttribute("aria-invalid");
      await refresh();
      resetEditor();
      $("rules-errors").append(el("p", { id: "rules-saved", class: "agree", text: `Saved as version ${answer.data.version}; in force now.` }));
    } finally {
      $("rules-save").disabled = false;
    }
  }

  async function restore(version) {
    const answer = await api(`/rules/restore/${encodeURIComponent(version)}`, { method: "POST" });
    if (!answer.ok) {
      showError((answer.data && answer.data.error && answer.data.error.message) || `The service answered ${answer.status}.`);
      return;
    }
    await refresh();
    resetEditor();
    $("rules-errors").append(el("p", { id: "rules-saved", class: "agree", text: `Version ${version} restored as version ${answer.data.version}.` }));
  }

  async function load() {
    $("rules-form").addEventListener("submit", save);
    $("rules-reset").addEventListener("click", resetEditor);
    if (await refresh()) resetEditor();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", load);
})();
