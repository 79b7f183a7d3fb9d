/* The flow editor: a Drawflow canvas (vendored, static/vendor/drawflow) drawing the flow's
 * definition, a library of step types on the left and a properties form on the right.
 *
 * The definition (nodes, edges) is the only state; the canvas is redrawn from it after each
 * change, so what is saved is exactly what is shown. Saving sends the revision the editor
 * loaded: the server answers 409 when someone else saved meanwhile (nothing is overwritten).
 */
(function () {
  "use strict";

  var canvas = document.getElementById("flow-canvas");
  if (!canvas || typeof Drawflow === "undefined") return;

  function data(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }
  var catalog = data("flow-catalog");
  var config = data("flow-editor");
  var funnel = data("flow-funnel");
  var S = config.strings;
  var def = config.definition;
  var revision = config.revision;
  var problems = config.problems || [];
  var canEdit = config.can_edit;
  var undoStack = [];
  var selected = null;
  var dirty = false;
  var dfToNode = {};
  var nodeToDf = {};
  var rendering = false;
  var statusBox = document.querySelector("[data-status]");
  var csrf = (JSON.parse(document.body.getAttribute("hx-headers") || "{}") || {})["x-csrftoken"];

  var editor = new Drawflow(canvas);
  editor.reroute = false;
  editor.editor_mode = canEdit ? "edit" : "view";
  editor.zoom_min = 0.3;
  editor.start();

  function escapeHtml(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function status(text, isError) {
    statusBox.textContent = text || "";
    statusBox.classList.toggle("is-error", !!isError);
  }

  function nodeById(id) {
    for (var i = 0; i < def.nodes.length; i++) if (def.nodes[i].id === id) return def.nodes[i];
    return null;
  }

  function options(node) {
    var list = node.props.options;
    return Array.isArray(list) ? list : [];
  }

  function ports(node) {
    var type = catalog[node.type];
    if (!type) return [];
    if (!type.dynamic_ports) return type.ports;
    if (type.dynamic_ports === "intents") {
      if (node.props.mode !== "classify") return node.props.exit === "continue" ? ["next"] : [];
      return options(node).map(function (_o, i) { return "intent" + (i + 1); }).concat(["other"]);
    }
    return options(node).map(function (_o, i) { return "opt" + (i + 1); }).concat(["no_match"]);
  }

  function portLabel(node, port) {
    var match = /^(opt|intent)(\d+)$/.exec(port);
    if (match) {
      var option = options(node)[Number(match[2]) - 1] || port;
      return String(option).split("|")[0].trim();
    }
    return port.replace("_", " ");
  }

  function summary(node) {
    var p = node.props || {};
    var text = p.text || p.goal || p.tag || p.url || p.save_to || p.stage || p.email || "";
    if (node.type === "start") {
      var parts = [];
      if (p.keywords) parts.push(p.keywords);
      if (p.regex) parts.push("/" + p.regex + "/");
      if (p.new_contact) parts.push("new contact");
      if (p.outside_hours) parts.push("outside hours");
      text = parts.join(" · ");
    }
    if (node.type === "wait") text = (p.amount || 0) + " " + (p.unit || "");
    if (node.type === "assign_team") text = choiceLabel(node, "team");
    if (node.type === "condition") text = [p.subject, p.path, p.operator, p.value].filter(Boolean).join(" ");
    return String(text).slice(0, 90);
  }

  function choiceLabel(node, name) {
    var fields = (catalog[node.type] || { fields: [] }).fields;
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].name !== name) continue;
      for (var j = 0; j < fields[i].choices.length; j++) {
        if (fields[i].choices[j][0] === node.props[name]) return fields[i].choices[j][1];
      }
    }
    return node.props[name] || "";
  }

  function nodeHtml(node) {
    var type = catalog[node.type] || { label: node.type, icon: "?" };
    var stats = (funnel.nodes || {})[node.id];
    var html = '<div class="fnode-inner" data-node="' + escapeHtml(node.id) + '">' +
      '<div class="fnode-head"><span class="fnode-icon" aria-hidden="true">' + escapeHtml(type.icon) + "</span> " +
      escapeHtml(node.props.label || type.label) + "</div>" +
      '<div class="fnode-body">' + escapeHtml(summary(node)) + "</div>";
    var names = ports(node);
    if (names.length > 1) {
      html += '<ul class="fnode-ports">' + names.map(function (port) {
        return "<li>" + escapeHtml(portLabel(node, port)) + "</li>";
      }).join("") + "</ul>";
    }
    if (stats) {
      html += '<div class="fnode-funnel">' + stats.entered + " " + S.reached +
        (stats.dropped ? " · " + stats.dropped + " " + S.dropped : "") +
        (stats.median_ms != null ? " · " + S.median + " " + (stats.median_ms / 1000).toFixed(1) + " s" : "") + "</div>";
    }
    html += '<div class="fnode-problems" data-problems></div></div>';
    return html;
  }

  function render() {
    rendering = true;
    editor.clear();
    dfToNode = {};
    nodeToDf = {};
    def.nodes.forEach(function (node) {
      node.props = node.props || {};
      var id = editor.addNode(node.type, node.type === "start" ? 0 : 1, ports(node).length,
        node.x || 0, node.y || 0, "fnode fnode-" + node.type, { nid: node.id }, nodeHtml(node));
      dfToNode[id] = node.id;
      nodeToDf[node.id] = id;
    });
    def.edges.forEach(function (edge) {
      var source = nodeById(edge.from);
      if (!source || !(edge.to in nodeToDf)) return;
      var index = ports(source).indexOf(edge.port);
      if (index < 0) return;
      editor.addConnection(nodeToDf[edge.from], nodeToDf[edge.to], "output_" + (index + 1), "input_1");
    });
    rendering = false;
    markProblems();
    if (selected && nodeToDf[selected]) {
      var element = document.getElementById("node-" + nodeToDf[selected]);
      if (element) element.classList.add("selected");
    }
  }

  function markProblems() {
    var byNode = {};
    var general = [];
    problems.forEach(function (p) {
      if (p.node && nodeToDf[p.node]) (byNode[p.node] = byNode[p.node] || []).push(p);
      else general.push(p);
    });
    Object.keys(nodeToDf).forEach(function (nid) {
      var element = document.getElementById("node-" + nodeToDf[nid]);
      if (!element) return;
      var list = byNode[nid] || [];
      element.classList.toggle("has-error", list.some(function (p) { return p.blocking; }));
      element.classList.toggle("has-warning", list.length > 0 && !list.some(function (p) { return p.blocking; }));
      var box = element.querySelector("[data-problems]");
      if (box) box.innerHTML = list.map(function (p) { return "<div>⚠ " + escapeHtml(p.message) + "</div>"; }).join("");
    });
    var count = document.querySelector("[data-problem-count]");
    count.textContent = problems.length ? problems.length + " " + S.problems : S.ok;
    count.title = general.map(function (p) { return p.message; }).join("\n");
    if (general.length) status(general.map(function (p) { return p.message; }).join(" "), true);
  }

  // --- Changes -------------------------------------------------------------------------------

  function remember() {
    undoStack.push(JSON.stringify(def));
    if (undoStack.length > 100) undoStack.shift();
    dirty = true;
  }

  var checkTimer = null;
  function changed() {
    dirty = true;
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 400);
  }

  function post(url, body, accept) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": accept || "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { status: response.status, json: json };
      });
    });
  }

  function check() {
    post(config.urls.check, { definition: def }).then(function (answer) {
      if (answer.status === 200) {
        problems = answer.json.problems || [];
        markProblems();
      }
    });
  }

  function uniqueId(type) {
    var n = 1;
    while (nodeById(type + n)) n++;
    return type + n;
  }

  function addNode(type, x, y) {
    if (!canEdit || !catalog[type]) return;
    if (type === "start" && def.nodes.some(function (n) { return n.type === "start"; })) return;
    remember();
    var node = { id: uniqueId(type), type: type, props: JSON.parse(JSON.stringify(catalog[type].defaults || {})), x: Math.round(x), y: Math.round(y) };
    def.nodes.push(node);
    selected = node.id;
    render();
    showProperties(node.id);
    changed();
  }

  function setEdge(from, port, to) {
    def.edges = def.edges.filter(function (e) { return !(e.from === from && e.port === port); });
    if (to) def.edges.push({ from: from, port: port, to: to });
  }

  function removeNode(nid) {
    def.nodes = def.nodes.filter(function (n) { return n.id !== nid; });
    def.edges = def.edges.filter(function (e) { return e.from !== nid && e.to !== nid; });
    if (selected === nid) {
      selected = null;
      document.querySelector("[data-properties]").innerHTML = "";
    }
  }

  editor.on("connectionCreated", function (c) {
    if (rendering) return;
    var source = nodeById(dfToNode[c.output_id]);
    var target = dfToNode[c.input_id];
    if (!source || !target) return;
    remember();
    var port = ports(source)[Number(c.output_class.replace("output_", "")) - 1];
    setEdge(source.id, port, target);
    render();
    if (selected === source.id) showProperties(source.id);
    changed();
  });
  editor.on("connectionRemoved", function (c) {
    if (rendering) return;
    var source = nodeById(dfToNode[c.output_id]);
    if (!source) return;
    remember();
    var port = ports(source)[Number(c.output_class.replace("output_", "")) - 1];
    def.edges = def.edges.filter(function (e) {
      return !(e.from === source.id && e.port === port && e.to === dfToNode[c.input_id]);
    });
    changed();
  });
  editor.on("nodeMoved", function (id) {
    var node = nodeById(dfToNode[id]);
    var info = editor.getNodeFromId(id);
    if (!node || !info) return;
    remember();
    node.x = Math.round(info.pos_x);
    node.y = Math.round(info.pos_y);
    dirty = true;
  });
  editor.on("nodeRemoved", function (id) {
    if (rendering || !dfToNode[id]) return;
    remember();
    removeNode(dfToNode[id]);
    changed();
  });
  editor.on("nodeSelected", function (id) {
    selected = dfToNode[id];
    showProperties(selected);
  });

  // --- The library ---------------------------------------------------------------------------

  var library = document.querySelector("[data-library]");
  Object.keys(catalog).forEach(function (type) {
    if (type === "start") return; // one per flow, always there
    var item = document.createElement("li");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "flow-library-item";
    button.dataset.type = type;
    button.draggable = canEdit;
    button.disabled = !canEdit;
    button.innerHTML = '<span aria-hidden="true">' + escapeHtml(catalog[type].icon) + "</span> " + escapeHtml(catalog[type].label);
    button.addEventListener("dragstart", function (event) {
      event.dataTransfer.setData("text/plain", type);
    });
    button.addEventListener("click", function () {
      // Click to add: to the right of the selected step, or below the others.
      var anchor = selected ? nodeById(selected) : null;
      var x = anchor ? (anchor.x || 0) + 280 : 40;
      var y = anchor ? (anchor.y || 0) : 40 + 140 * (def.nodes.length % 5);
      addNode(type, x, y);
    });
    item.appendChild(button);
    library.appendChild(item);
  });
  canvas.addEventListener("dragover", function (event) { event.preventDefault(); });
  canvas.addEventListener("drop", function (event) {
    event.preventDefault();
    var type = event.dataTransfer.getData("text/plain");
    var rect = editor.precanvas.getBoundingClientRect();
    addNode(type, (event.clientX - rect.x) / editor.zoom, (event.clientY - rect.y) / editor.zoom);
  });

  // --- The properties form -------------------------------------------------------------------

  function fieldInput(node, field) {
    var value = node.props[field.name];
    var input;
    if (field.kind === "textarea" || field.kind === "lines") {
      input = document.createElement("textarea");
      input.rows = field.kind === "lines" ? 4 : 3;
      input.value = field.kind === "lines" ? (Array.isArray(value) ? value.join("\n") : "") : (value || "");
    } else if (field.kind === "select") {
      input = document.createElement("select");
      field.choices.forEach(function (choice) {
        var option = document.createElement("option");
        option.value = choice[0];
        option.textContent = choice[1];
        input.appendChild(option);
      });
      input.value = value == null ? (field.choices[0] || [""])[0] : value;
    } else if (field.kind === "bool") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !!value;
    } else if (field.kind === "upload") {
      // A file for the step: sent to the server at once; the step keeps its id (and name).
      input = document.createElement("input");
      input.type = "file";
      input.disabled = !canEdit;
      input.addEventListener("change", function () {
        if (!input.files.length) return;
        var form = new FormData();
        form.append("file", input.files[0]);
        statusBox.textContent = S.uploading;
        fetch(config.urls.media, { method: "POST", body: form, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
          .then(function (response) { return response.json().then(function (data) { return { ok: response.ok, data: data }; }); })
          .then(function (answer) {
            if (!answer.ok) { statusBox.textContent = answer.data.error || S.failed; return; }
            undoStack.push(JSON.stringify(def));
            node.props[field.name] = answer.data.media;
            node.props.media_name = answer.data.filename;
            node.props.media_type = answer.data.kind;
            statusBox.textContent = S.uploaded + " " + answer.data.filename;
            render();
            showProperties(node.id);
            changed();
          });
      });
      return input;
    } else {
      input = document.createElement("input");
      input.type = field.kind === "number" ? "number" : "text";
      input.value = value == null ? "" : value;
    }
    if (field.max_length) input.maxLength = field.max_length;
    input.name = field.name;
    input.disabled = !canEdit;
    function read() {
      if (field.kind === "lines") return input.value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
      if (field.kind === "bool") return input.checked;
      if (field.kind === "number") return input.value === "" ? "" : Number(input.value);
      return input.value;
    }
    var before = null;
    input.addEventListener("focus", function () { before = JSON.stringify(def); });
    input.addEventListener("input", function () {
      node.props[field.name] = read();
      changed();
    });
    input.addEventListener("change", function () {
      node.props[field.name] = read();
      if (before) undoStack.push(before);
      before = JSON.stringify(def);
      // Drop edges of ports that no longer exist (fewer buttons), then redraw.
      var names = ports(node);
      def.edges = def.edges.filter(function (e) { return e.from !== node.id || names.indexOf(e.port) >= 0; });
      render();
      showProperties(node.id);
      changed();
    });
    return input;
  }

  function showProperties(nid) {
    var box = document.querySelector("[data-properties]");
    var node = nodeById(nid);
    box.innerHTML = "";
    if (!node) return;
    var type = catalog[node.type] || { fields: [], label: node.type };
    var title = document.createElement("h3");
    title.textContent = type.label;
    box.appendChild(title);
    var idLine = document.createElement("p");
    idLine.className = "muted";
    idLine.textContent = S.id + ": " + node.id;
    box.appendChild(idLine);
    type.fields.forEach(function (field) {
      var wrapper = document.createElement("div");
      wrapper.className = "field" + (field.kind === "bool" ? " checkbox" : "");
      var label = document.createElement("label");
      var input = fieldInput(node, field);
      input.id = "prop-" + field.name;
      label.htmlFor = input.id;
      label.textContent = field.label;
      if (field.kind === "bool") { wrapper.appendChild(input); wrapper.appendChild(label); }
      else { wrapper.appendChild(label); wrapper.appendChild(input); }
      if (field.kind === "upload" && node.props.media_name) {
        var current = document.createElement("small");
        current.textContent = S.uploaded + " " + node.props.media_name;
        wrapper.appendChild(current);
      }
      if (field.help) {
        var help = document.createElement("small");
        help.className = "muted";
        help.textContent = field.help;
        wrapper.appendChild(help);
      }
      box.appendChild(wrapper);
    });
    var names = ports(node);
    if (names.length) {
      var heading = document.createElement("h4");
      heading.textContent = S.outputs;
      box.appendChild(heading);
      names.forEach(function (port) {
        var wrapper = document.createElement("div");
        wrapper.className = "field";
        var label = document.createElement("label");
        var select = document.createElement("select");
        select.id = "port-" + port;
        select.dataset.port = port;
        select.disabled = !canEdit;
        label.htmlFor = select.id;
        label.textContent = portLabel(node, port) + " →";
        var none = document.createElement("option");
        none.value = "";
        none.textContent = S.none;
        select.appendChild(none);
        def.nodes.forEach(function (other) {
          if (other.id === node.id || other.type === "start") return;
          var option = document.createElement("option");
          option.value = other.id;
          option.textContent = (other.props.label || (catalog[other.type] || {}).label || other.type) + " (" + other.id + ")";
          select.appendChild(option);
        });
        var current = def.edges.filter(function (e) { return e.from === node.id && e.port === port; })[0];
        select.value = current ? current.to : "";
        select.addEventListener("change", function () {
          remember();
          setEdge(node.id, port, select.value);
          render();
          changed();
        });
        wrapper.appendChild(label);
        wrapper.appendChild(select);
        box.appendChild(wrapper);
      });
    }
    if (canEdit && node.type !== "start") {
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button secondary small";
      remove.textContent = S.delete;
      remove.addEventListener("click", function () {
        remember();
        removeNode(node.id);
        render();
        changed();
      });
      box.appendChild(remove);
    }
  }

  // --- Toolbar -------------------------------------------------------------------------------

  function layout() {
    remember();
    var start = def.nodes.filter(function (n) { return n.type === "start"; })[0];
    var depth = {};
    var queue = start ? [start.id] : [];
    if (start) depth[start.id] = 0;
    while (queue.length) {
      var current = queue.shift();
      def.edges.forEach(function (e) {
        if (e.from === current && !(e.to in depth)) {
          depth[e.to] = depth[current] + 1;
          queue.push(e.to);
        }
      });
    }
    var maxDepth = Math.max.apply(null, [0].concat(Object.keys(depth).map(function (k) { return depth[k]; })));
    var rows = {};
    def.nodes.forEach(function (node) {
      var column = node.id in depth ? depth[node.id] : maxDepth + 1;
      rows[column] = (rows[column] || 0) + 1;
      node.x = 40 + column * 290;
      node.y = 40 + (rows[column] - 1) * 190;
    });
    render();
  }

  function save() {
    status(S.saving);
    return post(config.urls.save, { revision: revision, name: null, definition: def }).then(function (answer) {
      if (answer.status === 200) {
        revision = answer.json.revision;
        problems = answer.json.problems || [];
        dirty = false;
        markProblems();
        status(S.saved);
        return true;
      }
      if (answer.json.problems) { problems = answer.json.problems; markProblems(); }
      status(S.failed + ": " + (answer.json.error || answer.status), true);
      return false;
    });
  }

  function publish() {
    save().then(function (ok) {
      if (!ok) return;
      post(config.urls.publish, {}).then(function (answer) {
        if (answer.status === 200) {
          status(answer.json.message || S.published);
          var badge = document.querySelector("[data-live-version]");
          if (badge) { badge.textContent = answer.json.message; badge.classList.remove("muted"); }
        } else {
          if (answer.json.problems) { problems = answer.json.problems; markProblems(); }
          status(answer.json.error || String(answer.status), true);
        }
      });
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-action]");
    if (!target) return;
    var action = target.dataset.action;
    if (action === "zoom-in") editor.zoom_in();
    else if (action === "zoom-out") editor.zoom_out();
    else if (action === "layout") { layout(); changed(); }
    else if (action === "undo" && undoStack.length) {
      def = JSON.parse(undoStack.pop());
      render();
      if (selected) showProperties(selected);
      changed();
    } else if (action === "save") save();
    else if (action === "publish") publish();
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty && canEdit) { event.preventDefault(); event.returnValue = ""; }
  });

  render();
  dirty = false;
  window.porfinFlowEditor = { definition: function () { return def; }, revision: function () { return revision; } };
})();
