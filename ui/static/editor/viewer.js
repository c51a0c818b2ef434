/* Entry of the run page (templates/runs/detail.html): the run drawn read-only on its
 * flow, with the steps' statuses and order; clicking a node opens its steps below. */

import { toast } from "./dom.js";
import { Graph, loadCatalog } from "./graph.js";

/** Read-only graph of a run: statuses on the nodes, click a node to see its steps. */
export function mountViewer() {
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

