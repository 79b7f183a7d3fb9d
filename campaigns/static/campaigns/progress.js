// Live campaign progress: live.js re-dispatches each websocket event as "live:<type>" on document.
// Every element inside [data-campaign="<code>"] with data-field="<counter>" is updated in place.
(function () {
  "use strict";
  document.addEventListener("live:campaign.progress", function (event) {
    const data = event.detail || {};
    document.querySelectorAll('[data-campaign="' + data.campaign + '"]').forEach(function (root) {
      root.querySelectorAll("[data-field]").forEach(function (element) {
        const key = element.dataset.field;
        if (!(key in data)) return;
        if (element.tagName === "PROGRESS") element.value = data[key];
        else if (key === "status") element.textContent = data.status_label;
        else element.textContent = data[key];
      });
    });
  });
})();
