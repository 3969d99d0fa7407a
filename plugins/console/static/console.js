// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The team switcher submits itself when a team is picked.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // Destructive forms ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // A transcript turn's time plays the recording from there.
  const audio = document.querySelector("audio");
  for (const button of document.querySelectorAll("button[data-seek]")) {
    if (!audio) { button.hidden = true; continue; }
    button.addEventListener("click", () => {
      audio.currentTime = Number(button.dataset.seek) || 0;
      audio.play().catch(() => {});
    });
  }
});
