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
    dragged = {
      code: block.dataset.appointment,
      time: block.dataset.time,
      professional: block.dataset.professional,
      grabOffset: event.offsetY || 0,
    };
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", function (event) {
    const column = event.target.closest && event.target.closest(".agenda-column, .agenda-month-day");
    if (!column || !dragged) return;
    event.preventDefault();
    document.querySelectorAll(".drop-target").forEach((c) => c.classList.remove("drop-target"));
    column.classList.add("drop-target");
  });
  // The move is posted straight to the appointment's move form URL with every field (the
  // server decides; a refusal comes back as the panel with its reason). In the month view an
  // appointment dropped on another day keeps its time and professional.
  function moveTo(code, values) {
    htmx.ajax("POST", `/agenda/${code}/move/`, { target: "#agenda-panel", swap: "innerHTML", values: values });
  }
  document.addEventListener("drop", function (event) {
    const cell = event.target.closest && event.target.closest(".agenda-month-day");
    if (!cell || !dragged) return;
    event.preventDefault();
    cell.classList.remove("drop-target");
    const values = { date: cell.dataset.date, time: dragged.time, professional: dragged.professional };
    const code = dragged.code;
    dragged = null;
    moveTo(code, values);
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
    const values = { date: column.dataset.date, time: `${hh}:${mm}`, professional: dragged.professional };
    if (column.dataset.professional) values.professional = column.dataset.professional;
    const code = dragged.code;
    dragged = null;
    moveTo(code, values);
  });

  // A click on a free spot of a column opens the booking form at that time (15-minute grid).
  document.addEventListener("click", function (event) {
    const column = event.target.closest && event.target.closest(".agenda-column");
    if (!column || event.target.closest(".appt")) return;
    const box = column.getBoundingClientRect();
    const hours = Number(column.dataset.hours);
    const first = parseInt(column.dataset.firstHour, 10);
    let minutes = Math.floor((((event.clientY - box.top) / box.height) * hours * 60) / 15) * 15;
    minutes = Math.max(0, Math.min(minutes, hours * 60 - 15));
    const time = `${String(first + Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
    const params = new URLSearchParams({ date: column.dataset.date, time: time });
    if (column.dataset.professional) params.set("professional", column.dataset.professional);
    htmx.ajax("GET", `/agenda/new/?${params}`, { target: "#agenda-panel" });
  });

  // Voice notes: record in the browser when it can (MediaRecorder), else the file input stays.
  document.addEventListener("click", async function (event) {
    const button = event.target.closest && event.target.closest("[data-record]");
    if (!button || !navigator.mediaDevices || !window.MediaRecorder) return;
    const form = button.closest("form");
    if (button.recorder) {
      button.recorder.stop();
      return;
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = function () {
      stream.getTracks().forEach((t) => t.stop());
      const file = new File(chunks, "voice-note.webm", { type: recorder.mimeType || "audio/webm" });
      const transfer = new DataTransfer();
      transfer.items.add(file);
      form.querySelector("input[name=audio]").files = transfer.files;
      button.recorder = null;
      button.textContent = button.dataset.label;
      htmx.trigger(form, "submit");
    };
    button.dataset.label = button.textContent;
    button.textContent = "■";
    button.recorder = recorder;
    recorder.start();
  });
  document.addEventListener("htmx:load", function () {
    if (navigator.mediaDevices && window.MediaRecorder) {
      document.querySelectorAll("[data-record][hidden]").forEach((b) => (b.hidden = false));
    }
  });
})();
