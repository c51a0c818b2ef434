/* Editor methods for keeping a flow: save the draft, publish it, and the versions
 * dialog (load any published version back into the editor, export its JSON). */

import { api, el, toast } from "./dom.js";

/** Mixed into Editor.prototype (editor.js). */
export var publishMethods = {};

publishMethods.save = function () {
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

publishMethods.publish = function () {
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

publishMethods.showVersions = function () {
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

publishMethods.replaceDocument = function (doc) {
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
