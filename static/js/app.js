// Small progressive enhancements for the shell; every page works without them.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-nav-toggle]");
    const shell = document.querySelector(".shell");
    if (toggle && shell) {
      const open = shell.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", String(open));
    } else if (shell && shell.classList.contains("nav-open") && !event.target.closest(".sidebar")) {
      shell.classList.remove("nav-open");
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelector(".shell")?.classList.remove("nav-open");
      document.querySelectorAll("details.menu[open]").forEach((d) => d.removeAttribute("open"));
    }
  });
  // Notification preferences live in this browser (localStorage); asking for the browser's
  // permission needs a click, which this is.
  function showToggles() {
    document.querySelectorAll("[data-notify-toggle]").forEach(function (button) {
      const on = localStorage.getItem(button.dataset.notifyToggle) === "on";
      button.setAttribute("aria-pressed", String(on));
      const state = button.querySelector("[data-state]");
      state.textContent = on ? state.dataset.on : state.dataset.off;
    });
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-notify-toggle]");
    if (!button) return;
    const key = button.dataset.notifyToggle;
    const on = localStorage.getItem(key) !== "on";
    localStorage.setItem(key, on ? "on" : "off");
    if (on && key === "porfin-notify" && "Notification" in window) Notification.requestPermission();
    showToggles();
  });
  document.addEventListener("DOMContentLoaded", showToggles);
  // In-app notifications (a mention, a chat dealt to you, a handoff) pushed to this member's
  // pages: into the bell menu, with a count, and to the browser when allowed.
  document.addEventListener("live:notification", function (event) {
    const data = event.detail;
    const panel = document.getElementById("notifications-panel");
    if (!panel) return;
    const item = document.createElement("a");
    item.className = "menu-item notification";
    item.href = data.url || (data.chat ? `/inbox/${data.chat}/` : "#");
    item.textContent = data.text;
    panel.prepend(item);
    panel.querySelector(".no-notifications")?.setAttribute("hidden", "");
    const count = document.querySelector("[data-notification-count]");
    if (count) { count.textContent = String(Number(count.textContent || 0) + 1); count.hidden = false; }
    document.querySelector(".notifications-button")?.classList.add("has-new");
    if (localStorage.getItem("porfin-notify") === "on" && "Notification" in window
        && Notification.permission === "granted") {
      new Notification("Porfin", { body: data.text, tag: `note-${data.id || data.chat}` });
    }
  });
  if ("serviceWorker" in navigator && location.protocol !== "file:") {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () { /* optional */ });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });
  // Fields that matter only for some choices: data-show-when="field=value1|value2" shows the
  // element while the form's field has one of the values (a checkbox counts as "on"/"off").
  // Hidden fields keep their values; the server ignores what the choice makes irrelevant.
  function fieldValue(form, name) {
    const controls = form.querySelectorAll(`[name="${CSS.escape(name)}"]`);
    for (const control of controls) {
      if (control.type === "checkbox") return control.checked ? "on" : "off";
      if (control.type === "radio") { if (control.checked) return control.value; continue; }
      return control.value;
    }
    return "";
  }
  function applyShowWhen(root) {
    (root || document).querySelectorAll("[data-show-when]").forEach(function (element) {
      const form = element.closest("form");
      if (!form) return;
      const [name, values] = element.dataset.showWhen.split("=");
      element.hidden = !values.split("|").includes(fieldValue(form, name));
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) applyShowWhen(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", function () { applyShowWhen(document); });
  document.addEventListener("htmx:afterSwap", function (event) { applyShowWhen(event.detail.target.closest("form") || document); });
})();
