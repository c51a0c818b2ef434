/* smshub UI glue: CSRF header on htmx requests, copy buttons, confirms, toasts, chat scroll. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  window.smshub = window.smshub || {};
  window.smshub.csrfToken = csrfToken;

  /** fetch() with the session's CSRF token and JSON in and out. */
  window.smshub.api = function (method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "Accept": "application/json" }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: { message: text } }; }
        if (resp.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname); }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    });
  };

  window.smshub.toast = function (text, kind) {
    var el = document.createElement("div");
    el.className = "toast " + (kind || "");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(function () { el.remove(); }, 3200);
  };

  document.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRF-Token"] = csrfToken();
  });
  document.body && document.body.addEventListener("smshub:error", function (evt) {
    window.smshub.toast(evt.detail.value || "Something went wrong", "err");
  });

  // Copy buttons: <button data-copy="#input-id">
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest("[data-copy]");
    if (!btn) return;
    var target = document.querySelector(btn.getAttribute("data-copy"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    var done = function () { window.smshub.toast("Copied", "ok"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      target.select && target.select();
      document.execCommand("copy");
      done();
    }
  });

  // Confirm before destructive posts: <form data-confirm="Delete?">
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) evt.preventDefault();
  }, true);

  // Table rows that link somewhere: <tr data-href="/runs/…">
  document.addEventListener("click", function (evt) {
    var row = evt.target.closest("tr[data-href]");
    if (!row || evt.target.closest("a, button, form, input")) return;
    window.location.href = row.getAttribute("data-href");
  });

  // Keep a chat scrolled to the newest message (unless the reader scrolled up).
  function stickToBottom(box, force) {
    if (!box) return;
    var near = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    if (force || near || !box.dataset.seen) box.scrollTop = box.scrollHeight;
    box.dataset.seen = "1";
  }
  document.addEventListener("DOMContentLoaded", function () {
    stickToBottom(document.getElementById("messages"), true);
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var box = evt.detail.target;
    if (box && box.id === "messages") {
      box.dataset.near = (box.scrollHeight - box.scrollTop - box.clientHeight < 120) ? "1" : "";
    }
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var box = evt.detail.target;
    if (box && box.id === "messages" && box.dataset.near) box.scrollTop = box.scrollHeight;
  });
  // Times in the reader's own time zone: <time datetime="…" data-local="time|clock">.
  function localTimes(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var hm = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      var today = when.toDateString() === new Date().toDateString();
      el.textContent = el.getAttribute("data-local") === "time" || today
        ? hm : when.toLocaleDateString([], { month: "short", day: "numeric" }) + ", " + hm;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(); });
  document.addEventListener("htmx:afterSwap", function (evt) { localTimes(evt.detail.target); });

  // Enter sends, Shift+Enter breaks the line (chat composer).
  document.addEventListener("keydown", function (evt) {
    var area = evt.target;
    if (evt.key !== "Enter" || evt.shiftKey || !area.matches || !area.matches("textarea[data-enter-submits]")) return;
    evt.preventDefault();
    var form = area.form;
    if (form && area.value.trim()) {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
  });
})();
