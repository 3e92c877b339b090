// The review form, driven by keyboard as well as mouse.
//   1 / 2        A / B is better        t            equally good
//   a then 1-5   rate A                 b then 1-5   rate B
//   c            comment box (Esc leaves it, Ctrl+Enter submits)
//   Enter        submit; the next case loads
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("review");
  if (!form) return; // the queue is empty
  const status = document.getElementById("status");
  let rating = null; // "a" or "b" after that key: the next digit rates that suggestion
  let busy = false;

  function check(name, value) {
    const input = form.querySelector(`input[name="${name}"][value="${value}"]`);
    if (input) input.checked = true;
  }

  function picked(name) {
    const input = form.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : null;
  }

  function review() {
    const number = (name) => (picked(name) ? Number(picked(name)) : null);
    return {
      card: form.dataset.card,
      suggestion_a: form.dataset.a,
      suggestion_b: form.dataset.b,
      choice: picked("choice"),
      rating_a: number("rating_a"),
      rating_b: number("rating_b"),
      correction: form.correction.value || null,
      comment: form.comment.value || null,
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = review();
    if (!body.choice && !body.rating_a && !body.rating_b && !body.correction) {
      status.textContent = "Choose (1, 2 or t), rate (a or b, then 1-5) or correct before submitting.";
      return;
    }
    busy = true;
    status.textContent = "Saving…";
    try {
      await window.clinrlhf.post(form.dataset.url, body);
      status.textContent = "Saved. Loading the next case…";
      window.location.reload();
    } catch (error) {
      status.textContent = error.message;
      busy = false;
    }
  });

  const keys = {
    1: () => check("choice", "a"),
    2: () => check("choice", "b"),
    t: () => check("choice", "tie"),
    a: () => { rating = "a"; status.textContent = "Rate A: press 1-5"; },
    b: () => { rating = "b"; status.textContent = "Rate B: press 1-5"; },
    c: () => form.comment.focus(),
    Enter: () => form.requestSubmit(),
  };

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("textarea, select, input[type=text], input[type=password]");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (rating && /^[1-5]$/.test(event.key)) {
      check(`rating_${rating}`, event.key);
      status.textContent = `${rating.toUpperCase()} rated ${event.key}`;
      rating = null;
      event.preventDefault();
      return;
    }
    rating = null;
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault(); // Enter on a focused radio would otherwise submit a second time
    action();
  });
});
