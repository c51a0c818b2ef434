/* DOM helpers shared by the editor modules: element building, escaping, category icons,
 * deep copies, and the page's JSON API and toasts (window.smshub, from static/app.js). */

// One icon per node category (SVG paths, 24×24), drawn on nodes, the palette and steps.
var ICONS = {
  trigger: '<path d="M13 2 3 14h9l-1 8 10-12h-9l1-8z"/>',
  logic: '<path d="M16 3h5v5"/><path d="M8 3H3v5"/><path d="M21 3l-7 7"/><path d="M3 3l7 7"/><path d="M12 12v9"/>',
  data: '<ellipse cx="12" cy="5" rx="9" ry="3"/><path d="M21 12c0 1.66-4 3-9 3s-9-1.34-9-3"/><path d="M3 5v14c0 1.66 4 3 9 3s9-1.34 9-3V5"/>',
  sms: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
  http: '<circle cx="12" cy="12" r="10"/><path d="M2 12h20"/><path d="M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z"/>',
  contact: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
  flow: '<circle cx="12" cy="12" r="10"/><path d="M12 6v6l4 2"/>'
};

/** el("div", { "class": …, text: …, html: …, onclick: … }, [children]): a DOM element. */
export function el(tag, attrs, children) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (key) {
    var value = attrs[key];
    if (value === undefined || value === null || value === false) return;
    if (key === "text") node.textContent = value;
    else if (key === "html") node.innerHTML = value;
    else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  });
  (children || []).forEach(function (child) {
    if (child === null || child === undefined) return;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}
/** Text made safe to put inside HTML. */
export function esc(text) {
  return String(text === undefined || text === null ? "" : text)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
export function svgIcon(category) {
  return '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true">' + (ICONS[category] || ICONS.flow) + "</svg>";
}
export function clone(value) { return value === undefined ? undefined : JSON.parse(JSON.stringify(value)); }
export function api(method, url, body) { return window.smshub.api(method, url, body); }
export function toast(text, kind) { window.smshub.toast(text, kind); }
/** Call `handler` on clicks of every element matching `selector`. */
export function onClick(selector, handler) {
  document.querySelectorAll(selector).forEach(function (node) { node.addEventListener("click", handler); });
}
