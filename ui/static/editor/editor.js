/* The flow editor: one Editor per page, holding the flow's meta data, the graph, the
 * selected node, the problems the server reported and whether there are unsaved changes.
 *
 * This module has the core (events from the canvas, adding and selecting nodes, the
 * debounced server-side validation); the rest of its methods are grouped by concern and
 * mixed into Editor.prototype below: palette.js, panel.js (config panel and problems),
 * publish.js (save, publish, versions) and testrun.js (the test drawer's runs).
 */

import { api, toast } from "./dom.js";
import { Graph } from "./graph.js";
import { paletteMethods } from "./palette.js";
import { panelMethods } from "./panel.js";
import { publishMethods } from "./publish.js";
import { testRunMethods } from "./testrun.js";

/** Mount the editor on the page's canvas, panel and palette with the flow's `data`. */
export function Editor(options) {
  this.data = options.data;
  this.catalog = options.catalog;
  this.canvas = options.canvas;
  this.panel = options.panel;
  this.palette = options.palette;
  this.meta = { name: this.data.draft.name || this.data.name, description: this.data.draft.description || "", ui: this.data.draft.ui, settings: this.data.draft.settings };
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

Object.assign(Editor.prototype, paletteMethods, panelMethods, publishMethods, testRunMethods);
