/* The one-line summary of a node's config, shown on its card on the canvas. */

/** What a node does, in at most 110 characters (e.g. "first word: JOIN"). */
export function summary(node) {
  var c = node.config || {};
  var text = "";
  switch (node.type) {
    case "trigger.sms_received":
      var match = c.match || "first_word";
      if (match === "any") text = "any SMS";
      else if (match === "regex") text = "matches /" + (c.pattern || "") + "/";
      else text = match.replace("_", " ") + ": " + ((c.keywords || []).join(", ") || "—");
      if ((c.groups || []).length) text += " · in " + c.groups.join(", ");
      if ((c.exclude_groups || []).length) text += " · not " + c.exclude_groups.join(", ");
      break;
    case "trigger.schedule":
      var every = c.every || {};
      var unit = ["minutes", "hours", "days"].filter(function (u) { return every[u]; })[0];
      text = c.cron ? "cron " + c.cron : unit ? "every " + every[unit] + " " + unit : "—";
      text += " · " + (c.timezone || "UTC") + (c.group_id ? " · group " + c.group_id : "");
      break;
    case "trigger.run_failed": text = (c.flows || []).length ? "runs of " + c.flows.join(", ") + " fail" : "any run fails"; break;
    case "trigger.device_status": text = "a phone goes " + ((c.states || ["offline"]).join(" / ")) + ((c.devices || []).length ? " (" + c.devices.join(", ") + ")" : ""); break;
    case "trigger.delivery_status": text = (c.statuses || []).join(", "); break;
    case "trigger.http": text = c.description || "POST to the flow's URL"; break;
    case "logic.condition": text = (c.value || "") + " " + (c.operator || "equals") + " " + (Array.isArray(c.operand) ? c.operand.join(", ") : (c.operand || "")); break;
    case "logic.switch": text = (c.value || "") + " → " + ((c.cases || []).map(function (x) { return x && x.port; }).join(" / ")); break;
    case "logic.split_random": text = (c.branches || []).map(function (x) { return x && (x.name + " " + (x.percent || 0) + "%"); }).join(" / "); break;
    case "contact.group_add": text = "+ " + (c.group_id || ""); break;
    case "contact.group_remove": text = "− " + (c.group_id || ""); break;
    case "flow.start": text = (c.flow_id || "") + (c.group_id ? " · group " + c.group_id : c.phone ? " · " + c.phone : ""); break;
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
