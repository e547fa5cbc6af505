// The served model: version, training data, its model card (per-class figures, auto-apply,
// confusion matrix drawn as an SVG heat-map) and the evaluation report training wrote.
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
    holder.append(el("p", {}, el("a", { href: "/admin/model/report.md", text: "The report as Markdown" })));
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

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // Rows are the true label, columns the predicted one; a cell's shade is its share of its row,
  // so a rare class reads as clearly as a common one.
  function heatmap(cm, id, caption) {
    const labels = cm.labels || [];
    const matrix = cm.matrix || [];
    const cell = 56;
    const left = 110;
    const top = 64;
    const width = left + cell * labels.length + 10;
    const height = top + cell * labels.length + 10;
    const root = svg("svg", { id, role: "img", viewBox: `0 0 ${width} ${height}`, width, height,
      "aria-label": caption });
    root.append(svg("title", {}, caption));
    root.append(svg("text", { x: left + (cell * labels.length) / 2, y: 14, "text-anchor": "middle", "font-size": 12, fill: "#5b6475" }, "predicted"));
    root.append(svg("text", { x: 12, y: top - 8, "font-size": 12, fill: "#5b6475" }, "true"));
    labels.forEach((label, j) => {
      root.append(svg("text", { x: left + j * cell + cell / 2, y: top - 12, "text-anchor": "middle", "font-size": 12, fill: "#1d2430" }, label));
    });
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      root.append(svg("text", { x: left - 8, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", "font-size": 12, fill: "#1d2430" }, labels[i]));
      row.forEach((count, j) => {
        const share = count / total;
        const shade = Math.round(255 - share * 200);
        const group = svg("g", { class: "cell", "data-true": labels[i], "data-predicted": labels[j], "data-count": count });
        group.append(svg("rect", { x: left + j * cell, y: top + i * cell, width: cell - 2, height: cell - 2, rx: 3,
          fill: i === j ? `rgb(${shade}, ${Math.min(255, shade + 40)}, ${shade})` : `rgb(255, ${shade}, ${shade})` }));
        group.append(svg("text", { x: left + j * cell + cell / 2 - 1, y: top + i * cell + cell / 2 + 4, "text-anchor": "middle",
          "font-size": 13, fill: share > 0.6 ? "#fff" : "#1d2430" }, count));
        group.append(svg("title", {}, `true ${labels[i]}, predicted ${labels[j]}: ${count} (${Math.round(share * 100)} % of ${labels[i]})`));
        root.append(group);
      });
    });
    return root;
  }

  function perClass(perClassFigures) {
    return Object.entries(perClassFigures || {}).map(([label, m]) => [label, m.precision, m.recall, m.f1, m.support]);
  }

  function modelCard(c) {
    const holder = clear(document.getElementById("model-card"));
    const data = c.data || {};
    const test = c.test || {};
    const auto = test.auto_apply || {};
    const entry = c.registry || {};
    holder.append(el("div", { class: "cards" },
      card("Data used", [["source", data.source ? (data.source.name || data.source.helpdesk || data.source.kind) : data.file],
        ["file", data.file], ["closed tickets", data.rows], ["from", when(data.first_created)], ["to", when(data.last_created)]]),
      card("On its test window", [["tickets", test.rows], ["macro-F1", test.macro_f1], ["urgent recall", test.urgent_recall],
        ["accuracy", test.accuracy], ["auto-applied share", auto.share], ["precision of auto-applied", auto.precision]]),
      card("Registry", [["version", c.model.version], ["stage", entry.stage || "not registered"],
        ["parent", entry.parent], ["why", (entry.decision || {}).reason]])));
    holder.append(el("h3", { text: "Per class" }),
      table(["label", "precision", "recall", "F1", "support"], perClass(test.per_class), "per-class-table"));
    if (test.confusion_matrix) {
      holder.append(el("h3", { text: "Confusion matrix" }),
        heatmap(test.confusion_matrix, "confusion-matrix",
          "Confusion matrix of the priority model on the test window: rows are the true label, columns the predicted one"));
    }
  }

  async function load() {
    const [model, rep, live, mc] = await Promise.all([
      api("/model"), api("/admin/model/report"), api("/model/quality"), api("/admin/model")]);
    if (live.ok) quality(live.data);
    else clear(document.getElementById("quality")).append(el("p", { class: "muted", text: "Live quality needs a store that keeps corrections." }));
    if (model.ok) summary(model.data);
    if (mc.ok) modelCard(mc.data);
    else clear(document.getElementById("model-card")).append(el("p", { class: "muted", text: "The model card needs a signed-in agent." }));
    if (rep.ok) report(rep.data);
    else clear(document.getElementById("report")).append(el("p", { text: "This artifact has no evaluation report." }));
    document.body.dataset.ready = "true";
  }

  window.ModelPage = { fmt, table, heatmap, perClass, load };
  document.addEventListener("DOMContentLoaded", load);
})();
