/* Editor methods for the right-hand panel: the selected node's form (id, config fields
 * from its schema, retry policy) or, with nothing selected, the flow's settings; and the
 * problems the server reported, on the nodes, in the banner and next to the fields. */

import { el, svgIcon } from "./dom.js";
import { FieldContext, buildField } from "./forms.js";
import { summary } from "./summary.js";

/** Mixed into Editor.prototype (editor.js). */
export var panelMethods = {};

panelMethods.showProblems = function () {
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

panelMethods.showFieldErrors = function () {
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

panelMethods.renderPanel = function () {
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
    if (!self.graph.validId(value) || clash) {
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
      if (spec.port_list && name === spec.port_list.field) self.graph.syncPorts(dfId);
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

panelMethods.refreshSummary = function (dfId) {
  var element = this.graph.element(dfId);
  if (!element) return;
  var box = element.querySelector(".fnode-summary");
  if (box) box.textContent = summary(this.graph.nodes[dfId]);
  this.graph.df.updateConnectionNodes("node-" + dfId);
};

panelMethods.retryFields = function (node) {
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

panelMethods.renderFlowPanel = function () {
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
