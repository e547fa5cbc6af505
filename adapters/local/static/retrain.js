// The retrain panel of the model page: start a retrain (helpdesk, uploaded export or the shipped
// one), follow the job by polling it, then compare the challenger with the champion on the same
// test window and promote or discard it.
"use strict";

(() => {
  const { el, api, clear, cookie } = Page;
  const POLL_MS = 1000;
  let polling = null;
  let mayRetrain = false;

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

  function comparison(job) {
    const holder = clear($("retrain-result"));
    const c = job.challenge;
    if (!c) return;
    const { fmt, perClass, heatmap } = window.ModelPage;
    const champ = c.metrics.champion || null;
    const chall = c.metrics.challenger;
    const autoOf = (m) => (m && m.auto_apply) || {};
    const rows = [
      ["macro-F1", champ && champ.macro_f1, chall.macro_f1],
      ["urgent recall", champ && champ.urgent_recall, chall.urgent_recall],
      ["accuracy", champ && champ.accuracy, chall.accuracy],
      ["auto-applied share", autoOf(champ).share, autoOf(chall).share],
      ["precision of auto-applied", autoOf(champ).precision, autoOf(chall).precision],
    ];
    const labels = Object.keys(chall.per_class || {});
    for (const label of labels) {
      const a = champ && champ.per_class ? champ.per_class[label] : null;
      const b = chall.per_class[label];
      rows.push([`${label}: precision`, a && a.precision, b.precision]);
      rows.push([`${label}: recall`, a && a.recall, b.recall]);
      rows.push([`${label}: F1`, a && a.f1, b.f1]);
    }
    const window_ = c.window || {};
    holder.append(el("h3", { text: "Champion and challenger on the same test window" }),
      el("p", { class: "muted", text: `The newest ${window_.rows} closed tickets of the new data, which the challenger never trained on` +
        (c.data ? ` (${c.data.rows} closed tickets, ${c.data.corrections} corrections).` : ".") }),
      el("table", { class: "report-table", id: "comparison-table" },
        el("thead", {}, el("tr", {}, ["metric", `champion ${c.champion}`, `challenger ${c.challenger}`].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows.map(([name, a, b]) => el("tr", {},
          el("th", { text: name }), el("td", { class: "num", text: champ ? fmt(a) : "not comparable" }),
          el("td", { class: `num ${champ ? delta(a, b) : ""}`, text: fmt(b) }))))),
      el("p", { id: "verdict", class: "verdict", text: `The judge: ${c.reason}` }));
    if (chall.confusion_matrix) {
      holder.append(el("h4", { text: "The challenger's confusion matrix on the test window" }),
        heatmap(chall.confusion_matrix, "challenger-matrix", "Confusion matrix of the challenger on the test window"));
    }
    if (job.status === "ready" && mayRetrain) {
      const promote = el("button", { type: "button", id: "promote", disabled: !c.comparable, onclick: () => decide(job, "promote") },
        "Promote the challenger");
      const discard = el("button", { type: "button", id: "discard", class: "secondary", onclick: () => decide(job, "discard") },
        "Discard it");
      holder.append(el("div", { class: "actions" }, promote, discard));
      if (!c.comparable) holder.append(el("p", { class: "hint", text: "It predicts other labels than the served model: promote it with `ticket-enrich registry promote` and restart." }));
    } else if (job.decision) {
      holder.append(el("p", { id: "decision", class: `job-${job.status}`,
        text: `${job.status === "promoted" ? "Promoted" : "Discarded"} by ${job.decision.by}.` }));
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

  async function decide(job, action) {
    for (const b of document.querySelectorAll("#retrain-result button")) b.disabled = true;
    const answer = await api(`/admin/retrain/jobs/${encodeURIComponent(job.id)}/${action}`, { method: "POST" });
    if (!answer.ok) {
      say(answer.data && answer.data.error ? answer.data.error.message : `Refused (${answer.status}).`, "job-failed");
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
