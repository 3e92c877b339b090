// The review form, driven by keyboard as well as mouse.
//   1 / 2        A / B is better        t            equally good
//   a then 1-5   rate A                 b then 1-5   rate B
//   c            comment box (Esc leaves it, Ctrl+Enter acts as Enter)
//   Enter        says what will be submitted; Enter again submits and the next case loads,
//                Esc (or any other key) takes it back. A stray Enter never stores a review.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("review");
  if (!form) return; // the queue is empty
  const status = document.getElementById("status");
  let rating = null; // "a" or "b" after that key: the next digit rates that suggestion
  let busy = false;
  let armed = false; // Enter was pressed once: the next Enter submits

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

  function empty(body) {
    return !body.choice && !body.rating_a && !body.rating_b && !body.correction;
  }

  const EMPTY = "Choose (1, 2 or t), rate (a or b, then 1-5) or correct before submitting.";

  // "B is better; A rated 4; B rated 5; instead: labetalol; with a comment"
  function summary(body) {
    const parts = [];
    if (body.choice) parts.push(body.choice === "tie" ? "equally good" : `${body.choice.toUpperCase()} is better`);
    if (body.rating_a) parts.push(`A rated ${body.rating_a}`);
    if (body.rating_b) parts.push(`B rated ${body.rating_b}`);
    if (body.correction) parts.push(`instead: ${form.correction.selectedOptions[0].textContent}`);
    if (body.comment) parts.push("with a comment");
    return parts.join("; ");
  }

  function disarm(message) {
    if (!armed) return;
    armed = false;
    status.textContent = message;
  }

  // The first Enter only says what would be stored; the second stores it.
  function enter() {
    const body = review();
    if (empty(body)) {
      status.textContent = EMPTY;
      return;
    }
    if (!armed) {
      armed = true;
      status.textContent = `Submit: ${summary(body)}? Enter again to submit, Esc to change.`;
      return;
    }
    armed = false;
    form.requestSubmit();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = review();
    if (empty(body)) {
      status.textContent = EMPTY;
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

  // A change made with the mouse after the first Enter must be seen before it is stored.
  form.addEventListener("input", () => disarm("Not submitted: the review changed. Press Enter to check it."));

  const keys = {
    1: () => check("choice", "a"),
    2: () => check("choice", "b"),
    t: () => check("choice", "tie"),
    a: () => { rating = "a"; status.textContent = "Rate A: press 1-5"; },
    b: () => { rating = "b"; status.textContent = "Rate B: press 1-5"; },
    c: () => form.comment.focus(),
    Enter: enter,
  };

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("textarea, select, input[type=text], input[type=password]");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        enter();
      } else disarm("Not submitted.");
      return;
    }
    if (event.key === "Escape") {
      disarm("Not submitted. Change anything, then press Enter.");
      return;
    }
    if (event.key !== "Enter") disarm("Not submitted.");
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
