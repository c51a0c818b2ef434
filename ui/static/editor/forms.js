/* The config panel's form, generated from a node type's JSON schema (the catalog's
 * `config_schema`), and the { } menu of template variables next to template fields.
 * Each field writes through `set(value)`; undefined removes the key from the config.
 */

import { clone, el } from "./dom.js";

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

// --- fields -----------------------------------------------------------------------------

/** What a field needs besides its schema: the editor (for the variables menu) and its node. */
export function FieldContext(editor, node) {
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
      variables(editor.graph, node).forEach(function (group) {
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
export function buildField(ctx, name, schema, root, value, set, required) {
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
  } else if (types.length === 1 && first.type === "object" && first.properties) {
    input = subForm(ctx, first, root, value && typeof value === "object" ? value : {}, set);
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
    box.appendChild(el("button", { type: "button", "class": "btn sm", text: "+ Add " + ({ cases: "case", branches: "branch" }[name] || "item"), onclick: function () { items.push({}); emit(); draw(); } }));
  }
  draw();
  return box;
}

/** A nested object with known properties (trigger.schedule's `every`): one field each;
 * the object is left out while every field is empty. */
function subForm(ctx, schema, root, value, set) {
  var current = Object.assign({}, value);
  var box = el("div", { "class": "subform" });
  Object.keys(schema.properties).forEach(function (key) {
    box.appendChild(buildField(ctx, key, schema.properties[key], root, current[key], function (v) {
      if (v === undefined || v === null || v === "") delete current[key]; else current[key] = v;
      set(Object.keys(current).length ? Object.assign({}, current) : undefined);
    }));
  });
  return box;
}

// --- the variables menu -------------------------------------------------------------------

/** The template variables a node can use, in groups: trigger, contact, vars, other steps'
 * outputs (the keys each type's catalog entry lists in `outputs`). */
export function variables(graph, current) {
  var groups = [];
  var nodes = Object.keys(graph.nodes).map(function (k) { return graph.nodes[k]; });
  var triggers = nodes.filter(function (n) { return graph.spec(n.type).category === "trigger"; });
  var trig = ["trigger.data.body", "trigger.data.from", "trigger.data.to", "trigger.data.channel_id", "trigger.data.sim_slot", "trigger.type"];
  if (triggers.some(function (n) { return n.type === "trigger.http"; })) trig = trig.concat(["trigger.phone", "trigger.name"]);
  if (triggers.some(function (n) { return n.type === "trigger.schedule"; })) trig = trig.concat(["trigger.data.scheduled_at", "trigger.data.fired_at", "trigger.data.group_id"]);
  if (triggers.some(function (n) { return n.type === "trigger.run_failed"; })) trig = trig.concat(["trigger.data.run_id", "trigger.data.flow_id", "trigger.data.flow_name", "trigger.data.error", "trigger.data.failed_node_id"]);
  groups.push({ title: "Trigger", items: trig });
  groups.push({ title: "Contact", items: ["contact.phone", "contact.opted_out", "contact.tags", "contact.fields.name"] });
  var vars = [];
  nodes.forEach(function (n) {
    if (n.type === "data.set") Object.keys((n.config || {}).vars || {}).forEach(function (k) { if (vars.indexOf("vars." + k) < 0) vars.push("vars." + k); });
  });
  if (vars.length) groups.push({ title: "Variables", items: vars });
  nodes.forEach(function (n) {
    if (current && n.nid === current.nid) return;
    var hints = graph.spec(n.type).outputs || [];
    if (!hints.length) return;
    groups.push({ title: "Step " + n.nid, items: hints.map(function (h) { return "steps." + n.nid + ".output." + h; }) });
  });
  return groups;
}
