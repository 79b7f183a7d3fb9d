// One websocket per tab (/ws/live/), reconnecting with backoff. Each server event is re-dispatched
// on document as a "live:<type>" CustomEvent, so page scripts and htmx triggers can react to it.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  let socket = null;
  let attempt = 0;

  function setState(state) {
    if (status) status.dataset.state = state;
    document.documentElement.dataset.live = state;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
    socket.addEventListener("open", function () {
      attempt = 0;
      setState("open");
      document.dispatchEvent(new CustomEvent("live:open"));
    });
    socket.addEventListener("message", function (message) {
      let data;
      try { data = JSON.parse(message.data); } catch (error) { return; }
      // Under load the server coalesces a burst of events into one frame: a JSON array, in order.
      for (const event of Array.isArray(data) ? data : [data]) {
        window.PorfinLive.received += 1;
        window.PorfinLive.recent.push(event);
        if (window.PorfinLive.recent.length > 200) window.PorfinLive.recent.shift();
        document.dispatchEvent(new CustomEvent("live:" + event.type, { detail: event }));
      }
    });
    socket.addEventListener("close", function (event) {
      setState("closed");
      if (event.code === 4401) return; // signed out: do not retry
      // Membership removed or role changed: the page was drawn for the old access; reload it
      // (the server answers with what the member may see now, and a new socket follows).
      if (event.code === 4403) { location.reload(); return; }
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  window.PorfinLive = {
    received: 0, // events received by this tab (observability, used by browser tests)
    recent: [], // the last 200 of them
    send: (data) => socket && socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(data)),
  };
  if (document.body.dataset.live === "on") connect();
})();
