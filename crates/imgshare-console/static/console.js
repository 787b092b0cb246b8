// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The region selector applies at once; the Show button stays for keyboard and no-JS use.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // "Decide later": hides the notification for this view; it comes back on the next load.
  document.querySelectorAll("button[data-close]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-close"));
      if (target) { target.hidden = true; }
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    });
  });
  // Destructive actions ask first.
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  // Escape closes an open gear menu and gives focus back to its summary.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.gear[open]").forEach(function (menu) {
      menu.open = false;
      var summary = menu.querySelector("summary");
      if (summary) { summary.focus(); }
    });
  });
});
// A running task's page reloads itself until the task has finished.
document.addEventListener("DOMContentLoaded", function () {
  var running = document.querySelector("[data-refresh]");
  if (running) {
    var seconds = parseInt(running.getAttribute("data-refresh"), 10) || 2;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
});
