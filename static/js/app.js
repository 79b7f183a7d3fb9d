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
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });
})();
