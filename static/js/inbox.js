// The live inbox: applies websocket events (see live.js) to the chat list and the open chat,
// resyncs on sequence gaps and reconnects, and drives the composer. Every change is fetched as
// the same server-rendered partial the page uses, so permissions are checked on each fetch.
(function () {
  "use strict";

  // 4xx answers (a refused send, a closed window) are shown in the chat's alert area.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false, target: "#chat-alert" },
    { code: "...", swap: false, error: true },
  ];

  const $ = (selector, root = document) => root.querySelector(selector);
  const pane = () => $("#chat-pane[data-chat]");
  const currentChat = () => pane()?.dataset.chat || null;
  let lastSeq = null;
  let countsTimer = null;
  const listRefresh = new Map();

  function resetSeq() {
    const p = pane();
    lastSeq = p ? Number(p.dataset.seq || 0) : null;
  }

  async function fetchHtml(url) {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (!response.ok) return null;
    return { html: await response.text(), response };
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }

  // --- Chat list ------------------------------------------------------------------------------
  function scheduleCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(() => htmx.trigger(document.body, "refresh-counts"), 400);
  }

  function refreshListItem(chat, moveToTop) {
    // Coalesce bursts (a campaign's statuses): at most one fetch per chat in flight. A new
    // message anywhere in the burst still brings the chat to the top (a new customer's first
    // message can come right after its chat's "AI turned on").
    if (listRefresh.has(chat)) {
      if (moveToTop) listRefresh.set(chat, true);
      return;
    }
    listRefresh.set(chat, moveToTop);
    setTimeout(async () => {
      moveToTop = listRefresh.get(chat);
      listRefresh.delete(chat);
      const list = $("#chat-items");
      if (!list) return;
      const existing = document.getElementById("chat-" + chat);
      if (!existing && !moveToTop) return;
      const result = await fetchHtml(`/inbox/${chat}/item/`);
      if (!result) { existing?.remove(); return; }
      const node = fragment(result.html).firstElementChild;
      if (!node) return;
      if (pane()?.dataset.chat === chat) node.querySelector(".chat-item")?.setAttribute("aria-current", "page");
      if (moveToTop) {
        existing?.remove();
        list.prepend(node);
        $(".empty", list)?.remove();
      } else {
        existing.replaceWith(node);
      }
      htmx.process(node);
    }, 150);
  }

  // --- Open chat ------------------------------------------------------------------------------
  async function upsertEntry(chat, message) {
    const result = await fetchHtml(`/inbox/${chat}/messages/${message}/`);
    if (!result || currentChat() !== chat) return;
    const node = fragment(result.html).firstElementChild;
    const existing = document.getElementById("msg-" + message);
    if (existing) existing.replaceWith(node);
    else appendEntry(node);
  }

  function appendEntry(node) {
    const thread = $("#thread");
    if (!thread || !node) return;
    const nearBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 120;
    thread.append(node);
    decorate(node);
    if (nearBottom) thread.scrollTop = thread.scrollHeight;
  }

  async function catchUp() {
    // After a gap or a reconnect: re-render the open chat and the list from the server.
    const chat = currentChat();
    if (chat) {
      await htmx.ajax("GET", `/inbox/${chat}/`, { target: "#chat-pane", swap: "outerHTML" });
      resetSeq();
    }
    const query = $("#inbox")?.dataset.query || "";
    if ($("#chat-list")) htmx.ajax("GET", `/inbox/?${query}`, { target: "#chat-list", swap: "outerHTML" });
  }

  function onChatEvent(data) {
    const moveToTop = data.type === "message.new";
    refreshListItem(data.chat, moveToTop);
    scheduleCounts();
    if (data.chat !== currentChat()) return;
    if (lastSeq !== null && data.seq > lastSeq + 1) {
      catchUp();
      return;
    }
    if (lastSeq === null || data.seq > lastSeq) lastSeq = data.seq;
    if (data.message) upsertEntry(data.chat, data.message);
    if (data.type === "chat.changed" && data.change !== "read") {
      htmx.ajax("GET", `/inbox/${data.chat}/`, { target: "#chat-header", select: "#chat-header", swap: "outerHTML" });
    }
  }

  ["message.new", "message.status", "message.changed", "chat.changed"].forEach((type) =>
    document.addEventListener("live:" + type, (event) => onChatEvent(event.detail)));
  document.addEventListener("live:chat.removed", (event) => {
    document.getElementById("chat-" + event.detail.chat)?.remove();
    scheduleCounts();
  });
  let connectedBefore = false;
  document.addEventListener("live:open", () => {
    if (connectedBefore) catchUp();
    connectedBefore = true;
    announce("viewing");
  });

  // --- Presence -------------------------------------------------------------------------------
  const presence = new Map();
  function announce(state) {
    const chat = currentChat();
    if (chat && window.PorfinLive) window.PorfinLive.send({ type: "presence", chat, state });
  }
  document.addEventListener("live:presence", (event) => {
    const data = event.detail;
    if (data.chat !== currentChat() || String(data.user) === document.body.dataset.user) return;
    presence.set(data.name, { state: data.state, at: Date.now() });
    renderPresence();
  });
  function renderPresence() {
    const el = $("#presence");
    if (!el) return;
    const now = Date.now();
    const parts = [];
    for (const [name, info] of presence) {
      if (info.state === "left" || now - info.at > 15000) { presence.delete(name); continue; }
      parts.push(info.state === "typing" ? `${name} ✎` : `${name} 👁`);
    }
    el.textContent = parts.join(" · ");
  }
  setInterval(renderPresence, 5000);
  setInterval(() => announce("viewing"), 10000);
  let typingSent = 0;

  // --- Notifications --------------------------------------------------------------------------
  document.addEventListener("live:message.new", (event) => {
    const data = event.detail;
    if (!document.hidden && data.chat === currentChat()) return;
    if (localStorage.getItem("porfin-notify") !== "on") return;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("Porfin", { body: document.documentElement.lang.startsWith("pt") ? "Nova mensagem" : "New message", tag: data.chat });
    }
    if (localStorage.getItem("porfin-sound") === "on") beep();
  });
  document.addEventListener("live:notification", (event) => {
    const panel = $("#notifications-panel");
    if (!panel) return;
    const item = document.createElement("a");
    item.className = "menu-item";
    item.href = `/inbox/${event.detail.chat}/`;
    item.textContent = event.detail.text;
    panel.prepend(item);
    document.querySelector(".notifications-button")?.classList.add("has-new");
    // A chat handed over by the assistant needs someone now: tell the browser too.
    if (event.detail.handoff && localStorage.getItem("porfin-notify") === "on"
        && "Notification" in window && Notification.permission === "granted") {
      new Notification("Porfin", { body: event.detail.text, tag: `handoff-${event.detail.chat}` });
      if (localStorage.getItem("porfin-sound") === "on") beep();
    }
  });
  function beep() {
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.12);
    } catch (error) { /* audio not allowed yet */ }
  }

  // --- Composer -------------------------------------------------------------------------------
  document.addEventListener("keydown", (event) => {
    const text = event.target.closest("#composer-text");
    if (!text) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (text.value.trim() || text.form.querySelector("input[type=file]").files.length) htmx.trigger(text.form, "submit");
    }
  });
  document.addEventListener("input", (event) => {
    const text = event.target.closest("#composer-text");
    if (!text) return;
    const match = text.value.match(/(^|\s)\/([\w-]+)$/);
    if (match) {
      const reply = document.querySelector(`template[data-quick-reply="${CSS.escape(match[2])}"]`);
      if (reply) text.value = text.value.slice(0, text.value.length - match[2].length - 1) + reply.innerHTML.replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
    }
    if (Date.now() - typingSent > 3000) { typingSent = Date.now(); announce("typing"); }
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("#composer input[type=file]")) {
      const name = event.target.files[0]?.name || "";
      $("#composer .attachment-name").textContent = name;
    }
    if (event.target.matches("#template-select")) renderTemplateFields();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt.closest?.(".composer-form");
    if (form && event.detail.successful && event.detail.xhr.status < 300) {
      form.reset();
      $(".attachment-name", form) && ($(".attachment-name", form).textContent = "");
      cancelReply();
      $("#chat-alert").textContent = "";
      const thread = $("#thread");
      if (thread) thread.scrollTop = thread.scrollHeight;
    }
  });
  document.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-composer-tab]");
    if (tab) {
      const name = tab.dataset.composerTab;
      document.querySelectorAll("[data-composer-tab]").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
      document.querySelectorAll("[data-composer-panel]").forEach((panel) => {
        panel.hidden = !(panel.dataset.composerPanel === name || (name === "reply" && panel.dataset.composerPanel === "reply-closed"));
      });
      return;
    }
    const action = event.target.closest("[data-msg-action]");
    if (action) {
      const entry = action.closest("[data-message]");
      if (action.dataset.msgAction === "reply") startReply(entry);
      else react(entry, action.dataset.emoji);
      return;
    }
    if (event.target.closest("[data-cancel-reply]")) cancelReply();
  });

  function startReply(entry) {
    const form = $(".composer-form[data-composer-panel=reply]");
    if (!form || !entry) return;
    form.querySelector("input[name=reply_to]").value = entry.dataset.message;
    const banner = $(".replying", form);
    banner.hidden = false;
    banner.querySelector("span").textContent = (entry.querySelector(".msg-text")?.textContent || "").slice(0, 80);
    $("#composer-text").focus();
  }
  function cancelReply() {
    const form = $(".composer-form[data-composer-panel=reply]");
    if (!form) return;
    form.querySelector("input[name=reply_to]").value = "";
    $(".replying", form).hidden = true;
  }
  function react(entry, emoji) {
    const chat = currentChat();
    if (!chat || !entry) return;
    htmx.ajax("POST", `/inbox/${chat}/react/`, {
      target: "#msg-" + entry.dataset.message, swap: "outerHTML",
      values: { message: entry.dataset.message, emoji },
    });
  }

  // Reply and react buttons on every customer or team message.
  const EMOJI = ["👍", "❤️", "😂", "🙏"];
  function decorate(root) {
    (root.matches?.("[data-message]") ? [root] : root.querySelectorAll?.("[data-message]") || []).forEach((entry) => {
      const inbound = entry.classList.contains("msg-in");
      if (entry.querySelector(".msg-actions") || !(inbound || entry.classList.contains("msg-out"))) return;
      const bar = document.createElement("span");
      bar.className = "msg-actions";
      const reply = document.createElement("button");
      reply.type = "button";
      reply.dataset.msgAction = "reply";
      reply.textContent = "↩";
      reply.setAttribute("aria-label", document.documentElement.lang.startsWith("pt") ? "Responder" : "Reply");
      bar.append(reply);
      if (inbound) {
        EMOJI.forEach((emoji) => {
          const button = document.createElement("button");
          button.type = "button";
          button.dataset.msgAction = "react";
          button.dataset.emoji = emoji;
          button.textContent = emoji;
          button.setAttribute("aria-label", emoji);
          bar.append(button);
        });
      }
      entry.append(bar);
    });
  }

  // --- Template picker: one field per body parameter, with a live preview --------------------
  function renderTemplateFields() {
    const select = $("#template-select");
    const holder = $(".template-params");
    const preview = $(".template-preview");
    if (!select || !holder) return;
    holder.innerHTML = "";
    const data = JSON.parse($("#template-components")?.textContent || "{}");
    const components = data[select.value] || [];
    const body = (components.find((c) => (c.type || "").toUpperCase() === "BODY") || {}).text || "";
    const names = [...new Set([...body.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]))];
    names.forEach((name, index) => {
      const label = document.createElement("label");
      label.textContent = `{{${name}}}`;
      const input = document.createElement("input");
      input.type = "text";
      input.name = "param";
      input.required = true;
      input.id = "param-" + index;
      label.htmlFor = input.id;
      input.addEventListener("input", update);
      holder.append(label, input);
    });
    function update() {
      const values = [...holder.querySelectorAll("input")].map((i) => i.value || "…");
      preview.textContent = names.reduce((text, name, i) => text.split(`{{${name}}}`).join(values[i]), body);
    }
    update();
  }

  // --- Contact drawer (narrow screens) and the live 24 h window ---------------------------------
  function setDrawer(open) {
    const inbox = $("#inbox");
    if (!inbox) return;
    inbox.classList.toggle("drawer-open", open);
    document.querySelectorAll("[data-drawer-toggle]").forEach((b) => b.setAttribute("aria-expanded", String(open)));
    if (open) $("#contact-panel summary, #contact-panel input")?.focus({ preventScroll: true });
  }
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-drawer-toggle]")) setDrawer(!$("#inbox")?.classList.contains("drawer-open"));
    else if (event.target.closest("[data-drawer-close]")) setDrawer(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $("#inbox.drawer-open")) setDrawer(false);
  });
  function countdown(ms) {
    const minutes = Math.max(0, Math.floor(ms / 60000));
    const h = Math.floor(minutes / 60);
    return h ? `${h} h ${String(minutes % 60).padStart(2, "0")} min` : `${minutes} min`;
  }
  function tickWindows() {
    document.querySelectorAll("[data-window-expires]").forEach((chip) => {
      const expires = Date.parse(chip.dataset.windowExpires || "");
      if (!expires) return;
      const left = expires - Date.now();
      if (left <= 0 && chip.classList.contains("is-open")) {
        chip.classList.replace("is-open", "is-closed");
        chip.textContent = chip.dataset.closedLabel;
        if (chip.closest("#chat-header")) catchUp(); // the composer switches to templates
        return;
      }
      const slot = chip.querySelector("[data-countdown]");
      if (slot) slot.textContent = countdown(left);
    });
  }
  setInterval(tickWindows, 30000);

  // --- Page lifecycle -------------------------------------------------------------------------
  function onPaneLoaded() {
    resetSeq();
    tickWindows();
    setDrawer(false);
    decorate(document);
    const thread = $("#thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
    document.querySelector("#inbox")?.classList.toggle("has-chat", Boolean(currentChat()));
    announce("viewing");
  }
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "chat-pane" || event.detail.elt.id === "chat-pane") {
      onPaneLoaded();
      document.querySelectorAll(".chat-item[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
      document.querySelector(`#chat-${currentChat()} .chat-item`)?.setAttribute("aria-current", "page");
    }
    if (event.detail.target.id === "thread" || event.detail.target.closest?.("#thread")) decorate(event.detail.target);
  });
  window.addEventListener("beforeunload", () => announce("left"));
  document.addEventListener("DOMContentLoaded", onPaneLoaded);
})();
