/* Test runs: the editor's current document on the server's in-memory engine (nothing is
 * sent). Editor methods that start a run and show its result (path on the canvas, SMS,
 * HTTP calls, each step's input and output), and the wiring of the test drawer's forms. */

import { api, el, onClick, svgIcon, toast } from "./dom.js";

/** Mixed into Editor.prototype (editor.js). */
export var testRunMethods = {};

testRunMethods.testRun = function (payload, url) {
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

testRunMethods.renderTest = function (result) {
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

/** Show the test form's fields of one start mode (data-mode lists the modes of a field). */
function showMode(form, mode) {
  form.querySelectorAll("[data-mode]").forEach(function (e) { e.classList.toggle("hidden", e.getAttribute("data-mode").split(" ").indexOf(mode) < 0); });
}

/** The test drawer: open and close it, run the test, answer a waiting run, time it out. */
export function wireTestDrawer(editor, data) {
  var drawer = document.querySelector("[data-test-drawer]");
  onClick("[data-action=test]", function () {
    drawer.classList.toggle("hidden");
    var text = drawer.querySelector("[name=text]");
    var first = null;
    Object.keys(editor.graph.nodes).forEach(function (k) {
      var n = editor.graph.nodes[k];
      if (!first && n.type === "trigger.sms_received" && (n.config.keywords || []).length) first = n.config.keywords[0];
      if (n.type === "trigger.sms_received" && (n.config.channels || []).length) drawer.querySelector("[name=channel_id]").value = n.config.channels[0];
    });
    if (text && !text.value && first) text.value = first;
    // A flow started only by a schedule or by failed runs is tested that way.
    var types = Object.keys(editor.graph.nodes).map(function (k) { return editor.graph.nodes[k].type; });
    var mode = types.indexOf("trigger.sms_received") >= 0 ? null : types.indexOf("trigger.schedule") >= 0 ? "schedule" : types.indexOf("trigger.run_failed") >= 0 ? "run_failed" : types.indexOf("trigger.device_status") >= 0 ? "device" : null;
    if (mode) { drawer.querySelector("[name=mode]").value = mode; showMode(drawer.querySelector("form[data-test-form]"), mode); }
    editor.graph.df.updateConnectionNodes && Object.keys(editor.graph.nodes).forEach(function (k) { editor.graph.df.updateConnectionNodes("node-" + k); });
  });
  onClick("[data-action=close-test]", function () { drawer.classList.add("hidden"); editor.graph.clearMarks(); });
  var form = drawer.querySelector("form[data-test-form]");
  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    var mode = form.querySelector("[name=mode]").value;
    var body = null;
    if (mode === "http" || mode === "run_failed" || mode === "device") {
      var source = form.querySelector({ http: "[name=body]", run_failed: "[name=failure]", device: "[name=device]" }[mode]);
      try { body = JSON.parse(source.value || "{}"); }
      catch (e) { toast({ http: "The HTTP body", run_failed: "The failed run", device: "The device event" }[mode] + " is not valid JSON", "err"); return; }
    }
    editor.testRun({
      document: editor.document(), mode: mode,
      text: form.querySelector("[name=text]").value,
      from: form.querySelector("[name=from]").value,
      channel_id: form.querySelector("[name=channel_id]").value,
      body: body
    }, "/flows/" + data.id + "/test-run");
  });
  form.querySelector("[name=mode]").addEventListener("change", function (evt) { showMode(form, evt.target.value); });
  var replyForm = drawer.querySelector("form[data-test-reply]");
  replyForm.addEventListener("submit", function (evt) {
    evt.preventDefault();
    var sid = editor.lastTest && editor.lastTest.session;
    if (!sid) return;
    editor.testRun({ text: replyForm.querySelector("[name=reply]").value }, "/flows/test-runs/" + sid + "/reply");
    replyForm.querySelector("[name=reply]").value = "";
  });
  onClick("[data-action=test-timeout]", function () {
    var sid = editor.lastTest && editor.lastTest.session;
    if (sid) editor.testRun({}, "/flows/test-runs/" + sid + "/advance");
  });
}
