/* smshub flow editor and run viewer, on Drawflow (vendored, MIT).
 *
 * The flow document (DESIGN.md JSON) is the source of truth: every node keeps its id,
 * type, config, retry policy and position here; Drawflow draws the graph. Output ports
 * are named: a node's outputs are its type's ports in catalog order, then `error` for
 * nodes that can fail; the port name is shown next to each output.
 */
(function () {
  "use strict";

  var ICONS = {
    trigger: '<path d="M13 2 3 14h9l-1 8 10-12h-9l1-8z"/>',
    logic: '<path d="M16 3h5v5"/><path d="M8 3H3v5"/><path d="M21 3l-7 7"/><path d="M3 3l7 7"/><path d="M12 12v9"/>',
    data: '<ellipse cx="12" cy="5" rx="9" ry="3"/><path d="M21 12c0 1.66-4 3-9 3s-9-1.34-9-3"/><path d="M3 5v14c0 1.66 4 3 9 3s9-1.34 9-3V5"/>',
    sms: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
    http: '<circle cx="12" cy="12" r="10"/><path d="M2 12h20"/><path d="M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z"/>',
    contact: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
    flow: '<circle cx="12" cy="12" r="10"/><path d="M12 6v6l4 2"/>'
  };
  var CATEGORY_TITLES = { trigger: "Triggers", logic: "Logic", data: "Data", sms: "SMS", http: "HTTP", contact: "Contacts", flow: "Flow control" };
  var SHORT_IDS = {
    "trigger.sms_received": "start", "trigger.delivery_status": "on_status", "trigger.http": "hook",
    "logic.condition": "check", "logic.switch": "route", "data.set": "set_vars", "sms.reply": "reply",
    "sms.send": "send", "sms.wait_for_reply": "ask", "http.request": "http", "contact.update": "contact",
    "flow.delay": "wait", "flow.stop": "stop"
  };
  // What each node type puts in steps.<id>.output (offered in the variables menu).
  var OUTPUT_HINTS = {
    "trigger.sms_received": ["body", "from", "to", "keyword", "rest", "channel_id", "sim_slot"],
    "trigger.delivery_status": ["status", "to", "message_id", "error"],
    "trigger.http": [],
    "logic.condition": ["result", "value"],
    "logic.switch": ["port", "value"],
    "data.set": ["vars"],
    "sms.reply": ["status", "message_id", "text", "suppressed"],
    "sms.send": ["status", "message_id", "to", "text", "suppressed"],
    "sms.wait_for_reply": ["body", "from", "message_id"],
    "http.request": ["status", "ok", "json", "body"],
    "contact.update": ["phone", "opted_out", "tags", "fields"],
    "flow.delay": ["until"],
    "flow.stop": ["outcome", "reason"]
  };
  var NODE_ID_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value;
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function esc(text) {
    return String(text === undefined || text === null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function svgIcon(category) {
    return '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true">' + (ICONS[category] || ICONS.flow) + "</svg>";
  }
  function clone(value) { return value === undefined ? undefined : JSON.parse(JSON.stringify(value)); }
  function api(method, url, body) { return window.smshub.api(method, url, body); }
  function toast(text, kind) { window.smshub.toast(text, kind); }

  // --- schema helpers ---------------------------------------------------------------------

  function resolve(schema, root) {
    if (schema && schema.$ref) {
      var name = schema.$ref.split("/").pop();
      var found = (root.$defs || {})[name] || {};
      return Object.assign({}, found, schema, { $ref: undefined });
    }
    return schema || {};
  }
  /** The non-null variants of a property, and whether null is allowed. */
  function variants(schema, root) {
    schema = resolve(schema, root);
    if (!schema.anyOf) return { list: [schema], nullable: false, base: schema };
    var list = schema.anyOf.map(function (v) { return resolve(v, root); }).filter(function (v) { return v.type !== "null"; });
    return { list: list, nullable: list.length < schema.anyOf.length, base: schema };
  }
  function humanize(name) {
    var words = { api: "API", url: "URL", id: "ID", sms: "SMS", sim: "SIM" };
    var seconds = /_s$/.test(name);
    var text = (seconds ? name.slice(0, -2) : name).split("_").map(function (w) { return words[w] || w; }).join(" ");
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return seconds ? text + " (seconds)" : text;
  }

  // --- the graph (shared by editor and viewer) ----------------------------------------------

  function Graph(container, catalog, mode) {
    this.container = container;
    this.types = {};
    var self = this;
    catalog.forEach(function (entry) { self.types[entry.type] = entry; });
    this.df = new Drawflow(container);
    this.df.reroute = false;
    this.df.curvature = 0.42;
    this.df.zoom_min = 0.3;
    this.df.zoom_max = 1.6;
    this.df.start();
    this.df.editor_mode = mode || "edit";
    this.nodes = {};   // drawflow id -> {nid, type, config, retry, ports}
  }

  Graph.prototype.spec = function (type) {
    return this.types[type] || { type: type, title: type, category: "flow", ports: ["next"], error_port: null, config_schema: { properties: {} } };
  };
  Graph.prototype.portsFor = function (type, config) {
    var spec = this.spec(type);
    var ports = spec.ports.slice();
    if (type === "logic.switch") {
      ports = [];
      ((config || {}).cases || []).forEach(function (c) {
        if (c && typeof c.port === "string" && c.port && ports.indexOf(c.port) < 0) ports.push(c.port);
      });
      ports.push("default");
    }
    if (spec.error_port && ports.indexOf(spec.error_port) < 0) ports.push(spec.error_port);
    return ports;
  };
  Graph.prototype.dfIdOf = function (nid) {
    var ids = Object.keys(this.nodes);
    for (var i = 0; i < ids.length; i++) if (this.nodes[ids[i]].nid === nid) return ids[i];
    return null;
  };
  Graph.prototype.nodeHtml = function (node) {
    var spec = this.spec(node.type);
    return '<div class="fnode"><div class="fnode-head"><span class="node-icon cat-' + esc(spec.category) + '">' +
      svgIcon(spec.category) + '</span><div style="min-width:0"><div class="fnode-title">' + esc(spec.title) +
      '</div><div class="fnode-id">' + esc(node.nid) + '</div></div></div><div class="fnode-summary">' +
      esc(summary(node)) + '</div><div class="fnode-badges"></div></div>';
  };
  Graph.prototype.addNode = function (node, x, y) {
    var spec = this.spec(node.type);
    node.ports = this.portsFor(node.type, node.config);
    var inputs = spec.category === "trigger" ? 0 : 1;
    var id = this.df.addNode(node.type, inputs, node.ports.length, x, y, "cat-" + spec.category, { nid: node.nid }, this.nodeHtml(node));
    this.nodes[String(id)] = node;
    this.labelPorts(String(id));
    return String(id);
  };
  Graph.prototype.element = function (dfId) { return this.container.querySelector("#node-" + dfId); };
  Graph.prototype.labelPorts = function (dfId) {
    var node = this.nodes[dfId];
    var element = this.element(dfId);
    if (!element) return;
    var outs = element.querySelectorAll(".outputs .output");
    var single = node.ports.length === 1 && node.ports[0] === "next";
    for (var i = 0; i < outs.length; i++) {
      if (!single) outs[i].setAttribute("data-port", node.ports[i] || "?");
      else outs[i].removeAttribute("data-port");
      outs[i].setAttribute("title", node.ports[i] || "");
    }
  };
  Graph.prototype.refreshNode = function (dfId) {
    var element = this.element(dfId);
    if (!element) return;
    element.querySelector(".drawflow_content_node").innerHTML = this.nodeHtml(this.nodes[dfId]);
  };
  Graph.prototype.connectionsOf = function (dfId) {
    var data = this.df.getNodeFromId(dfId);
    var found = [];
    Object.keys(data.outputs || {}).forEach(function (key) {
      (data.outputs[key].connections || []).forEach(function (c) { found.push({ output: key, to: String(c.node) }); });
    });
    return found;
  };
  Graph.prototype.portOfOutput = function (dfId, outputClass) {
    var index = parseInt(String(outputClass).replace("output_", ""), 10) - 1;
    return this.nodes[dfId].ports[index];
  };
  Graph.prototype.styleConnections = function () {
    var self = this;
    Object.keys(this.nodes).forEach(function (dfId) {
      self.nodes[dfId].ports.forEach(function (port, i) {
        var sel = ".connection.node_out_node-" + dfId + ".output_" + (i + 1);
        self.container.querySelectorAll(sel).forEach(function (path) {
          path.classList.toggle("port-error", port === "error");
        });
      });
    });
  };
  /** Re-create a node's outputs after its ports changed (switch cases), keeping edges by name. */
  Graph.prototype.syncPorts = function (dfId) {
    var self = this;
    var node = this.nodes[dfId];
    var old = node.ports;
    var wanted = this.portsFor(node.type, node.config);
    if (JSON.stringify(old) === JSON.stringify(wanted)) return;
    var outgoing = this.connectionsOf(dfId).map(function (c) {
      return { port: old[parseInt(c.output.replace("output_", ""), 10) - 1], to: c.to };
    });
    var incoming = [];
    Object.keys(this.nodes).forEach(function (other) {
      if (other === dfId) return;
      self.connectionsOf(other).forEach(function (c) { if (c.to === dfId) incoming.push({ from: other, output: c.output }); });
    });
    this.df.removeConnectionNodeId("node-" + dfId);
    var count = old.length;
    while (count > wanted.length) { this.df.removeNodeOutput(dfId, "output_" + count); count--; }
    while (count < wanted.length) { this.df.addNodeOutput(dfId); count++; }
    node.ports = wanted;
    outgoing.forEach(function (edge) {
      var index = wanted.indexOf(edge.port);
      if (index >= 0) self.df.addConnection(dfId, edge.to, "output_" + (index + 1), "input_1");
    });
    incoming.forEach(function (edge) { self.df.addConnection(edge.from, dfId, edge.output, "input_1"); });
    this.labelPorts(dfId);
    this.styleConnections();
  };
  Graph.prototype.load = function (document) {
    var self = this;
    var byNid = {};
    (document.nodes || []).forEach(function (raw, i) {
      var ui = raw.ui || {};
      var node = {
        nid: String(raw.id || ("node_" + i)), type: String(raw.type || ""), config: clone(raw.config || {}),
        retry: raw.retry ? clone(raw.retry) : null, ui: clone(ui)
      };
      var x = typeof ui.x === "number" ? ui.x : 60 + 280 * i;
      var y = typeof ui.y === "number" ? ui.y : 120;
      byNid[node.nid] = self.addNode(node, x, y);
    });
    var dropped = 0;
    (document.edges || []).forEach(function (edge) {
      var from = byNid[edge.from], to = byNid[edge.to];
      if (!from || !to) { dropped++; return; }
      var index = self.nodes[from].ports.indexOf(edge.port || "next");
      if (index < 0 || self.spec(self.nodes[to].type).category === "trigger") { dropped++; return; }
      self.df.addConnection(from, to, "output_" + (index + 1), "input_1");
    });
    this.styleConnections();
    return dropped;
  };
  Graph.prototype.toDocument = function (base) {
    var self = this;
    var nodes = [], edges = [];
    var ids = Object.keys(this.nodes).sort(function (a, b) { return Number(a) - Number(b); });
    ids.forEach(function (dfId) {
      var node = self.nodes[dfId];
      var data = self.df.getNodeFromId(dfId);
      var ui = Object.assign({}, node.ui || {}, { x: Math.round(data.pos_x), y: Math.round(data.pos_y) });
      var out = { id: node.nid, type: node.type, config: clone(node.config || {}), ui: ui };
      if (node.retry) out.retry = clone(node.retry);
      nodes.push(out);
      Object.keys(data.outputs || {}).sort().forEach(function (key) {
        var port = self.portOfOutput(dfId, key);
        (data.outputs[key].connections || []).forEach(function (c) {
          var target = self.nodes[String(c.node)];
          if (!target) return;
          var edge = { from: node.nid, to: target.nid };
          if (port && port !== "next") edge.port = port;
          edges.push(edge);
        });
      });
    });
    var doc = { name: base.name, nodes: nodes, edges: edges };
    if (base.description) doc.description = base.description;
    if (base.ui) doc.ui = base.ui;
    return doc;
  };
  /** Fade the nodes a run never reached (the run viewer). */
  Graph.prototype.dimUnvisited = function () {
    this.container.querySelectorAll(".drawflow-node").forEach(function (n) {
      if (!/\bran/.test(n.className)) n.classList.add("not-run");
    });
  };
  /** Zoom and pan so every node is in view. */
  Graph.prototype.fit = function (maxZoom) {
    var df = this.df;
    var rect = this.container.getBoundingClientRect();
    var ids = Object.keys(this.nodes);
    if (!ids.length || !rect.width) return;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    var self = this;
    ids.forEach(function (id) {
      var data = df.getNodeFromId(id);
      var element = self.element(id);
      var w = element ? element.offsetWidth : 220, h = element ? element.offsetHeight : 90;
      minX = Math.min(minX, data.pos_x); minY = Math.min(minY, data.pos_y);
      maxX = Math.max(maxX, data.pos_x + w + 50); maxY = Math.max(maxY, data.pos_y + h);
    });
    var w = maxX - minX, h = maxY - minY;
    var zoom = Math.max(0.45, Math.min(maxZoom || 1, (rect.width - 100) / w, (rect.height - 120) / h));
    var cx = minX + w / 2, cy = minY + h / 2;
    var W = df.precanvas.clientWidth, H = df.precanvas.clientHeight;
    df.zoom = zoom; df.zoom_last_value = zoom;
    df.canvas_x = zoom * (W / 2 - cx);
    df.canvas_y = zoom * (H / 2 - cy);
    df.precanvas.style.transform = "translate(" + df.canvas_x + "px, " + df.canvas_y + "px) scale(" + zoom + ")";
  };
  Graph.prototype.clearMarks = function () {
    this.container.querySelectorAll(".drawflow-node").forEach(function (n) {
      n.classList.remove("ran", "ran-failed", "ran-waiting", "not-run");
      n.querySelectorAll(".step-badge").forEach(function (b) { b.remove(); });
    });
    this.container.querySelectorAll(".connection.taken").forEach(function (c) { c.classList.remove("taken"); });
  };
  /** Paint the path a run took: visited nodes, their order, the edges followed. */
  Graph.prototype.markPath = function (steps) {
    var self = this;
    this.clearMarks();
    var order = {};
    steps.forEach(function (step, i) {
      var dfId = self.dfIdOf(step.node_id);
      if (!dfId) return;
      var element = self.element(dfId);
      element.classList.remove("ran", "ran-failed", "ran-waiting");
      element.classList.add(step.status === "failed" ? "ran-failed" : (step.status === "waiting" || step.status === "running") ? "ran-waiting" : "ran");
      order[dfId] = (order[dfId] || []).concat([i + 1]);
      var badge = element.querySelector(".step-badge") || element.appendChild(el("span", { "class": "step-badge" }));
      badge.className = "step-badge " + step.status;
      badge.textContent = order[dfId].join(", ");
      badge.title = step.status;
      var next = steps[i + 1];
      if (next && step.port) {
        var to = self.dfIdOf(next.node_id);
        var index = self.nodes[dfId].ports.indexOf(step.port);
        if (to && index >= 0) {
          self.container.querySelectorAll(".connection.node_out_node-" + dfId + ".node_in_node-" + to + ".output_" + (index + 1))
            .forEach(function (c) { c.classList.add("taken"); });
        }
      }
    });
  };

  function summary(node) {
    var c = node.config || {};
    var text = "";
    switch (node.type) {
      case "trigger.sms_received":
        var match = c.match || "first_word";
        if (match === "any") text = "any SMS";
        else if (match === "regex") text = "matches /" + (c.pattern || "") + "/";
        else text = match.replace("_", " ") + ": " + ((c.keywords || []).join(", ") || "—");
        break;
      case "trigger.delivery_status": text = (c.statuses || []).join(", "); break;
      case "trigger.http": text = c.description || "POST to the flow's URL"; break;
      case "logic.condition": text = (c.value || "") + " " + (c.operator || "equals") + " " + (Array.isArray(c.operand) ? c.operand.join(", ") : (c.operand || "")); break;
      case "logic.switch": text = (c.value || "") + " → " + ((c.cases || []).map(function (x) { return x && x.port; }).join(" / ")); break;
      case "data.set": text = Object.keys(c.vars || {}).map(function (k) { return "vars." + k; }).join(", "); break;
      case "sms.wait_for_reply": text = (c.text || "(wait)") + " · " + (c.timeout_s || 3600) + " s"; break;
      case "http.request": text = (c.method || "POST") + " " + (c.url || ""); break;
      case "contact.update":
        var parts = [];
        if (c.opt_out === true) parts.push("opt out");
        if (c.opt_out === false) parts.push("opt in");
        if ((c.add_tags || []).length) parts.push("+" + c.add_tags.join(" +"));
        if ((c.remove_tags || []).length) parts.push("−" + c.remove_tags.join(" −"));
        if (c.fields && Object.keys(c.fields).length) parts.push("fields: " + Object.keys(c.fields).join(", "));
        text = parts.join(" · ");
        break;
      case "flow.delay": text = c.seconds ? c.seconds + " s" : ""; break;
      case "flow.stop": text = c.outcome || "completed"; break;
      default: text = c.text || "";
    }
    text = String(text || "");
    return text.length > 110 ? text.slice(0, 107) + "…" : text;
  }

  // --- the config panel: a form from a JSON schema -------------------------------------------

  function FieldContext(editor, node) {
    this.editor = editor;
    this.node = node;
  }

  function templateMenu(editor, node, input) {
    var wrap = el("span", { "class": "vars-menu" });
    var pop = null;
    var button = el("button", {
      type: "button", "class": "vars-btn", title: "Insert a variable", text: "{ }",
      onclick: function (evt) {
        evt.preventDefault();
        if (pop) { pop.remove(); pop = null; return; }
        pop = el("div", { "class": "vars-pop" });
        editor.variables(node).forEach(function (group) {
          pop.appendChild(el("div", { "class": "g", text: group.title }));
          group.items.forEach(function (path) {
            pop.appendChild(el("button", {
              type: "button", text: path, onclick: function (e) {
                e.preventDefault();
                var insert = "{{ " + path + " }}";
                var start = input.selectionStart || input.value.length, end = input.selectionEnd || input.value.length;
                input.value = input.value.slice(0, start) + insert + input.value.slice(end);
                input.dispatchEvent(new Event("input", { bubbles: true }));
                input.focus();
                pop.remove(); pop = null;
              }
            }));
          });
        });
        wrap.appendChild(pop);
      }
    });
    wrap.appendChild(button);
    return wrap;
  }

  /** Build one field's editor; `set(value)` stores it (undefined = remove the key). */
  function buildField(ctx, name, schema, root, value, set, required) {
    var v = variants(schema, root);
    var base = v.base, first = v.list[0] || {};
    var isTemplate = !!base["x-template"];
    var label = humanize(name);
    var field = el("div", { "class": "field", "data-field": name });
    var labelRow = el("div", { "class": "label-row" }, [el("label", { "class": "label", text: label }, required ? [el("span", { "class": "req", text: "*" })] : [])]);
    field.appendChild(labelRow);
    var input;
    var types = v.list.map(function (x) { return x.type; });

    if (first.enum && v.list.length === 1 && first.type === "string") {
      input = el("select", { "class": "input" });
      if (!required && base["default"] === undefined) input.appendChild(el("option", { value: "", text: "—" }));
      first.enum.forEach(function (opt) { input.appendChild(el("option", { value: opt, text: opt })); });
      input.value = value !== undefined && value !== null ? value : (base["default"] !== undefined ? base["default"] : "");
      input.addEventListener("change", function () { set(input.value === "" ? undefined : input.value); });
    } else if (types.length === 1 && first.type === "boolean") {
      if (v.nullable) {
        input = el("select", { "class": "input" }, [
          el("option", { value: "", text: "— leave unchanged" }), el("option", { value: "true", text: "yes" }), el("option", { value: "false", text: "no" })
        ]);
        input.value = value === true ? "true" : value === false ? "false" : "";
        input.addEventListener("change", function () { set(input.value === "" ? undefined : input.value === "true"); });
      } else {
        input = el("input", { type: "checkbox" });
        input.checked = value !== undefined ? !!value : !!base["default"];
        var check = el("label", { "class": "check" }, [input, el("span", { text: base.description || label })]);
        input.addEventListener("change", function () { set(input.checked); });
        field.appendChild(check);
        return field;
      }
    } else if (types.length === 1 && (first.type === "integer" || first.type === "number")) {
      input = el("input", { "class": "input", type: "number", step: first.type === "integer" ? "1" : "any", min: first.minimum, max: first.maximum, placeholder: base["default"] !== undefined ? String(base["default"]) : "" });
      input.value = value !== undefined && value !== null ? value : "";
      input.addEventListener("input", function () {
        if (input.value === "") { set(required ? null : undefined); return; }
        var n = Number(input.value);
        set(isNaN(n) ? input.value : n);
      });
    } else if (types.length === 1 && first.type === "array" && resolve(first.items, root).type === "string" && resolve(first.items, root).enum) {
      var options = resolve(first.items, root).enum;
      var chosen = Array.isArray(value) ? value.slice() : [];
      input = el("div", { "class": "row wrap" });
      options.forEach(function (opt) {
        var box = el("input", { type: "checkbox", value: opt });
        box.checked = chosen.indexOf(opt) >= 0;
        box.addEventListener("change", function () {
          chosen = options.filter(function (o) { return input.querySelector('input[value="' + o + '"]').checked; });
          set(chosen.length ? chosen : undefined);
        });
        input.appendChild(el("label", { "class": "check" }, [box, el("span", { text: opt })]));
      });
    } else if (types.length === 1 && first.type === "array" && resolve(first.items, root).type === "object") {
      input = objectList(ctx, name, first, root, Array.isArray(value) ? value : [], set);
    } else if (types.length === 1 && first.type === "array") {
      input = stringList(Array.isArray(value) ? value : [], set, name);
    } else if (types.length === 1 && first.type === "object" && first.additionalProperties !== false && !first.properties) {
      input = keyValue(ctx, value && typeof value === "object" ? value : {}, set, isTemplate);
    } else if (types.indexOf("object") >= 0 || types.indexOf("array") >= 0 && types.indexOf("string") >= 0 && name === "body") {
      // A JSON value or a template string (http.request body).
      input = el("textarea", { "class": "input mono", rows: 4, placeholder: "JSON, or a template" });
      input.value = value === undefined || value === null ? "" : (typeof value === "string" ? value : JSON.stringify(value, null, 2));
      input.addEventListener("input", function () {
        var text = input.value;
        if (!text.trim()) { set(undefined); return; }
        try { var parsed = JSON.parse(text); set(typeof parsed === "object" ? parsed : text); } catch (e) { set(text); }
      });
    } else {
      // Strings, and strings-or-numbers (sim_slot), strings-or-lists (operand).
      var long = name === "text" || name === "body" || (first.maxLength || 0) > 2000 && isTemplate && name !== "url" && name !== "value";
      input = el(long ? "textarea" : "input", { "class": "input" + (isTemplate ? " mono" : ""), rows: long ? 3 : undefined, placeholder: base["default"] !== undefined && base["default"] !== null ? String(base["default"]) : "" });
      input.value = value === undefined || value === null ? "" : (Array.isArray(value) ? value.join(", ") : String(value));
      input.addEventListener("input", function () {
        var text = input.value;
        if (text === "") { set(required ? "" : undefined); return; }
        if (types.indexOf("integer") >= 0 && /^-?\d+$/.test(text.trim())) { set(parseInt(text, 10)); return; }
        set(text);
      });
    }
    if (isTemplate && input && (input.tagName === "INPUT" || input.tagName === "TEXTAREA")) labelRow.appendChild(templateMenu(ctx.editor, ctx.node, input));
    if (input.tagName) input.setAttribute("data-input", name);
    field.appendChild(input);
    if (base.description) field.appendChild(el("div", { "class": "hint", text: base.description }));
    field.appendChild(el("div", { "class": "error-text hidden", "data-error": name }));
    return field;
  }

  function stringList(values, set, name) {
    var items = values.map(String);
    var box = el("div", { "class": "list-editor" });
    function emit() {
      var clean = items.map(function (s) { return s.trim(); }).filter(Boolean);
      set(clean.length ? clean : undefined);
    }
    function draw() {
      box.innerHTML = "";
      items.forEach(function (item, i) {
        var input = el("input", { "class": "input", value: item, "data-list-item": name + "." + i });
        input.addEventListener("input", function () { items[i] = input.value; emit(); });
        box.appendChild(el("div", { "class": "li" }, [input, el("button", { type: "button", "class": "icon-btn", title: "Remove", html: "&times;", onclick: function () { items.splice(i, 1); emit(); draw(); } })]));
      });
      box.appendChild(el("button", { type: "button", "class": "btn sm", "data-add": name, text: "+ Add", onclick: function () { items.push(""); draw(); var all = box.querySelectorAll("input"); all[all.length - 1].focus(); } }));
    }
    draw();
    return box;
  }

  function keyValue(ctx, object, set, isTemplate) {
    var rows = Object.keys(object).map(function (k) { return [k, typeof object[k] === "string" ? object[k] : JSON.stringify(object[k])]; });
    var box = el("div", { "class": "list-editor kv-editor" });
    function emit() {
      var out = {};
      rows.forEach(function (r) { if (r[0].trim()) out[r[0].trim()] = r[1]; });
      set(Object.keys(out).length ? out : undefined);
    }
    function draw() {
      box.innerHTML = "";
      rows.forEach(function (row, i) {
        var key = el("input", { "class": "input mono", placeholder: "name", value: row[0] });
        var val = el("input", { "class": "input" + (isTemplate ? " mono" : ""), placeholder: "value", value: row[1] });
        key.addEventListener("input", function () { row[0] = key.value; emit(); });
        val.addEventListener("input", function () { row[1] = val.value; emit(); });
        box.appendChild(el("div", { "class": "li" }, [key, val, el("button", { type: "button", "class": "icon-btn", title: "Remove", html: "&times;", onclick: function () { rows.splice(i, 1); emit(); draw(); } })]));
      });
      box.appendChild(el("button", { type: "button", "class": "btn sm", text: "+ Add", onclick: function () { rows.push(["", ""]); draw(); } }));
    }
    draw();
    return box;
  }

  function objectList(ctx, name, schema, root, values, set) {
    var items = clone(values) || [];
    var itemSchema = resolve(schema.items, root);
    var box = el("div", { "class": "list-editor" });
    function emit() { set(items.length ? clone(items) : undefined); }
    function draw() {
      box.innerHTML = "";
      items.forEach(function (item, i) {
        var sub = el("div", { "class": "subform" });
        var required = itemSchema.required || [];
        Object.keys(itemSchema.properties || {}).forEach(function (key) {
          sub.appendChild(buildField(ctx, key, itemSchema.properties[key], root, item[key], function (value) {
            if (value === undefined) delete item[key]; else item[key] = value;
            emit();
          }, required.indexOf(key) >= 0));
        });
        sub.appendChild(el("button", { type: "button", "class": "btn sm ghost", text: "Remove", onclick: function () { items.splice(i, 1); emit(); draw(); } }));
        box.appendChild(sub);
      });
      box.appendChild(el("button", { type: "button", "class": "btn sm", text: "+ Add " + (name === "cases" ? "case" : "item"), onclick: function () { items.push({}); emit(); draw(); } }));
    }
    draw();
    return box;
  }

  // --- the editor ------------------------------------------------------------------------------

  function Editor(options) {
    this.data = options.data;
    this.catalog = options.catalog;
    this.canvas = options.canvas;
    this.panel = options.panel;
    this.palette = options.palette;
    this.meta = { name: this.data.draft.name || this.data.name, description: this.data.draft.description || "", ui: this.data.draft.ui };
    this.graph = new Graph(this.canvas, this.catalog, "edit");
    this.selected = null;
    this.problems = this.data.problems || [];
    this.dirty = false;
    this.lastTest = null;
    this.validateTimer = null;
    this.loading = true;
    var dropped = this.graph.load(this.data.draft);
    this.loading = false;
    if (dropped) toast(dropped + " connection(s) could not be drawn (unknown node or port)", "err");
    this.bind();
    this.buildPalette();
    this.showProblems();
    this.renderPanel();
    var self = this;
    requestAnimationFrame(function () { self.graph.fit(); self.updateHint(); });
  }

  Editor.prototype.document = function () { return this.graph.toDocument(this.meta); };

  Editor.prototype.bind = function () {
    var self = this;
    var df = this.graph.df;
    df.on("nodeSelected", function (id) { self.select(String(id)); });
    df.on("nodeUnselected", function () { self.select(null); });
    df.on("nodeRemoved", function (id) {
      delete self.graph.nodes[String(id)];
      if (self.selected === String(id)) self.select(null);
      self.changed();
    });
    df.on("nodeMoved", function () { self.changed(false); });
    df.on("connectionCreated", function (c) {
      if (self.loading) return;
      var from = String(c.output_id), to = String(c.input_id);
      var data = df.getNodeFromId(from);
      var conns = data.outputs[c.output_class].connections || [];
      if (conns.length > 1) {
        df.removeSingleConnection(from, to, c.output_class, c.input_class);
        toast("A port leads to one node — remove its other connection first", "err");
        return;
      }
      if (from === to) {
        df.removeSingleConnection(from, to, c.output_class, c.input_class);
        return;
      }
      self.graph.styleConnections();
      self.changed();
    });
    df.on("connectionRemoved", function () { if (!self.loading) self.changed(); });

    // Drag from the palette, drop on the canvas.
    this.canvas.addEventListener("dragover", function (evt) { evt.preventDefault(); });
    this.canvas.addEventListener("drop", function (evt) {
      evt.preventDefault();
      var type = evt.dataTransfer.getData("text/x-node-type") || evt.dataTransfer.getData("text/plain");
      if (!type || !self.graph.types[type]) return;
      var point = self.toCanvas(evt.clientX, evt.clientY);
      self.addNode(type, point.x - 110, point.y - 30);
    });
    document.addEventListener("keydown", function (evt) {
      if ((evt.ctrlKey || evt.metaKey) && evt.key === "s") { evt.preventDefault(); self.save(); }
    });
    window.addEventListener("beforeunload", function (evt) {
      if (self.dirty) { evt.preventDefault(); evt.returnValue = ""; }
    });
  };

  Editor.prototype.toCanvas = function (clientX, clientY) {
    var df = this.graph.df;
    var rect = df.precanvas.getBoundingClientRect();
    return { x: (clientX - rect.x) / df.zoom, y: (clientY - rect.y) / df.zoom };
  };

  Editor.prototype.buildPalette = function () {
    var self = this;
    var list = this.palette.querySelector("[data-palette-list]");
    var search = this.palette.querySelector("input[type=search]");
    function draw() {
      var q = (search.value || "").toLowerCase();
      list.innerHTML = "";
      var groups = {};
      self.catalog.forEach(function (entry) {
        var hay = (entry.title + " " + entry.type + " " + entry.description).toLowerCase();
        if (q && hay.indexOf(q) < 0) return;
        (groups[entry.category] = groups[entry.category] || []).push(entry);
      });
      Object.keys(CATEGORY_TITLES).forEach(function (cat) {
        if (!groups[cat]) return;
        var group = el("div", { "class": "palette-group" }, [el("h4", { text: CATEGORY_TITLES[cat] })]);
        groups[cat].forEach(function (entry) {
          var item = el("div", {
            "class": "palette-item", draggable: "true", title: entry.description, "data-node-type": entry.type,
            ondragstart: function (evt) {
              evt.dataTransfer.setData("text/x-node-type", entry.type);
              evt.dataTransfer.setData("text/plain", entry.type);
              evt.dataTransfer.effectAllowed = "copy";
            },
            ondblclick: function () { self.addNodeInView(entry.type); }
          }, [
            el("span", { "class": "node-icon cat-" + entry.category, html: svgIcon(entry.category) }),
            el("div", { style: "min-width:0" }, [el("div", { "class": "p-title", text: entry.title }), el("div", { "class": "p-type", text: entry.type })])
          ]);
          group.appendChild(item);
        });
        list.appendChild(group);
      });
    }
    search.addEventListener("input", draw);
    draw();
  };

  Editor.prototype.newId = function (type) {
    var base = SHORT_IDS[type] || type.split(".").pop();
    var taken = {};
    var self = this;
    Object.keys(this.graph.nodes).forEach(function (k) { taken[self.graph.nodes[k].nid] = true; });
    if (!taken[base]) return base;
    for (var i = 2; ; i++) if (!taken[base + "_" + i]) return base + "_" + i;
  };

  Editor.prototype.addNode = function (type, x, y) {
    var node = { nid: this.newId(type), type: type, config: {}, retry: null, ui: {} };
    var dfId = this.graph.addNode(node, Math.round(x), Math.round(y));
    this.changed();
    this.updateHint();
    this.selectNode(dfId);
    return dfId;
  };
  Editor.prototype.addNodeInView = function (type) {
    var rect = this.canvas.getBoundingClientRect();
    var count = Object.keys(this.graph.nodes).length;
    var point = this.toCanvas(rect.x + rect.width / 2 - 60 + (count % 4) * 24, rect.y + rect.height / 2 - 80 + (count % 4) * 24);
    return this.addNode(type, point.x - 110, point.y);
  };
  Editor.prototype.selectNode = function (dfId) {
    this.canvas.querySelectorAll(".drawflow-node.selected").forEach(function (n) { n.classList.remove("selected"); });
    var element = this.graph.element(dfId);
    if (element) element.classList.add("selected");
    this.graph.df.node_selected = element;
    this.select(dfId);
  };
  Editor.prototype.updateHint = function () {
    var hint = document.querySelector("[data-canvas-hint]");
    if (hint) hint.classList.toggle("hidden", Object.keys(this.graph.nodes).length > 0);
  };

  Editor.prototype.select = function (dfId) {
    this.selected = dfId && this.graph.nodes[dfId] ? dfId : null;
    this.renderPanel();
  };

  Editor.prototype.changed = function (revalidate) {
    this.dirty = true;
    this.setSaveState("Unsaved changes");
    if (revalidate === false) return;
    var self = this;
    clearTimeout(this.validateTimer);
    this.validateTimer = setTimeout(function () { self.validate(); }, 350);
  };

  Editor.prototype.setSaveState = function (text) {
    var state = document.querySelector("[data-save-state]");
    if (state) state.textContent = text;
  };

  Editor.prototype.validate = function () {
    var self = this;
    return api("POST", "/api/v1/flows/validate", this.document()).then(function (resp) {
      if (resp.ok) { self.problems = resp.data || []; self.showProblems(); }
    });
  };

  Editor.prototype.showProblems = function () {
    var self = this;
    var byNode = {};
    var general = [];
    this.problems.forEach(function (p) {
      if (p.node_id && self.graph.dfIdOf(p.node_id)) (byNode[p.node_id] = byNode[p.node_id] || []).push(p);
      else general.push(p);
    });
    Object.keys(this.graph.nodes).forEach(function (dfId) {
      var node = self.graph.nodes[dfId];
      var element = self.graph.element(dfId);
      if (!element) return;
      var found = byNode[node.nid] || [];
      element.classList.toggle("has-problem", found.length > 0);
      var badges = element.querySelector(".fnode-badges");
      if (badges) {
        badges.innerHTML = "";
        found.slice(0, 2).forEach(function (p) {
          badges.appendChild(el("span", { "class": "fnode-problem", text: (p.field ? p.field.replace(/^config\./, "") + ": " : "") + p.message }));
        });
        if (found.length > 2) badges.appendChild(el("span", { "class": "fnode-problem", text: "+" + (found.length - 2) + " more" }));
      }
    });
    var banner = document.querySelector("[data-flow-banner]");
    if (banner) {
      banner.innerHTML = "";
      general.slice(0, 3).forEach(function (p) {
        banner.appendChild(el("div", { "class": "alert alert-warn", style: "margin:0 0 6px", text: p.message }));
      });
    }
    var count = document.querySelector("[data-problem-count]");
    if (count) {
      count.textContent = this.problems.length ? this.problems.length + " problem" + (this.problems.length > 1 ? "s" : "") : "Ready to publish";
      count.className = "pill " + (this.problems.length ? "failed" : "ok");
    }
    this.showFieldErrors();
  };

  Editor.prototype.showFieldErrors = function () {
    if (!this.selected) return;
    var node = this.graph.nodes[this.selected];
    var panel = this.panel;
    panel.querySelectorAll("[data-error]").forEach(function (e) { e.classList.add("hidden"); e.textContent = ""; });
    panel.querySelectorAll(".field.has-error").forEach(function (f) { f.classList.remove("has-error"); });
    var general = panel.querySelector("[data-node-problems]");
    if (general) general.innerHTML = "";
    this.problems.forEach(function (p) {
      if (p.node_id !== node.nid) return;
      var path = (p.field || "").replace(/^config\./, "").split(".");
      var target = panel.querySelector('[data-error="' + path[0] + '"]');
      var text = (path.length > 1 ? path.slice(1).join(".") + ": " : "") + p.message;
      if (target && (p.field || "").indexOf("config.") === 0) {
        target.textContent = target.textContent ? target.textContent + "; " + text : text;
        target.classList.remove("hidden");
        target.parentNode.classList.add("has-error");
      } else if (general) {
        general.appendChild(el("div", { "class": "alert alert-error", style: "margin-bottom:8px", text: p.message }));
      }
    });
  };

  Editor.prototype.variables = function (current) {
    var groups = [];
    var self = this;
    var nodes = Object.keys(this.graph.nodes).map(function (k) { return self.graph.nodes[k]; });
    var triggers = nodes.filter(function (n) { return self.graph.spec(n.type).category === "trigger"; });
    var trig = ["trigger.data.body", "trigger.data.from", "trigger.data.to", "trigger.data.channel_id", "trigger.data.sim_slot", "trigger.type"];
    if (triggers.some(function (n) { return n.type === "trigger.http"; })) trig = trig.concat(["trigger.phone", "trigger.name"]);
    groups.push({ title: "Trigger", items: trig });
    groups.push({ title: "Contact", items: ["contact.phone", "contact.opted_out", "contact.tags", "contact.fields.name"] });
    var vars = [];
    nodes.forEach(function (n) {
      if (n.type === "data.set") Object.keys((n.config || {}).vars || {}).forEach(function (k) { if (vars.indexOf("vars." + k) < 0) vars.push("vars." + k); });
    });
    if (vars.length) groups.push({ title: "Variables", items: vars });
    nodes.forEach(function (n) {
      if (current && n.nid === current.nid) return;
      var hints = OUTPUT_HINTS[n.type] || [];
      if (!hints.length) return;
      groups.push({ title: "Step " + n.nid, items: hints.map(function (h) { return "steps." + n.nid + ".output." + h; }) });
    });
    return groups;
  };

  Editor.prototype.renderPanel = function () {
    var self = this;
    var panel = this.panel;
    panel.innerHTML = "";
    if (!this.selected) { this.renderFlowPanel(); return; }
    var dfId = this.selected;
    var node = this.graph.nodes[dfId];
    var spec = this.graph.spec(node.type);
    var schema = spec.config_schema || { properties: {} };
    panel.appendChild(el("div", { "class": "panel-head" }, [
      el("span", { "class": "node-icon cat-" + spec.category, html: svgIcon(spec.category) }),
      el("div", { "class": "grow", style: "min-width:0" }, [el("h3", { text: spec.title }), el("div", { "class": "p-type faint small mono", text: node.type })]),
      el("button", { type: "button", "class": "btn sm ghost", title: "Delete node", "data-delete-node": "1", html: '<svg class="icon" viewBox="0 0 24 24"><path d="M3 6h18"/><path d="M19 6v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6"/><path d="M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2"/></svg>', onclick: function () { self.graph.df.removeNodeId("node-" + dfId); self.updateHint(); } })
    ]));
    var body = el("div", { "class": "panel-body" });
    body.appendChild(el("p", { "class": "desc", text: spec.description }));
    body.appendChild(el("div", { "data-node-problems": "1" }));

    // The node id (steps.<id> in templates).
    var idInput = el("input", { "class": "input mono", value: node.nid, "data-input": "__id" });
    var idError = el("div", { "class": "error-text hidden" });
    idInput.addEventListener("change", function () {
      var value = idInput.value.trim();
      var clash = Object.keys(self.graph.nodes).some(function (k) { return k !== dfId && self.graph.nodes[k].nid === value; });
      if (!NODE_ID_RE.test(value) || clash) {
        idError.textContent = clash ? "another node has this id" : "letters, digits, _ and -; starts with a letter";
        idError.classList.remove("hidden");
        return;
      }
      idError.classList.add("hidden");
      node.nid = value;
      self.graph.refreshNode(dfId);
      self.changed();
    });
    body.appendChild(el("div", { "class": "field" }, [el("label", { "class": "label", text: "Node ID" }), idInput,
      el("div", { "class": "hint", text: "Other steps read this node's output as steps." + node.nid + ".output.*" }), idError]));

    var ctx = new FieldContext(this, node);
    var required = schema.required || [];
    Object.keys(schema.properties || {}).forEach(function (name) {
      body.appendChild(buildField(ctx, name, schema.properties[name], schema, (node.config || {})[name], function (value) {
        if (value === undefined) delete node.config[name]; else node.config[name] = value;
        if (node.type === "logic.switch" && name === "cases") self.graph.syncPorts(dfId);
        self.refreshSummary(dfId);
        self.changed();
      }, required.indexOf(name) >= 0));
    });
    if (spec.error_port) body.appendChild(this.retryFields(node));
    var ports = node.ports.filter(function (p) { return p !== "next"; });
    if (ports.length) body.appendChild(el("div", { "class": "hint", style: "margin-top:6px" }, ["Outputs: " + node.ports.join(", ") + (spec.ports_from_config ? " (" + spec.ports_from_config + ")" : "")]));
    panel.appendChild(body);
    this.showFieldErrors();
  };

  Editor.prototype.refreshSummary = function (dfId) {
    var element = this.graph.element(dfId);
    if (!element) return;
    var box = element.querySelector(".fnode-summary");
    if (box) box.textContent = summary(this.graph.nodes[dfId]);
    this.graph.df.updateConnectionNodes("node-" + dfId);
  };

  Editor.prototype.retryFields = function (node) {
    var self = this;
    var retry = node.retry || {};
    var box = el("details", { "class": "subform", style: "margin-top:8px" });
    if (node.retry) box.setAttribute("open", "");
    box.appendChild(el("summary", { "class": "label", style: "cursor:pointer", text: "Retry on failure" }));
    function numberField(key, label, hint, min, max) {
      var input = el("input", { "class": "input", type: "number", min: min, max: max, step: "any", value: retry[key] !== undefined ? retry[key] : "" , placeholder: key === "attempts" ? "1" : "0" });
      input.addEventListener("input", function () {
        var value = input.value === "" ? undefined : Number(input.value);
        var next = Object.assign({}, node.retry || {});
        if (value === undefined || isNaN(value)) delete next[key]; else next[key] = value;
        node.retry = Object.keys(next).length ? next : null;
        self.changed();
      });
      return el("div", { "class": "field" }, [el("label", { "class": "label", text: label }), input, el("div", { "class": "hint", text: hint })]);
    }
    box.appendChild(numberField("attempts", "Attempts", "Total tries, the first included (1–10).", 1, 10));
    box.appendChild(numberField("backoff_s", "Wait before retrying (seconds)", "Doubles after each retry.", 0, 86400));
    return box;
  };

  Editor.prototype.renderFlowPanel = function () {
    var self = this;
    var panel = this.panel;
    panel.appendChild(el("div", { "class": "panel-head" }, [el("div", { "class": "grow" }, [el("h3", { text: "Flow settings" }), el("div", { "class": "faint small", text: "Select a node to edit it" })])]));
    var body = el("div", { "class": "panel-body" });
    var desc = el("textarea", { "class": "input", rows: 3, placeholder: "What this flow does" });
    desc.value = this.meta.description || "";
    desc.addEventListener("input", function () { self.meta.description = desc.value; self.changed(false); });
    body.appendChild(el("div", { "class": "field" }, [el("label", { "class": "label", text: "Description" }), desc]));
    var hasHttp = Object.keys(this.graph.nodes).some(function (k) { return self.graph.nodes[k].type === "trigger.http"; });
    if (hasHttp) {
      body.appendChild(el("div", { "class": "field" }, [el("label", { "class": "label", text: "HTTP trigger URL" }),
        el("input", { "class": "input mono", readonly: true, value: this.data.http_trigger_url, onclick: function (e) { e.target.select(); } }),
        el("div", { "class": "hint", text: "POST JSON here (Zapier, Make, n8n) to start the published flow." })]));
    }
    var problems = el("div", {});
    if (this.problems.length) {
      problems.appendChild(el("div", { "class": "label", style: "margin-bottom:6px", text: "Problems" }));
      this.problems.forEach(function (p) {
        problems.appendChild(el("div", { "class": "alert alert-error", style: "margin-bottom:6px;cursor:pointer", text: (p.node_id ? p.node_id + ": " : "") + p.message, onclick: function () {
          var dfId = p.node_id && self.graph.dfIdOf(p.node_id);
          if (dfId) self.selectNode(dfId);
        } }));
      });
    } else if (Object.keys(this.graph.nodes).length) {
      problems.appendChild(el("div", { "class": "alert alert-ok", text: "No problems: this draft can be published." }));
    }
    body.appendChild(problems);
    body.appendChild(el("div", { "class": "label", style: "margin:14px 0 6px", text: "Templates" }));
    body.appendChild(el("p", { "class": "desc", html: "Text fields are Jinja templates: <code>{{ trigger.data.body }}</code>, <code>{{ contact.phone }}</code>, <code>{{ vars.name }}</code>, <code>{{ steps.ask.output.body }}</code>. Use the <b>{ }</b> button next to a field to insert one." }));
    panel.appendChild(body);
  };

  // --- saving, publishing, versions ---------------------------------------------------------

  Editor.prototype.save = function () {
    var self = this;
    var name = document.querySelector("[data-flow-name]");
    if (name) this.meta.name = name.value.trim() || this.meta.name;
    this.setSaveState("Saving…");
    return api("PUT", "/api/v1/flows/" + this.data.id, this.document()).then(function (resp) {
      if (!resp.ok) {
        self.setSaveState("Not saved");
        toast((resp.data && resp.data.error && resp.data.error.message) || "Could not save", "err");
        return false;
      }
      self.dirty = false;
      self.problems = resp.data.problems || [];
      self.showProblems();
      if (!self.selected) self.renderPanel();
      self.setSaveState("Draft saved");
      return true;
    });
  };

  Editor.prototype.publish = function () {
    var self = this;
    return this.save().then(function (saved) {
      if (!saved) return;
      return api("POST", "/api/v1/flows/" + self.data.id + "/publish", { note: "" }).then(function (resp) {
        if (resp.ok) {
          self.data.published_version = resp.data.version;
          self.data.latest_version = resp.data.version;
          var pill = document.querySelector("[data-status-pill]");
          if (pill) { pill.className = "pill published"; pill.textContent = "Live · v" + resp.data.version; }
          toast("Published version " + resp.data.version, "ok");
          self.setSaveState("Published v" + resp.data.version);
        } else {
          var err = (resp.data && resp.data.error) || {};
          if (err.details) { self.problems = err.details; self.showProblems(); }
          toast(err.message || "Could not publish", "err");
        }
      });
    });
  };

  Editor.prototype.showVersions = function () {
    var self = this;
    api("GET", "/api/v1/flows/" + this.data.id + "/versions").then(function (resp) {
      var back = el("div", { "class": "modal-back", onclick: function (e) { if (e.target === back) back.remove(); } });
      var card = el("div", { "class": "card modal" });
      card.appendChild(el("div", { "class": "card-head" }, [el("div", {}, [el("h2", { text: "Versions" }), el("p", { text: "Published versions are frozen; runs keep the version they started on." })]),
        el("button", { type: "button", "class": "btn sm ghost", text: "Close", onclick: function () { back.remove(); } })]));
      var list = resp.ok ? resp.data : [];
      if (!list.length) card.appendChild(el("div", { "class": "empty", text: "Nothing published yet. Publish to create version 1." }));
      list.forEach(function (v) {
        var live = v.version === self.data.published_version;
        card.appendChild(el("div", { "class": "version-item" }, [
          el("span", { "class": "pill " + (live ? "published" : "plain"), text: "v" + v.version + (live ? " · live" : "") }),
          el("div", { "class": "grow small muted", text: new Date(v.created_at).toLocaleString() + (v.note ? " — " + v.note : "") }),
          el("a", { "class": "btn sm ghost", href: "/api/v1/flows/" + self.data.id + "/export?version=" + v.version, target: "_blank", text: "JSON" }),
          el("button", { type: "button", "class": "btn sm", text: "Load into editor", onclick: function () {
            api("GET", "/api/v1/flows/" + self.data.id + "/versions/" + v.version).then(function (r) {
              if (!r.ok) return;
              self.replaceDocument(r.data.definition);
              back.remove();
              toast("Version " + v.version + " loaded — save to keep it as the draft");
            });
          } })
        ]));
      });
      back.appendChild(card);
      document.body.appendChild(back);
    });
  };

  Editor.prototype.replaceDocument = function (doc) {
    this.graph.df.clear();
    this.graph.nodes = {};
    this.loading = true;
    this.graph.load(doc);
    this.loading = false;
    this.meta.description = doc.description || "";
    this.select(null);
    this.graph.fit();
    this.updateHint();
    this.changed();
  };

  // --- test runs -------------------------------------------------------------------------

  Editor.prototype.testRun = function (payload, url) {
    var self = this;
    var out = document.querySelector("[data-test-output]");
    out.innerHTML = '<div class="muted">Running…</div>';
    return api("POST", url, payload).then(function (resp) {
      if (!resp.ok) {
        var err = (resp.data && resp.data.error) || {};
        out.innerHTML = "";
        out.appendChild(el("div", { "class": "alert alert-error", text: err.message || "The test could not run" }));
        return;
      }
      self.lastTest = resp.data;
      self.renderTest(resp.data);
    });
  };

  Editor.prototype.renderTest = function (result) {
    var self = this;
    var out = document.querySelector("[data-test-output]");
    out.innerHTML = "";
    if (result.problems && result.problems.length) {
      this.problems = result.problems;
      this.showProblems();
      out.appendChild(el("div", { "class": "alert alert-error", text: "Fix the problems on the canvas first (" + result.problems.length + ")." }));
      return;
    }
    document.querySelectorAll("[data-test-followup]").forEach(function (e) { e.classList.toggle("hidden", !result.session); });
    if (!result.runs.length) {
      this.graph.clearMarks();
      out.appendChild(el("div", { "class": "alert alert-warn", text: "No trigger matched: the flow would not start for this message." }));
      return;
    }
    var run = result.runs[result.runs.length - 1];
    this.graph.markPath(run.steps);
    var waiting = run.status === "waiting";
    document.querySelectorAll("[data-test-reply]").forEach(function (e) { e.classList.toggle("hidden", !waiting); });
    var head = el("div", { "class": "row", style: "margin-bottom:10px" }, [
      el("span", { "class": "pill " + run.status, "data-test-status": run.status, text: run.status }),
      el("span", { "class": "small muted", text: run.steps.length + " step" + (run.steps.length === 1 ? "" : "s") + (run.error ? " · " + run.error : "") })
    ]);
    out.appendChild(head);
    if (result.sms.length) {
      var log = el("div", { "class": "sms-log" });
      result.sms.forEach(function (s) {
        log.appendChild(el("div", { "class": "bubble-row out" + (s.status === "suppressed" ? " suppressed" : "") }, [
          el("div", { "class": "bubble", "data-test-sms": "1", text: s.text }),
          el("div", { "class": "bubble-meta", text: "to " + s.to + (s.status === "suppressed" ? " · suppressed (" + s.reason + ")" : " · would be sent") })
        ]));
      });
      out.appendChild(log);
    }
    result.http.forEach(function (h) {
      out.appendChild(el("div", { "class": "alert alert-info", style: "margin-bottom:8px", text: h.method + " " + h.url + " → " + h.status + " (simulated, nothing was sent)" }));
    });
    var timeline = el("div", { "class": "timeline" });
    run.steps.forEach(function (step, i) {
      var spec = self.graph.spec(step.node_type);
      var details = el("details", { "class": "tl-step", "data-step": step.node_id });
      details.appendChild(el("summary", {}, [
        el("span", { "class": "node-icon cat-" + spec.category, html: svgIcon(spec.category) }),
        el("b", { text: (i + 1) + ". " + step.node_id }), el("span", { "class": "faint small", text: spec.title }),
        el("span", { "class": "grow" }),
        step.port ? el("span", { "class": "small muted", text: "→ " + step.port }) : null,
        el("span", { "class": "pill " + step.status, text: step.status })
      ]));
      var body = el("div", { "class": "tl-body" });
      if (step.error) body.appendChild(el("div", {}, [el("h5", { text: "Error" }), el("pre", { "class": "err", text: step.error })]));
      body.appendChild(el("div", {}, [el("h5", { text: "Input (rendered config)" }), el("pre", { text: JSON.stringify(step.input, null, 2) })]));
      body.appendChild(el("div", {}, [el("h5", { text: "Output" }), el("pre", { text: JSON.stringify(step.output, null, 2) })]));
      details.appendChild(body);
      timeline.appendChild(details);
    });
    out.appendChild(timeline);
  };

  // --- mounting ---------------------------------------------------------------------------

  function loadCatalog() {
    return api("GET", "/api/v1/node-types").then(function (resp) {
      if (!resp.ok) throw new Error("could not load node types");
      return resp.data;
    });
  }

  function mountEditor() {
    var data = JSON.parse(document.getElementById("flow-data").textContent);
    loadCatalog().then(function (catalog) {
      var editor = new Editor({
        data: data, catalog: catalog,
        canvas: document.getElementById("drawflow"),
        panel: document.querySelector("[data-panel]"),
        palette: document.querySelector("[data-palette]")
      });
      window.smshubEditor = editor;
      wireToolbar(editor, data);
    }).catch(function (err) { toast(String(err), "err"); });
  }

  function wireToolbar(editor, data) {
    function on(selector, handler) {
      document.querySelectorAll(selector).forEach(function (node) { node.addEventListener("click", handler); });
    }
    on("[data-action=save]", function () { editor.save(); });
    on("[data-action=publish]", function () { editor.publish(); });
    on("[data-action=versions]", function () { editor.showVersions(); });
    on("[data-action=fit]", function () { editor.graph.fit(); });
    on("[data-action=zoom-in]", function () { editor.graph.df.zoom_in(); });
    on("[data-action=zoom-out]", function () { editor.graph.df.zoom_out(); });
    var drawer = document.querySelector("[data-test-drawer]");
    on("[data-action=test]", function () {
      drawer.classList.toggle("hidden");
      var text = drawer.querySelector("[name=text]");
      var first = null;
      Object.keys(editor.graph.nodes).forEach(function (k) {
        var n = editor.graph.nodes[k];
        if (!first && n.type === "trigger.sms_received" && (n.config.keywords || []).length) first = n.config.keywords[0];
        if (n.type === "trigger.sms_received" && (n.config.channels || []).length) drawer.querySelector("[name=channel_id]").value = n.config.channels[0];
      });
      if (text && !text.value && first) text.value = first;
      editor.graph.df.updateConnectionNodes && Object.keys(editor.graph.nodes).forEach(function (k) { editor.graph.df.updateConnectionNodes("node-" + k); });
    });
    on("[data-action=close-test]", function () { drawer.classList.add("hidden"); editor.graph.clearMarks(); });
    var form = drawer.querySelector("form[data-test-form]");
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var mode = form.querySelector("[name=mode]").value;
      var body = null;
      if (mode === "http") {
        try { body = JSON.parse(form.querySelector("[name=body]").value || "{}"); }
        catch (e) { toast("The HTTP body is not valid JSON", "err"); return; }
      }
      editor.testRun({
        document: editor.document(), mode: mode,
        text: form.querySelector("[name=text]").value,
        from: form.querySelector("[name=from]").value,
        channel_id: form.querySelector("[name=channel_id]").value,
        body: body
      }, "/flows/" + data.id + "/test-run");
    });
    form.querySelector("[name=mode]").addEventListener("change", function (evt) {
      var http = evt.target.value === "http";
      form.querySelectorAll("[data-mode=sms]").forEach(function (e) { e.classList.toggle("hidden", http); });
      form.querySelectorAll("[data-mode=http]").forEach(function (e) { e.classList.toggle("hidden", !http); });
    });
    var replyForm = drawer.querySelector("form[data-test-reply]");
    replyForm.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var sid = editor.lastTest && editor.lastTest.session;
      if (!sid) return;
      editor.testRun({ text: replyForm.querySelector("[name=reply]").value }, "/flows/test-runs/" + sid + "/reply");
      replyForm.querySelector("[name=reply]").value = "";
    });
    on("[data-action=test-timeout]", function () {
      var sid = editor.lastTest && editor.lastTest.session;
      if (sid) editor.testRun({}, "/flows/test-runs/" + sid + "/advance");
    });
    var nameInput = document.querySelector("[data-flow-name]");
    if (nameInput) nameInput.addEventListener("input", function () { editor.meta.name = nameInput.value; editor.changed(false); });
  }

  /** Read-only graph of a run: statuses on the nodes, click a node to see its steps. */
  function mountViewer() {
    var payload = JSON.parse(document.getElementById("run-data").textContent);
    if (!payload.definition) return;
    loadCatalog().then(function (catalog) {
      var container = document.getElementById("drawflow");
      var graph = new Graph(container, catalog, "view");
      graph.load(payload.definition);
      graph.markPath(payload.steps);
      graph.dimUnvisited();
      requestAnimationFrame(function () { graph.fit(1.2); });
      container.addEventListener("click", function (evt) {
        var nodeEl = evt.target.closest(".drawflow-node");
        if (!nodeEl) return;
        var nid = graph.nodes[nodeEl.id.replace("node-", "")].nid;
        var first = null;
        document.querySelectorAll("[data-step]").forEach(function (d) {
          var hit = d.getAttribute("data-step") === nid;
          d.classList.toggle("highlight", hit);
          if (hit) { d.open = true; if (!first) first = d; }
        });
        if (first) first.scrollIntoView({ behavior: "smooth", block: "nearest" });
      });
      window.smshubRunGraph = graph;
    }).catch(function (err) { toast(String(err), "err"); });
  }

  window.SmshubFlows = { mountEditor: mountEditor, mountViewer: mountViewer, summary: summary };
})();
