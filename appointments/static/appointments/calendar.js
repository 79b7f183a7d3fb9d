// The staff calendar: refused forms (422) still show their errors in the side panel, and an
// appointment dragged to another time or column is moved with the same form the panel posts
// (the server decides; a refusal shows its reason in the panel).
(function () {
  "use strict";
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  let dragged = null;
  document.addEventListener("dragstart", function (event) {
    const block = event.target.closest && event.target.closest(".appt[data-appointment]");
    if (!block) return;
    dragged = { code: block.dataset.appointment, grabOffset: event.offsetY || 0 };
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", function (event) {
    const column = event.target.closest && event.target.closest(".agenda-column");
    if (!column || !dragged) return;
    event.preventDefault();
    document.querySelectorAll(".drop-target").forEach((c) => c.classList.remove("drop-target"));
    column.classList.add("drop-target");
  });
  document.addEventListener("drop", function (event) {
    const column = event.target.closest && event.target.closest(".agenda-column");
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    const box = column.getBoundingClientRect();
    const hours = Number(column.dataset.hours);
    const first = parseInt(column.dataset.firstHour, 10);
    const y = event.clientY - box.top - dragged.grabOffset;
    let minutes = Math.round(((y / box.height) * hours * 60) / 15) * 15;
    minutes = Math.max(0, Math.min(minutes, hours * 60 - 15));
    const hh = String(first + Math.floor(minutes / 60)).padStart(2, "0");
    const mm = String(minutes % 60).padStart(2, "0");
    const values = { date: column.dataset.date, time: `${hh}:${mm}` };
    if (column.dataset.professional) values.professional = column.dataset.professional;
    const code = dragged.code;
    dragged = null;
    htmx.ajax("GET", `/agenda/${code}/`, { target: "#agenda-panel" }).then(function () {
      const form = document.querySelector("#appointment-detail form[hx-post$='/move/']");
      if (!form) return;
      for (const [name, value] of Object.entries(values)) {
        const input = form.querySelector(`[name="${name}"]`);
        if (input) input.value = value;
      }
      htmx.trigger(form, "submit");
    });
  });
})();
