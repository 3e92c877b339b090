// Shared by every page under /review: JSON POSTs that carry the page's CSRF token, and the
// log-out button of the pages that have one.
"use strict";

window.clinrlhf = {
  csrf() {
    return document.querySelector('meta[name="csrf-token"]').content;
  },

  // POST `body` as JSON; resolves to the parsed reply, or throws an Error carrying the
  // OperationOutcome's diagnostics.
  async post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf() },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const reply = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const issue = (reply.issue || [])[0] || {};
      throw new Error(issue.diagnostics || `request failed (${response.status})`);
    }
    return reply;
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (!logout) return; // the login page
  logout.addEventListener("click", async () => {
    await window.clinrlhf.post(logout.dataset.url, {}).catch(() => null);
    window.location.assign(logout.dataset.next);
  });
});
