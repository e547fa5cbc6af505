// The agents' dashboard: a live queue (server-sent events), the ticket view and corrections.
"use strict";

(() => {
  const { el, api, clear, safeUrl, percent, age, when } = Page;
  let config = null;
  let openId = null;
  let known = new Set();
  let refreshTimer = null;
  let queueRequests = 0;
  let ticketRequests = 0;
  let source = null;

  const $ = (id) => document.getElementById(id);

  // --- signing in ------------------------------------------------------------------------

  async function start() {
    const { ok } = await api("/agent/session");
    if (ok) await enter();
    else showSignIn();
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
  }

  function showSignIn(message) {
    $("dashboard").hidden = true;
    $("sign-out").hidden = true;
    $("live").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    const problem = $("sign-in-problem");
    problem.textContent = message || "";
    problem.hidden = !message;
    document.body.dataset.ready = "true";
  }

  async function signIn(event) {
    event.preventDefault();
    const body = { name: $("agent-name").value, password: $("agent-password").value };
    const { ok, data } = await api("/agent/login", { method: "POST", body });
    if (!ok) {
      showSignIn(data && data.error ? data.error.message : "Signing in failed.");
      return;
    }
    $("agent-password").value = "";
    await enter();
  }

  async function signOut() {
    await api("/agent/logout", { method: "POST" });
    if (source) source.close();
    showSignIn("Signed out.");
  }

  async function enter() {
    const { ok, data } = await api("/agent/config");
    if (!ok) {
      showSignIn("Please sign in.");
      return;
    }
    config = data;
    $("sign-in").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = `Signed in as ${config.agent}`;
    buildFilters();
    await refresh();
    listen();
    const wanted = new URLSearchParams(window.location.search).get("ticket");
    if (wanted) await openTicket(wanted);
    document.body.dataset.ready = "true";
  }

  // --- the queue -------------------------------------------------------------------------

  function options(select, values, anyLabel) {
    clear(select);
    select.append(el("option", { value: "", text: anyLabel }));
    for (const value of values) select.append(el("option", { value, text: value }));
  }

  function buildFilters() {
    options($("filter-priority"), config.priority_order, "any");
    options($("filter-band"), config.bands, "any");
    options($("filter-delivery"), config.delivery ? config.delivery_statuses : ["none"], "any");
    const params = new URLSearchParams(window.location.search);
    for (const field of $("filters").elements) {
      if (params.has(field.name)) field.value = params.get(field.name);
      field.addEventListener("change", () => refresh(true));
    }
    $("filter-language").addEventListener("input", () => scheduleRefresh(300, true));
  }

  function filterParams() {
    const params = new URLSearchParams();
    for (const field of $("filters").elements) {
      if (field.name && field.value.trim()) params.set(field.name, field.value.trim());
    }
    return params;
  }

  function scheduleRefresh(delay, fromFilters) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refresh(fromFilters), delay);
  }

  async function refresh(fromFilters) {
    const params = filterParams();
    if (fromFilters) {
      const url = new URL(window.location.href);
      url.search = params.toString();
      if (openId) url.searchParams.set("ticket", openId);
      history.replaceState(null, "", url);
    }
    // Filters change faster than answers come back: only the latest request may render.
    const mine = ++queueRequests;
    const { ok, status, data } = await api(`/agent/queue?${params}`);
    if (mine !== queueRequests) return;
    if (status === 401) {
      showSignIn("Your session ended; please sign in again.");
      return;
    }
    if (!ok) return;
    if (data.model && config.model && data.model.version !== config.model.version) await followModel();
    renderQueue(data);
  }

  // A promotion may have swapped in a model with other priority labels: the filter and the
  // correction form offer the served model's labels, not the ones of the page's start.
  async function followModel() {
    const { ok, data } = await api("/agent/config");
    if (!ok) return;
    config = data;
    const select = $("filter-priority");
    const chosen = select.value;
    options(select, config.priority_order, "any");
    if (config.priority_order.includes(chosen)) select.value = chosen;
  }

  // Colour by what the label says, not by its rank: "normal" is calm even on a two-label scale.
  const SEVERE = ["blocker", "urgent", "critical", "highest"];
  const RAISED = ["high", "major"];
  function badge(label) {
    const name = String(label || "").toLowerCase();
    const level = SEVERE.includes(name) ? "severe" : RAISED.includes(name) ? "raised" : "calm";
    return el("span", { class: `badge ${level}`, text: label || "?" });
  }

  function deliveryText(item) {
    if (!config.delivery) return "off";
    return item.delivery ? item.delivery.status : "none";
  }

  function renderQueue(data) {
    const body = clear($("queue-body"));
    const fresh = new Set();
    for (const item of data.items) {
      const priority = item.enrichment.priority || {};
      const correction = (item.corrections || []).find((c) => c.target === "priority");
      const language = item.enrichment.language ? item.enrichment.language.code : "";
      const row = el("tr", {
        class: [item.id === openId ? "open" : "", known.size && !known.has(item.id) ? "fresh" : ""]
          .join(" ").trim(),
        dataset: { ticketId: item.id, priority: priority.label || "" },
        tabindex: "0",
        onclick: () => openTicket(item.id),
        onkeydown: (event) => { if (event.key === "Enter") openTicket(item.id); },
      },
      el("td", {}, badge(priority.label)),
      el("td", {}, `${percent(priority.confidence)} `,
        el("span", { class: `band band-${priority.band}`, text: priority.band || "" }),
        item.enrichment.needs_review ? el("span", { class: "flag", text: "review" }) : null),
      el("td", { class: "subject" }, el("span", { class: "subject-text", text: item.ticket.subject || "(no subject)" })),
      el("td", { text: language }),
      el("td", { text: deliveryText(item) }),
      el("td", { text: age(item.received_at), title: when(item.received_at) }),
      el("td", { class: "agent-label" }, correction
        ? el("span", { class: correction.agrees ? "agree" : "disagree", text: correction.label })
        : ""));
      body.append(row);
      fresh.add(item.id);
    }
    known = new Set([...known, ...fresh]);
    if (!data.items.length) {
      body.append(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "No ticket matches." })));
    }
    $("queue-count").textContent = `${data.total} ticket${data.total === 1 ? "" : "s"}, `
      + "most pressing first, then oldest first";
    renderAgreement(data.agreement);
  }

  function renderAgreement(agreement) {
    const node = $("agreement");
    if (!agreement || !agreement.tickets) {
      node.textContent = "No corrections yet: agreement with the model shows here.";
      return;
    }
    node.textContent = `Agents kept the model's priority on ${agreement.agreed} of the last `
      + `${agreement.tickets} corrected tickets (${percent(agreement.rate)}; window ${agreement.window}).`;
  }

  // --- live updates ----------------------------------------------------------------------

  function listen() {
    if (source) source.close();
    source = new EventSource("/agent/events");
    const live = $("live");
    live.hidden = false;
    source.addEventListener("ready", () => {
      live.textContent = "live";
      live.className = "live on";
    });
    source.addEventListener("change", (event) => {
      const change = JSON.parse(event.data);
      scheduleRefresh(150);
      // Not while the agent is choosing a label: the form would be rebuilt under their hands.
      const editing = document.activeElement && document.activeElement.closest("#correction-form");
      if (change.ticket_id === openId && !editing) openTicket(openId, true);
    });
    source.addEventListener("error", () => {
      live.textContent = "reconnecting…";
      live.className = "live off";
    });
  }

  // --- one ticket ------------------------------------------------------------------------

  async function openTicket(id, quiet) {
    const mine = ++ticketRequests;
    const { ok, data } = await api(`/agent/tickets/${encodeURIComponent(id)}`);
    if (!ok || mine !== ticketRequests) return;
    openId = id;
    for (const row of document.querySelectorAll("#queue-body tr")) {
      row.classList.toggle("open", row.dataset.ticketId === id);
    }
    if (!quiet) {
      const url = new URL(window.location.href);
      url.searchParams.set("ticket", id);
      history.replaceState(null, "", url);
    }
    renderTicket(data);
  }

  function section(title, ...children) {
    return el("section", { class: "card" }, el("h3", { text: title }), ...children);
  }

  function probabilities(probs, order) {
    const labels = order && order.length ? order.filter((l) => l in probs) : Object.keys(probs);
    return el("table", { class: "probs" }, el("tbody", {}, labels.map((label) =>
      el("tr", {}, el("th", { text: label }),
        el("td", {}, el("meter", { min: "0", max: "1", value: String(probs[label]) })),
        el("td", { class: "num", text: percent(probs[label]) })))));
  }

  function prediction(p, order) {
    return [
      el("p", { class: "prediction" }, badge(p.label), ` ${percent(p.confidence)} confidence, `,
        el("span", { class: `band band-${p.band}`, text: `${p.band} band` }),
        p.needs_review ? el("span", { class: "flag", text: "needs review" }) : null),
      probabilities(p.probabilities || {}, order),
    ];
  }

  function similarLink(id) {
    if (!config.similar_url) return null;
    return safeUrl(config.similar_url.replace("{id}", encodeURIComponent(id)));
  }

  function renderTicket(item) {
    const view = clear($("ticket-view"));
    const t = item.ticket;
    const e = item.enrichment;
    const requester = t.requester || {};
    view.append(el("h2", { class: "ticket-subject", text: t.subject || "(no subject)" }),
      el("p", { class: "muted" }, `Ticket ${item.id} · received ${when(item.received_at)}`,
        t.channel ? ` · ${t.channel}` : "",
        requester.name || requester.email
          ? ` · from ${[requester.name, requester.email].filter(Boolean).join(" ")}` : ""));

    view.append(correctionForm(item));

    const priority = e.priority || {};
    const explanation = (e.explanation || []).map((x) => x.rule
      ? el("li", {}, "rule ", el("span", { class: "term", text: x.rule }), `: \u201c${x.term}\u201d`)
      : el("li", {}, el("span", { class: "term", text: x.term }), ` +${Number(x.weight).toFixed(3)}`));
    const own = priority.model_prediction;
    view.append(section("Priority", ...prediction(priority, config.priority_order),
      own ? el("p", { class: "muted", text: `Set by rule ${(priority.rules || []).join(", ")}; `
        + `the model said ${own.label} (${Number(own.confidence).toFixed(2)}).` }) : null,
      explanation.length ? el("p", { class: "muted", text: "Terms that pushed it up the most:" }) : null,
      explanation.length ? el("ul", { class: "terms" }, explanation) : null));

    const others = [];
    for (const [name, p] of Object.entries(e.categories || {})) {
      others.push(el("h4", { text: name }), ...prediction(p, config.targets[name]));
    }
    if (e.resolution_time) {
      const r = e.resolution_time;
      others.push(el("h4", { text: "resolution time" }),
        el("p", { text: `about ${Math.round(r.hours)} h (50 %: ${Math.round(r.interval_50[0])}–`
          + `${Math.round(r.interval_50[1])} h; 90 %: ${Math.round(r.interval_90[0])}–`
          + `${Math.round(r.interval_90[1])} h)` }));
    }
    if (others.length) view.append(section("Other predictions", ...others));

    const facts = el("dl", { class: "facts" });
    if (e.sentiment) facts.append(el("dt", { text: "Sentiment" }),
      el("dd", { text: `${e.sentiment.band} (${Number(e.sentiment.score).toFixed(2)})` }));
    if (e.language) facts.append(el("dt", { text: "Language" }),
      el("dd", { text: `${e.language.code} (${percent(e.language.confidence)})` }));
    if (e.tags) facts.append(el("dt", { text: "Tags" }),
      el("dd", {}, e.tags.map((tag) => el("span", { class: "tag", text: tag }))));
    for (const [key, value] of Object.entries(t.custom_fields || {})) {
      facts.append(el("dt", { text: key }), el("dd", { text: value === null ? "" : String(value) }));
    }
    if (e.model) facts.append(el("dt", { text: "Model" }), el("dd", { text: e.model.version }));
    view.append(section("Details", facts));

    if (e.similar) {
      const rows = e.similar.map((s) => {
        const href = similarLink(s.id);
        return el("li", {}, href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: s.id })
          : el("code", { text: s.id }), " ", el("span", { text: s.subject }),
        el("span", { class: "muted",
          text: ["", `${percent(s.score)} similar`, s.priority, s.resolution, s.created]
            .filter((part) => part !== undefined && part !== null).join(" · ") }));
      });
      view.append(section("Similar closed tickets",
        e.possible_duplicate ? el("p", { class: "flag", text: "possible duplicate" }) : null,
        rows.length ? el("ol", { class: "similar" }, rows) : el("p", { class: "muted", text: "None." })));
    }

    const redactions = (e.redactions || []).map((r) =>
      el("li", { text: `${r.kind} in ${r.field}` + (r.start !== undefined ? ` at ${r.start}` : "") }));
    view.append(section("Text as stored (personal data redacted)",
      el("pre", { class: "ticket-text", text: t.description || "" }),
      redactions.length ? el("ul", { class: "muted" }, redactions) : null));

    view.append(section("Helpdesk delivery", deliveryView(item)));
  }

  function deliveryView(item) {
    if (!config.delivery) return el("p", { class: "muted", text: "Delivery to a helpdesk is off." });
    const d = item.delivery;
    if (!d) return el("p", { class: "muted", text: "Not enqueued." });
    const parts = [el("p", {}, el("span", { class: `status status-${d.status}`, text: d.status }),
      ` after ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`)];
    if (d.helpdesk) {
      const href = safeUrl(d.helpdesk.url);
      parts.push(el("p", {}, `${d.helpdesk.system} ticket `, href
        ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: d.helpdesk.id })
        : el("code", { text: d.helpdesk.id })));
    }
    if (d.last_error) parts.push(el("p", { class: "muted", text: `last error: ${d.last_error}` }));
    return el("div", {}, parts);
  }

  function correctionForm(item) {
    const targets = Object.keys(config.targets);
    const target = el("select", { id: "correction-target", name: "target" },
      targets.map((name) => el("option", { value: name, text: name })));
    const label = el("select", { id: "correction-label", name: "label" });
    const note = el("p", { id: "correction-note", class: "muted", role: "status" });
    const predictedFor = (name) => {
      const p = name === "priority" ? item.enrichment.priority
        : (item.enrichment.categories || {})[name];
      return p ? p.label : null;
    };
    const currentFor = (name) => {
      const c = (item.corrections || []).find((x) => x.target === name);
      return c ? c : null;
    };
    const fill = () => {
      const name = target.value;
      const order = name === "priority" ? config.priority_order : config.targets[name];
      clear(label);
      for (const value of order) label.append(el("option", { value, text: value }));
      const current = currentFor(name);
      label.value = current ? current.label : predictedFor(name) || order[0];
      note.textContent = current
        ? `${current.agent} set ${name} to ${current.label} (model: ${current.predicted}).`
        : `The model says ${predictedFor(name)}; keep it to confirm, or pick the right one.`;
    };
    target.addEventListener("change", fill);
    fill();
    const form = el("form", { class: "card correction", id: "correction-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const { ok, data } = await api(`/tickets/${encodeURIComponent(item.id)}/feedback`,
          { method: "POST", body: { target: target.value, label: label.value } });
        if (!ok) {
          note.textContent = data && data.error ? data.error.message : "Saving failed.";
          return;
        }
        note.textContent = `Saved: ${data.target} is ${data.label}`
          + (data.agrees ? " (agrees with the model)." : ` (model said ${data.predicted}).`);
        renderAgreement(data.agreement);
      } },
    el("h3", { text: "Correct the prediction" }),
    el("div", { class: "inline" }, el("label", {}, "Target ", target), el("label", {}, "Label ", label),
      el("button", { type: "submit", id: "correction-save", text: "Save label" })), note);
    return form;
  }

  document.addEventListener("DOMContentLoaded", start);
})();
