// A customer's own ticket: the id is in the path, the private token in the fragment (never sent
// to the server by the browser on its own); the page sends it in a header.
"use strict";

(() => {
  const { api, when } = Page;
  const STATES = {
    received: "Received: it is in our queue.",
    with_support: "With our support team.",
  };

  async function load() {
    const id = decodeURIComponent(window.location.pathname.split("/").pop());
    const token = window.location.hash.slice(1);
    const message = document.getElementById("status-message");
    const { ok, data } = await api(`/customer/tickets/${encodeURIComponent(id)}`,
      { headers: { "X-Status-Token": token } });
    if (!ok) {
      message.textContent = "We cannot find this ticket. Check that you opened the whole link.";
      document.body.dataset.ready = "true";
      return;
    }
    message.hidden = true;
    document.getElementById("status-id").textContent = data.id;
    document.getElementById("status-received").textContent = when(data.received_at);
    document.getElementById("status-state").textContent = STATES[data.status] || data.status;
    document.getElementById("status-subject").textContent = data.subject;
    document.getElementById("status-description").textContent = data.description;
    document.getElementById("status-details").hidden = false;
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", load);
})();
