/* Entry of the flow editor page (templates/flows/editor.html): load the node catalog,
 * mount the Editor on the page's canvas, palette and panel, wire the toolbar. */

import { onClick, toast } from "./dom.js";
import { Editor } from "./editor.js";
import { loadCatalog } from "./graph.js";
import { wireTestDrawer } from "./testrun.js";

/** Mount the editor on the flow in the page's #flow-data. */
export function mountEditor() {
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
  onClick("[data-action=save]", function () { editor.save(); });
  onClick("[data-action=publish]", function () { editor.publish(); });
  onClick("[data-action=versions]", function () { editor.showVersions(); });
  onClick("[data-action=fit]", function () { editor.graph.fit(); });
  onClick("[data-action=zoom-in]", function () { editor.graph.df.zoom_in(); });
  onClick("[data-action=zoom-out]", function () { editor.graph.df.zoom_out(); });
  wireTestDrawer(editor, data);
  var nameInput = document.querySelector("[data-flow-name]");
  if (nameInput) nameInput.addEventListener("input", function () { editor.meta.name = nameInput.value; editor.changed(false); });
}
