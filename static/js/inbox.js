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
  // Words this script shows come translated from the page (data-t-* on #inbox).
  const t = (key, fallback) => document.getElementById("inbox")?.dataset["t" + key[0].toUpperCase() + key.slice(1)] || fallback;
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
      if (chat === currentChat() && !document.hidden) await markRead(chat);
      const filters = $(".chat-filters");
      const query = filters ? new URLSearchParams(new FormData(filters)).toString() : ($("#inbox")?.dataset.query || "");
      const result = await fetchHtml(`/inbox/${chat}/item/?${query}`);
      const node = result && fragment(result.html).firstElementChild;
      if (!node) { existing?.remove(); scheduleCounts(); return; } // no longer in this list
      if (pane()?.dataset.chat === chat) node.querySelector(".chat-item")?.setAttribute("aria-current", "page");
      if (moveToTop) {
        existing?.remove();
        // Sorted by priority: the newest of its priority, so below every higher one.
        const byPriority = new URLSearchParams(query).get("sort") === "priority";
        const priority = Number(node.dataset.priority || 0);
        if (byPriority) {
          const next = [...list.querySelectorAll(":scope > .chat-row")].find((row) => Number(row.dataset.priority || 0) <= priority);
          if (next) next.before(node);
          else if (!list.querySelector(":scope > .load-more")) list.append(node);
          else return; // it belongs on a page not loaded yet
        } else {
          list.prepend(node);
        }
        $(".empty", list)?.remove();
      } else {
        existing.replaceWith(node);
      }
      htmx.process(node);
    }, 150);
  }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || ""; } catch (error) { return ""; }
  }
  async function markRead(chat) {
    await fetch(`/inbox/${chat}/read/`, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" });
  }
  document.addEventListener("visibilitychange", () => {
    const chat = currentChat();
    if (!document.hidden && chat && document.querySelector(`#chat-${chat} .badge.count`)) refreshListItem(chat, false);
  });

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
    // A status only matters for an entry on screen (a reaction's own statuses never are).
    if (data.message && (data.type !== "message.status" || document.getElementById("msg-" + data.message))) {
      upsertEntry(data.chat, data.message);
    }
    if (data.type === "chat.changed" && data.change !== "read") {
      htmx.ajax("GET", `/inbox/${data.chat}/`, { target: "#chat-header", select: "#chat-header", swap: "outerHTML" });
    }
  }

  // The heartbeat: every 10 s the server says the open chat's latest event number. Behind it
  // (events lost while the channel layer was down) a moment later, the page resyncs; the
  // moment lets events still on their way arrive first.
  document.addEventListener("live:chat.seq", (event) => {
    const data = event.detail;
    if (data.chat !== currentChat() || lastSeq === null || data.seq <= lastSeq) return;
    setTimeout(() => {
      if (data.chat === currentChat() && lastSeq !== null && lastSeq < data.seq) catchUp();
    }, 1500);
  });

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
      parts.push(`${name} ${info.state === "typing" ? el.dataset.typing || "✎" : el.dataset.viewing || "👁"}`);
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
      new Notification("Porfin", { body: t("newMessage", "New message"), tag: data.chat });
    }
    if (localStorage.getItem("porfin-sound") === "on") beep();
  });
  // Notifications (mentions, handoffs) are shown by app.js on every page; here only the sound.
  document.addEventListener("live:notification", (event) => {
    if (event.detail.handoff && localStorage.getItem("porfin-sound") === "on") beep();
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
  // Suggestion lists under a textarea: "/" lists quick replies in the composer, "@" lists
  // teammates in a private note. Arrow keys move, Enter or Tab picks, Escape closes.
  const suggest = {
    list: null, field: null, start: 0, items: [], index: 0,
    open(list, field, start, items) {
      this.list = list; this.field = field; this.start = start; this.items = items; this.index = 0;
      list.innerHTML = "";
      items.forEach((item, i) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.index = String(i);
        const strong = document.createElement("strong");
        strong.textContent = item.label;
        li.append(strong);
        if (item.hint) { const hint = document.createElement("span"); hint.className = "muted"; hint.textContent = item.hint; li.append(" ", hint); }
        list.append(li);
      });
      list.hidden = items.length === 0;
      this.mark();
    },
    mark() { this.list?.querySelectorAll("li").forEach((li, i) => li.setAttribute("aria-selected", String(i === this.index))); },
    close() { if (this.list) this.list.hidden = true; this.list = null; },
    isOpen() { return this.list && !this.list.hidden; },
    pick(i) {
      const item = this.items[i ?? this.index];
      if (!item || !this.field) return;
      const field = this.field;
      const caret = field.selectionStart;
      field.value = field.value.slice(0, this.start) + item.insert + field.value.slice(caret);
      const at = this.start + item.insert.length;
      field.setSelectionRange(at, at);
      field.focus();
      this.close();
    },
  };
  function quickReplyItems(prefix) {
    return [...document.querySelectorAll("template[data-quick-reply]")]
      .filter((t) => t.dataset.quickReply.startsWith(prefix.toLowerCase()))
      .slice(0, 8)
      .map((t) => ({ label: "/" + t.dataset.quickReply, hint: t.content.textContent.slice(0, 60), insert: t.content.textContent }));
  }
  function mentionItems(prefix) {
    const people = JSON.parse($("#mention-people")?.textContent || "[]");
    const me = document.body.dataset.user;
    const word = prefix.toLowerCase();
    return people
      .filter((p) => String(p.id) !== me && (p.handle.toLowerCase().startsWith(word) || p.name.toLowerCase().split(/\s+/).some((part) => part.startsWith(word))))
      .slice(0, 8)
      .map((p) => ({ label: p.name, hint: "@" + p.handle, insert: "@" + p.handle + " " }));
  }
  document.addEventListener("keydown", (event) => {
    const field = event.target.closest("#composer-text, #note-text");
    if (!field) return;
    if (suggest.isOpen() && suggest.field === field) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        suggest.index = (suggest.index + (event.key === "ArrowDown" ? 1 : suggest.items.length - 1)) % suggest.items.length;
        suggest.mark();
        return;
      }
      if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) { event.preventDefault(); suggest.pick(); return; }
      if (event.key === "Escape") { event.preventDefault(); suggest.close(); return; }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const file = field.form.querySelector("input[type=file]");
      if (field.value.trim() || (file && file.files.length)) htmx.trigger(field.form, "submit");
    }
  });
  document.addEventListener("input", (event) => {
    const field = event.target.closest("#composer-text, #note-text");
    if (!field) return;
    const before = field.value.slice(0, field.selectionStart);
    if (field.id === "composer-text") {
      const match = before.match(/(^|\s)\/([\w-]*)$/);
      if (match) suggest.open($("#quick-reply-suggestions"), field, before.length - match[2].length - 1, quickReplyItems(match[2]));
      else suggest.close();
    } else {
      const match = before.match(/(^|\s)@([\w.\-]*)$/u);
      if (match) suggest.open($("#mention-suggestions"), field, before.length - match[2].length - 1, mentionItems(match[2]));
      else suggest.close();
    }
    if (Date.now() - typingSent > 3000) { typingSent = Date.now(); announce("typing"); }
  });
  document.addEventListener("mousedown", (event) => {
    const option = event.target.closest(".suggestions li");
    if (!option) return;
    event.preventDefault();
    suggest.pick(Number(option.dataset.index));
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("#composer input[type=file]")) {
      const name = event.target.files[0]?.name || "";
      $("#composer .attachment-name").textContent = name;
    }
    if (event.target.matches("#template-select")) renderTemplateFields();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt.matches?.("[data-send-later]") && event.detail.successful) {
      const reply = event.detail.elt.closest("form");
      reply.querySelector("#composer-text").value = "";
      reply.querySelector("input[name=send_at]").value = "";
      event.detail.elt.closest("details")?.removeAttribute("open");
      return;
    }
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
      suggest.close();
      // The chosen box gets the keyboard, so typing right after the click is never lost.
      $(`[data-composer-panel="${name}"] textarea, [data-composer-panel="${name}"] select`)?.focus();
      return;
    }
    const preset = event.target.closest("[data-snooze-hours]");
    if (preset) {
      const when = new Date(Date.now() + Number(preset.dataset.snoozeHours) * 3600000);
      when.setMinutes(when.getMinutes() - when.getTimezoneOffset());
      const input = preset.form.querySelector("input[name=until]");
      input.value = when.toISOString().slice(0, 16);
      preset.form.requestSubmit();
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
      reply.setAttribute("aria-label", t("reply", "Reply"));
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
