// The retrain panel of the model page: start a retrain (helpdesk, uploaded export or the shipped
// one), follow the job by polling it, then compare the challenger with the champion on the same
// test window (or, when their priority labels differ, each on its own, with the labels added and
// removed) and promote it (after the admin accepts the new labels, if they differ) or discard it.
"use strict";

(() => {
  const { el, api, clear, cookie } = Page;
  const POLL_MS = 1000;
  let polling = null;
  let mayRetrain = false;
  // A job the server asked the admin's consent for although it judged both on the same labels
  // (another promotion changed the served model's labels since).
  let consentFor = null;

  const $ = (id) => document.getElementById(id);

  function say(text, cls) {
    clear($("retrain-job")).append(el("p", { class: cls || "", text }));
  }

  function jobView(job) {
    const holder = clear($("retrain-job"));
    const source = job.source || {};
    const from = source.kind === "upload" ? `upload ${source.name}${source.preset ? ` (${source.preset})` : ""}`
      : source.kind === "helpdesk" ? `pull from ${source.helpdesk}` : "the shipped export";
    holder.dataset.status = job.status;
    holder.append(
      el("p", { id: "job-status", class: `job-${job.status}` },
        `Job ${job.id} (${from}): ${job.status}`, job.status === "running" ? `, ${job.stage}` : ""),
      el("p", { id: "job-read", text: `Tickets read: ${job.tickets_read}; corrections added: ${job.corrections}` }));
    if (job.progress && job.status === "running") holder.append(el("p", { id: "job-progress", class: "muted", text: job.progress }));
    if (job.error) holder.append(el("p", { id: "job-error", class: "job-failed", role: "alert", text: `Failed: ${job.error}. The served model is unchanged.` }));
    if (job.messages && job.messages.length) {
      holder.append(el("details", {}, el("summary", { text: "Progress messages" }),
        el("ol", { class: "messages" }, job.messages.map((m) => el("li", { text: m })))));
    }
  }

  function delta(champion, challenger) {
    if (typeof champion !== "number" || typeof challenger !== "number") return "";
    const d = challenger - champion;
    return d > 0.0005 ? "better" : d < -0.0005 ? "worse" : "";
  }

  const listed = (labels) => (labels && labels.length ? labels.join(", ") : "none");

  function labelChange(c) {
    const l = c.labels;
    if (!l) return null;
    return el("div", { id: "label-change", class: "label-change" },
      el("p", { text: `The challenger predicts ${listed(l.challenger)}; the served model predicts ${listed(l.champion)}.` }),
      el("ul", {},
        el("li", { id: "labels-added", text: `Labels added: ${listed(l.added)}` }),
        el("li", { id: "labels-removed", text: `Labels removed: ${listed(l.removed)}` })));
  }

  function comparison(job) {
    const holder = clear($("retrain-result"));
    const c = job.challenge;
    if (!c) return;
    const { fmt, heatmap } = window.ModelPage;
    // Same labels: both scored on the challenger's test window. Other labels: each model on its
    // own test window, which is not like for like.
    const sameWindow = Boolean(c.comparable && c.metrics.champion);
    const champ = sameWindow ? c.metrics.champion : c.metrics.champion_own_window || null;
    const chall = c.metrics.challenger;
    const autoOf = (m) => (m && m.auto_apply) || {};
    const rows = [
      ["test tickets", champ && champ.rows, chall.rows],
      ["macro-F1", champ && champ.macro_f1, chall.macro_f1],
      ["urgent recall", champ && champ.urgent_recall, chall.urgent_recall],
      ["accuracy", champ && champ.accuracy, chall.accuracy],
      ["auto-applied share", autoOf(champ).share, autoOf(chall).share],
      ["precision of auto-applied", autoOf(champ).precision, autoOf(chall).precision],
    ];
    const labels = Object.keys(chall.per_class || {});
    for (const label of Object.keys((champ && champ.per_class) || {})) if (!labels.includes(label)) labels.push(label);
    const notPredicted = "not predicted";
    for (const label of labels) {
      const a = champ && champ.per_class ? champ.per_class[label] : null;
      const b = (chall.per_class || {})[label];
      for (const [name, key] of [["precision", "precision"], ["recall", "recall"], ["F1", "f1"]]) {
        rows.push([`${label}: ${name}`, a ? a[key] : notPredicted, b ? b[key] : notPredicted]);
      }
    }
    const window_ = c.window || {};
    const champCell = (a) => (!champ ? "n/a" : fmt(a));
    const head = sameWindow
      ? ["metric", `champion ${c.champion}`, `challenger ${c.challenger}`]
      : ["metric", `champion ${c.champion} (its own test window)`, `challenger ${c.challenger} (its own test window)`];
    holder.append(
      el("h3", { text: sameWindow ? "Champion and challenger on the same test window"
        : "Not like for like: the models predict other priority labels" }),
      el("p", { class: "muted", id: "window-note", text: sameWindow
        ? `The newest ${window_.rows} closed tickets of the new data, which the challenger never trained on`
          + (c.data ? ` (${c.data.rows} closed tickets, ${c.data.corrections} corrections).` : ".")
        : `The champion cannot be scored on labels it does not predict, so each model is shown on its own test window: `
          + `the challenger on the newest ${window_.rows} tickets of the new data`
          + (c.data ? ` (${c.data.rows} closed tickets, ${c.data.corrections} corrections)` : "")
          + `, the champion on the ${champ && champ.rows} tickets it was tested on when it was trained. The figures are not comparable with each other.` }));
    if (!sameWindow) holder.append(labelChange(c) || "");
    holder.append(
      el("table", { class: `report-table${sameWindow ? "" : " not-comparable"}`, id: "comparison-table" },
        el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))),
        el("tbody", {}, rows.map(([name, a, b]) => el("tr", {},
          el("th", { text: name }), el("td", { class: "num", text: champCell(a) }),
          el("td", { class: `num ${sameWindow ? delta(a, b) : ""}`, text: fmt(b) }))))),
      el("p", { id: "verdict", class: "verdict", text: `The judge: ${c.reason}` }));
    if (chall.confusion_matrix) {
      holder.append(el("h4", { text: "The challenger's confusion matrix on its test window" }),
        heatmap(chall.confusion_matrix, "challenger-matrix", "Confusion matrix of the challenger on its test window"));
    }
    if (job.status === "ready" && mayRetrain) {
      const consent = !sameWindow || consentFor === job.id;
      const promote = el("button", { type: "button", id: "promote", disabled: consent,
        onclick: () => decide(job, "promote", consent ? { accept_new_labels: true } : undefined) },
      "Promote the challenger");
      const discard = el("button", { type: "button", id: "discard", class: "secondary", onclick: () => decide(job, "discard") },
        "Discard it");
      if (consent) {
        const l = !sameWindow && c.labels;
        const what = l ? `(added: ${listed(l.added)}; removed: ${listed(l.removed)})` : "(as the message above lists them)";
        const accept = el("input", { type: "checkbox", id: "accept-new-labels",
          onchange: (event) => { promote.disabled = !event.target.checked; } });
        holder.append(el("label", { class: "confirm", for: "accept-new-labels" }, accept,
          ` I accept the new priority labels ${what}. `
          + "Agents' corrections, the queue's filters and the model card will use the challenger's labels in every worker; "
          + "tickets already enriched keep their stored priority, and corrections with a removed label stay in the history but are left out of the next retrain."));
      }
      holder.append(el("div", { class: "actions" }, promote, discard));
    } else if (job.decision) {
      const accepted = job.decision.labels_accepted;
      holder.append(el("p", { id: "decision", class: `job-${job.status}`,
        text: `${job.status === "promoted" ? "Promoted" : "Discarded"} by ${job.decision.by}`
          + (accepted ? `, accepting new priority labels (added: ${listed(accepted.added)}; removed: ${listed(accepted.removed)}).` : ".") }));
    }
  }

  function show(job) {
    jobView(job);
    comparison(job);
    $("retrain-start").disabled = job.status === "running" || !mayRetrain;
  }

  async function poll(id) {
    const answer = await api(`/admin/retrain/jobs/${encodeURIComponent(id)}`);
    if (!answer.ok) {
      say((answer.data && answer.data.error && answer.data.error.message) || `The job cannot be read (${answer.status}).`, "job-failed");
      polling = null;
      return;
    }
    show(answer.data);
    polling = answer.data.status === "running" ? setTimeout(() => poll(id), POLL_MS) : null;
  }

  function follow(job) {
    if (polling) clearTimeout(polling);
    show(job);
    if (job.status === "running") polling = setTimeout(() => poll(job.id), POLL_MS);
  }

  async function decide(job, action, body) {
    for (const b of document.querySelectorAll("#retrain-result button")) b.disabled = true;
    const answer = await api(`/admin/retrain/jobs/${encodeURIComponent(job.id)}/${action}`,
      body ? { method: "POST", body } : { method: "POST" });
    if (!answer.ok) {
      const error = answer.data && answer.data.error;
      say(error ? error.message : `Refused (${answer.status}).`, "job-failed");
      if (error && error.code === "labels_differ" && consentFor !== job.id) {
        consentFor = job.id;
        comparison(job);
      }
      return;
    }
    show(answer.data);
    if (action === "promote") await window.ModelPage.load();
  }

  async function start(event) {
    event.preventDefault();
    const source = (document.querySelector("input[name=source]:checked") || {}).value;
    let answer;
    if (source === "upload") {
      const file = $("retrain-file").files[0];
      if (!file) {
        say("Choose an export file first.", "job-failed");
        return;
      }
      const form = new FormData();
      form.append("file", file, file.name);
      const response = await fetch("/admin/retrain/upload", {
        method: "POST", body: form, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": cookie("te_csrf") },
      });
      const type = response.headers.get("content-type") || "";
      answer = { ok: response.ok, status: response.status, data: type.includes("json") ? await response.json() : null };
    } else {
      answer = await api("/admin/retrain", { method: "POST", body: { source } });
    }
    if (!answer.ok) {
      say(answer.data && answer.data.error ? answer.data.error.message : `Refused (${answer.status}).`, "job-failed");
      return;
    }
    clear($("retrain-result"));
    follow(answer.data);
  }

  async function init() {
    $("retrain-form").addEventListener("submit", start);
    const state = await api("/admin/retrain");
    if (!state.ok) return;
    const sources = state.data.sources;
    mayRetrain = state.data.may_retrain;
    const helpdesk = $("source-helpdesk");
    if (sources.helpdesk) $("helpdesk-name").textContent = `closed tickets pulled from ${sources.helpdesk}`;
    else {
      helpdesk.disabled = true;
      $("helpdesk-name").textContent = "the helpdesk (none to pull from: the service delivers to a webhook)";
    }
    $("retrain-hint").textContent = `Exports: ${sources.upload.types.join(", ")}, up to ${Math.round(sources.upload.max_bytes / 1048576)} MB. `
      + "The served model keeps serving while a retrain runs."
      + (mayRetrain ? "" : " Only an admin (TICKET_ENRICH_ADMINS) starts a retrain and promotes a model.");
    $("retrain-start").disabled = !mayRetrain;
    if (state.data.job) follow(state.data.job);
    document.body.dataset.retrainReady = "true";
  }

  document.addEventListener("DOMContentLoaded", init);
})();
