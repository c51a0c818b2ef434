/* The canvas: a flow document drawn on Drawflow (vendored, MIT; the global `Drawflow` from
 * its classic script), shared by the editor and the run viewer.
 *
 * The flow document (DESIGN.md JSON) is the source of truth: every node keeps its id,
 * type, config, retry policy and position in `graph.nodes`; Drawflow draws the graph.
 * Output ports are named: a node's outputs are its type's ports in catalog order, then
 * `error` for nodes that can fail; the port name is shown next to each output.
 * `load` turns a document into the drawing, `toDocument` the drawing back into one.
 */

import { api, clone, el, esc, svgIcon } from "./dom.js";
import { summary } from "./summary.js";

export function Graph(container, catalog, mode) {
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
  // The engine's node id pattern (flows.model.NODE_ID_PATTERN); every entry carries it.
  this.idPattern = new RegExp(catalog.length ? catalog[0].id_pattern : "");
}

Graph.prototype.spec = function (type) {
  return this.types[type] || { type: type, title: type, category: "flow", ports: ["next"], error_port: null, outputs: [], config_schema: { properties: {} } };
};
Graph.prototype.portsFor = function (type, config) {
  var spec = this.spec(type);
  var ports = spec.ports.slice();
  // Dynamic ports (switch cases, random-split branches): the catalog says where they are.
  var list = spec.port_list;
  if (list) {
    ports = [];
    ((config || {})[list.field] || []).forEach(function (item) {
      var name = item && item[list.key];
      if (typeof name === "string" && name && ports.indexOf(name) < 0) ports.push(name);
    });
    spec.ports.forEach(function (p) { if (ports.indexOf(p) < 0) ports.push(p); });
  }
  if (spec.error_port && ports.indexOf(spec.error_port) < 0) ports.push(spec.error_port);
  return ports;
};
/** Whether the engine would accept `nid` as a node id (steps.<id> in templates). */
Graph.prototype.validId = function (nid) { return this.idPattern.test(nid); };
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
  if (base.settings) doc.settings = clone(base.settings);  // no editor for them: kept as they were
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

/** The node types (GET /api/v1/node-types): ports, schemas, id prefixes, output keys. */
export function loadCatalog() {
  return api("GET", "/api/v1/node-types").then(function (resp) {
    if (!resp.ok) throw new Error("could not load node types");
    return resp.data;
  });
}
