// The customer's ticket form. The browser checks the same rules as the server, with the same
// messages (`validate` mirrors core/schema.py), and shows the server's verdict the same way.
"use strict";

const TicketForm = (() => {
  const { el, api, clear } = Page;
  // Python's pattern in core/schema.py.
  const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
  const LABELS = {
    subject: "Subject",
    description: "Description",
    "requester.email": "E-mail",
    "requester.name": "Name",
    ticket: "The ticket",
  };
  let config = {
    custom_fields: [],
    limits: { subject_bytes: 1024, description_bytes: 65536, ticket_bytes: 262144,
      email_chars: 254, name_chars: 256 },
  };

  const bytes = (text) => new TextEncoder().encode(text).length;
  const chars = (text) => [...text].length;

  // The ticket JSON the form sends: empty fields left out, as the schema's defaults.
  function build(values) {
    const ticket = {};
    if (values.subject) ticket.subject = values.subject;
    if (values.description) ticket.description = values.description;
    const requester = {};
    if ((values.email || "").trim()) requester.email = values.email;
    if ((values.name || "").trim()) requester.name = values.name;
    if (Object.keys(requester).length) ticket.requester = requester;
    const custom = {};
    for (const [key, value] of Object.entries(values.custom_fields || {})) {
      if ((value || "").trim()) custom[key] = value.trim();
    }
    if (Object.keys(custom).length) ticket.custom_fields = custom;
    return ticket;
  }

  // The problems the server would report for this ticket, in the order it reports them.
  function validate(ticket) {
    const limits = config.limits;
    if (bytes(JSON.stringify(ticket)) > limits.ticket_bytes) {
      return [{ field: "ticket", message: `is over the ${limits.ticket_bytes}-byte limit` }];
    }
    const tooLarge = [];
    for (const [field, limit] of [["subject", limits.subject_bytes],
      ["description", limits.description_bytes]]) {
      const value = ticket[field];
      if (typeof value === "string" && bytes(value) > limit) {
        tooLarge.push({ field, message: `is longer than ${limit} bytes` });
      }
    }
    if (tooLarge.length) return tooLarge;
    const problems = [];
    const requester = ticket.requester || {};
    if (requester.email !== undefined) {
      const email = requester.email.trim();
      if (chars(email) > limits.email_chars) {
        problems.push({ field: "requester.email",
          message: `String should have at most ${limits.email_chars} characters` });
      } else if (!EMAIL.test(email)) {
        problems.push({ field: "requester.email", message: "is not an e-mail address" });
      }
    }
    if (requester.name !== undefined && chars(requester.name.trim()) > limits.name_chars) {
      problems.push({ field: "requester.name",
        message: `String should have at most ${limits.name_chars} characters` });
    }
    if (problems.length) return problems;
    if (!(ticket.subject || "").trim() && !(ticket.description || "").trim()) {
      return [{ field: "ticket", message: "a ticket needs a non-empty subject or description" }];
    }
    return [];
  }

  function label(field) {
    if (LABELS[field]) return LABELS[field];
    if (field.startsWith("custom_fields.")) return field.slice("custom_fields.".length);
    return field;
  }

  // One wording for the browser's and the server's problems alike.
  function say(problem) {
    const message = problem.message;
    if (!problem.field) return `${message[0].toUpperCase()}${message.slice(1)}.`;
    if (problem.field === "ticket" && /^a /.test(message)) {
      return `${message[0].toUpperCase()}${message.slice(1)}.`;
    }
    return /^[a-z]/.test(message) ? `${label(problem.field)} ${message}.` : `${message}.`;
  }

  function slot(field) {
    const id = { subject: "subject", description: "description", "requester.email": "email",
      "requester.name": "name" }[field];
    if (id) return document.getElementById(`${id}-problem`);
    if (field.startsWith("custom_fields.")) {
      return document.getElementById(`cf-${field.slice(14)}-problem`);
    }
    return null;
  }

  function show(problems) {
    for (const node of document.querySelectorAll(".field-problem, .problem-summary")) {
      node.hidden = true;
      clear(node);
    }
    for (const input of document.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
    const summary = document.getElementById("form-problem");
    for (const problem of problems) {
      const target = slot(problem.field) || summary;
      target.append(el("span", { text: say(problem) }), " ");
      target.hidden = false;
      const input = target.parentElement && target.parentElement.querySelector("input, textarea");
      if (input && target !== summary) input.setAttribute("aria-invalid", "true");
    }
    const first = document.querySelector("[aria-invalid]");
    if (first) first.focus();
  }

  function values() {
    const custom = {};
    for (const name of config.custom_fields) {
      custom[name] = document.getElementById(`cf-${name}`).value;
    }
    return {
      subject: document.getElementById("subject").value,
      description: document.getElementById("description").value,
      email: document.getElementById("email").value,
      name: document.getElementById("name").value,
      custom_fields: custom,
    };
  }

  function addCustomFields() {
    const holder = clear(document.getElementById("custom-fields"));
    for (const name of config.custom_fields) {
      const id = `cf-${name}`;
      holder.append(el("div", { class: "field" },
        el("label", { for: id, class: "custom", text: name.replace(/[_-]+/g, " ") }),
        el("input", { id, name: id, autocomplete: "off" }),
        el("p", { class: "field-problem", id: `${id}-problem`, role: "alert", hidden: true })));
    }
  }

  async function submit(event) {
    event.preventDefault();
    const ticket = build(values());
    const problems = validate(ticket);
    show(problems);
    if (problems.length) return;
    await send(ticket);
  }

  // Sends without the browser's checks too, so that a test can compare both verdicts.
  async function send(ticket) {
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const { ok, data, status } = await api("/customer/tickets", { method: "POST", body: ticket });
      if (ok) {
        confirm(data);
        return [];
      }
      const error = (data && data.error) || {};
      let problems = error.problems && error.problems.length ? error.problems : null;
      // An answer about the request rather than a field (429: too many tickets from this
      // address, and when to try again) is shown in the server's words.
      if (!problems && error.message) problems = [{ field: "", message: error.message }];
      if (!problems) {
        problems = [{ field: "ticket",
          message: `could not be sent (error ${status}); please try again` }];
      }
      show(problems);
      return problems;
    } catch (_) {
      show([{ field: "ticket", message: "could not be sent; check your connection and try again" }]);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  function confirm(data) {
    document.getElementById("ticket-form").hidden = true;
    const box = document.getElementById("confirmation");
    document.getElementById("confirmation-id").textContent = data.id;
    const link = document.getElementById("status-link");
    const url = new URL(data.status_url, window.location.origin);
    link.href = url.href;
    link.textContent = url.href;
    box.hidden = false;
    box.querySelector("h2").focus();
  }

  async function start() {
    const { ok, data } = await api("/customer/form");
    if (ok) config = data;
    addCustomFields();
    document.getElementById("ticket-form").addEventListener("submit", submit);
    document.getElementById("another").addEventListener("click", () => {
      document.getElementById("ticket-form").reset();
      document.getElementById("confirmation").hidden = true;
      document.getElementById("ticket-form").hidden = false;
      document.getElementById("subject").focus();
    });
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
  return { build, validate, send, say };
})();
