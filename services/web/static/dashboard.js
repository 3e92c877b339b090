// The compliance dashboard's actions: each form posts its fields as JSON with the page's CSRF
// token (common.js), then the page reloads to show the new state; a refusal is shown in #status.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  for (const form of document.querySelectorAll("form.action")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = event.submitter || form.querySelector("button");
      const body = {};
      for (const [name, value] of new FormData(form)) {
        if (name === "release") body.release = value === "yes";
        else if (value.trim()) body[name] = value.trim();
      }
      if (button.dataset.action === "rollback") delete body.override_reason;
      status.textContent = "Working…";
      status.className = "";
      try {
        const reply = await window.clinrlhf.post(button.dataset.url || form.dataset.url, body);
        sessionStorage.setItem("clinrlhf-done", reply.done || "done");
        window.location.reload();
      } catch (error) {
        status.textContent = error.message;
        status.className = "fail";
      }
    });
  }
  const done = sessionStorage.getItem("clinrlhf-done");
  if (done) {
    status.textContent = done;
    status.className = "pass";
    sessionStorage.removeItem("clinrlhf-done");
  }
});
