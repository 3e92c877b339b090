// The login form: exchange a bearer token for the page's session cookie.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  const status = document.getElementById("status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Checking…";
    try {
      const reply = await window.clinrlhf.post(form.dataset.url, { token: form.token.value.trim() });
      window.location.assign(reply.next);
    } catch (error) {
      status.textContent = error.message;
    }
  });
});
