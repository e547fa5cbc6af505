// The served model: version, training data and the evaluation report training wrote.
"use strict";

(() => {
  const { el, api, clear, when } = Page;

  const fmt = (value) => (typeof value === "number"
    ? (Number.isInteger(value) ? String(value) : value.toFixed(3)) : value === null || value === undefined ? "n/a" : String(value));

  function card(title, rows) {
    return el("section", { class: "card" }, el("h3", { text: title }),
      el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmt(v) })])));
  }

  function table(head, rows, id) {
    return el("table", { class: "report-table", id },
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el(i ? "td" : "th", { text: fmt(c) }))))));
  }

  function summary(model) {
    const data = model.training_data || {};
    const split = data.split || {};
    const holder = clear(document.getElementById("model-summary"));
    holder.append(
      card("Version", [["name", model.name], ["version", model.version],
        ["trained", when(model.created_at)], ["format", model.format],
        ["priority labels", (model.labels || []).join(", ")],
        ["form fields", (model.custom_fields || []).join(", ") || "none"]]),
      card("Training data", [["file", data.file], ["rows", data.rows],
        ["sha256", (data.sha256 || "").slice(0, 16) + "…"],
        ["tickets from", when(data.first_created)], ["tickets to", when(data.last_created)],
        ["split", `${split.method || ""}: fit ${split.fit}, validation ${split.validation}, test ${split.test}`],
        ["by label", Object.entries(data.rows_by_label || {}).map(([k, v]) => `${k} ${v}`).join(", ")]]),
      card("Confidence bands", Object.entries(model.bands || {}).map(([k, v]) => [`${k} from`, v])));
  }

  function report(r) {
    const holder = clear(document.getElementById("report"));
    holder.append(el("p", { class: "muted", text: r.title }));
    holder.append(el("ul", {}, Object.entries(r.context || {}).map(([k, v]) => el("li", { text: `${k}: ${v}` }))));
    const columns = { model: r.model, ...(r.baselines || {}) };
    const names = Object.keys(columns);
    const auto = (c) => c.auto_apply || {};
    holder.append(el("h3", { text: "Priority" }), table(["metric", ...names], [
      ["macro-F1", ...names.map((n) => columns[n].macro_f1)],
      ["accuracy", ...names.map((n) => columns[n].accuracy)],
      ["urgent recall", ...names.map((n) => columns[n].urgent_recall)],
      ["calibration error (ECE)", ...names.map((n) => columns[n].calibration_error)],
      ["auto-apply share at high", ...names.map((n) => auto(columns[n]).share)],
      ["precision at high", ...names.map((n) => auto(columns[n]).precision)],
    ], "metrics-table"));
    holder.append(el("h3", { text: "Per class" }), table(["label", "precision", "recall", "F1", "support"],
      Object.entries(r.model.per_class || {}).map(([label, m]) => [label, m.precision, m.recall, m.f1, m.support])));
    holder.append(el("h3", { text: "Confusion matrix" }),
      el("img", { src: "/model/report/confusion_matrix.png", id: "confusion-matrix",
        alt: "Confusion matrix of the priority model on the test window: rows are the true label, columns the predicted one" }));
    for (const [name, section] of Object.entries(r.targets || {})) {
      const cols = { model: section.model, ...(section.baselines || {}) };
      const keys = Object.keys(cols);
      holder.append(el("h3", { text: `Target ${name}` }), table(["metric", ...keys],
        ["macro_f1", "accuracy", "calibration_error"].map((m) => [m, ...keys.map((k) => cols[k][m])])));
    }
    if (r.resolution_time) {
      const m = r.resolution_time.model;
      const b = r.resolution_time.baseline_training_median;
      holder.append(el("h3", { text: "Resolution time (hours)" }), table(["metric", "model", "training median"], [
        ["median abs error", m.median_abs_error_hours, b.median_abs_error_hours],
        ["mean abs error", m.mean_abs_error_hours, b.mean_abs_error_hours],
        ["50 % interval coverage", m.interval_50_coverage, null],
        ["90 % interval coverage", m.interval_90_coverage, null]]));
    }
    if (r.duplicates && r.duplicates.test) {
      const d = r.duplicates;
      holder.append(el("h3", { text: "Possible duplicates" }), table(["window", "positives", "precision", "recall"], [
        ["validation", d.validation.positives, d.validation.precision, d.validation.recall],
        ["test", d.test.positives, d.test.precision, d.test.recall]]));
    }
    holder.append(el("p", {}, el("a", { href: "/model/report/report.md", text: "The report as Markdown" })));
  }

  function quality(q) {
    const holder = clear(document.getElementById("quality"));
    if (!q.overall || !q.overall.tickets) {
      holder.append(el("p", { class: "muted", text: "No corrections yet: the model's live quality shows here once agents correct or confirm tickets." }));
      return;
    }
    const rows = [["all versions", q.overall], ...Object.entries(q.versions || {})];
    holder.append(table(["model version", "corrected tickets", "agreement", "macro-F1", "urgent recall"],
      rows.map(([version, m]) => [version, m.tickets, m.agreement, m.macro_f1, m.urgent_recall]), "quality-table"));
  }

  async function load() {
    const [model, rep, live] = await Promise.all([api("/model"), api("/model/report"), api("/model/quality")]);
    if (live.ok) quality(live.data);
    else clear(document.getElementById("quality")).append(el("p", { class: "muted", text: "Live quality needs a store that keeps corrections." }));
    if (model.ok) summary(model.data);
    if (rep.ok) report(rep.data);
    else clear(document.getElementById("report")).append(el("p", { text: "This artifact has no evaluation report." }));
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", load);
})();
