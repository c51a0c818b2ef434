/* Editor methods for the palette: the node types of the catalog by category, searchable,
 * dragged (or double-clicked) onto the canvas; and the id a new node gets. */

import { el, svgIcon } from "./dom.js";

// Palette groups, in this order (the catalog's categories).
var CATEGORY_TITLES = { trigger: "Triggers", logic: "Logic", data: "Data", sms: "SMS", http: "HTTP", contact: "Contacts", flow: "Flow control" };

/** Mixed into Editor.prototype (editor.js). */
export var paletteMethods = {};

paletteMethods.buildPalette = function () {
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

/** The type's id prefix from the catalog (`reply`), numbered if taken (`reply_2`). */
paletteMethods.newId = function (type) {
  var base = this.graph.spec(type).id_prefix;
  var taken = {};
  var self = this;
  Object.keys(this.graph.nodes).forEach(function (k) { taken[self.graph.nodes[k].nid] = true; });
  if (!taken[base]) return base;
  for (var i = 2; ; i++) if (!taken[base + "_" + i]) return base + "_" + i;
};
