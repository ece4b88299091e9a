// Admin actions, only where the gateway serves the report (at /ui): on file:// or a static host
// nothing here shows. Only the gateway marks the pages it serves (X-Shin-Gateway) and answers
// `_gateway` beside them;
// signing in there with the master key, or ui_username/ui_password, gives a short-lived signed
// token kept in sessionStorage (never the master key) and sent as a Bearer header to the
// gateway's own JSON API. No cookies, so no cross-site request can act with it.
//
// window.shinGateway = {ready: Promise<session or null>, api(method, path, body), onSession(fn)}
// <html data-gateway="none|signed-out|signed-in"> tells the browser tests where it stands.
(function () {
  "use strict";
  var root = document.documentElement;
  var panel = document.getElementById("gateway");
  var STORE = "shin-gateway-session";
  var listeners = [];
  var session = null;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function saved() {
    try {
      var s = JSON.parse(sessionStorage.getItem(STORE) || "null");
      return s && s.token && s.expires_at * 1000 > Date.now() ? s : null;
    } catch (e) { return null; }
  }

  function setSession(s) {
    session = s;
    try {
      if (s && s.token) { sessionStorage.setItem(STORE, JSON.stringify(s)); } else { sessionStorage.removeItem(STORE); }
    } catch (e) { /* storage refused: the session lasts as long as the page */ }
    root.setAttribute("data-gateway", s ? "signed-in" : "signed-out");
    drawPanel();
    listeners.forEach(function (fn) { fn(s); });
  }

  // The admin API lives at the gateway's root: from /ui/keys.html that is "../".
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (session && session.token) { headers.Authorization = "Bearer " + session.token; }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(".." + path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.text().then(function (text) {
        var payload = null;
        try { payload = text ? JSON.parse(text) : null; } catch (e) { payload = { error: { message: text } }; }
        if (response.status === 401 && session && !session.open) { setSession(null); }
        if (!response.ok) {
          var message = payload && payload.error && payload.error.message ? payload.error.message : response.statusText;
          var error = new Error(response.status + ": " + message);
          error.status = response.status;
          throw error;
        }
        return payload;
      });
    });
  }

  function drawPanel() {
    if (!panel || !info) { return; }
    panel.textContent = "";
    panel.hidden = false;
    var built = panel.getAttribute("data-built");
    if (session) {
      var line = el("p", null, "signed-in");
      line.appendChild(el("strong", session.open ? "Admin actions on (this gateway has no master key: its admin API is open)." :
        "Signed in for admin actions" + (session.signed_in_as ? " (" + session.signed_in_as + ")" : "") + "."));
      line.appendChild(document.createTextNode(" Live figures come from the gateway now; the tables below are the report built " + built + "."));
      panel.appendChild(line);
      if (!session.open) {
        var out = el("button", "Sign out", "action");
        out.type = "button";
        out.addEventListener("click", function () { setSession(null); });
        panel.appendChild(out);
      }
      return;
    }
    var form = el("form", null, "sign-in");
    form.setAttribute("aria-label", "Sign in");
    form.appendChild(el("p", "This report is served by the gateway: sign in to manage keys and models here."));
    var fields = el("div", null, "fields");
    function field(label, name, type, autocomplete) {
      var l = el("label", label);
      var input = el("input");
      input.name = name;
      input.type = type;
      input.autocomplete = autocomplete;
      l.appendChild(input);
      fields.appendChild(l);
    }
    if (info.sign_in.master_key) { field("Master key", "master_key", "password", "off"); }
    if (info.sign_in.password) {
      field("or UI username", "username", "text", "username");
      field("UI password", "password", "password", "current-password");
    }
    var go = el("button", "Sign in", "action primary");
    go.type = "submit";
    fields.appendChild(go);
    form.appendChild(fields);
    var status = el("p", null, "status");
    status.setAttribute("role", "status");
    form.appendChild(status);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var e = form.elements;
      var body = e.master_key && e.master_key.value ? { master_key: e.master_key.value }
        : { username: e.username ? e.username.value : "", password: e.password ? e.password.value : "" };
      status.textContent = "Signing in…";
      fetch("_gateway/session", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (payload) {
          if (!r.ok) { throw new Error(payload && payload.error ? payload.error.message : r.statusText); }
          return payload;
        });
      }).then(function (s) { setSession(s); }, function (error) { status.textContent = String(error.message || error); });
    });
    panel.appendChild(form);
  }

  var info = null;
  var ready;
  if (!/^https?:$/.test(location.protocol) || !panel) {
    root.setAttribute("data-gateway", "none");
    ready = Promise.resolve(null);
  } else {
    // The page's own headers first (it exists wherever it is served: no 404 on a static host);
    // only the gateway's /ui handler sends X-Shin-Gateway.
    ready = fetch(location.href.split("#")[0], { method: "HEAD", credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.headers.get("X-Shin-Gateway") !== "shin-gateway") { return null; }
        return fetch("_gateway", { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
          .then(function (g) { return g.ok ? g.json() : null; });
      })
      .then(function (found) {
        if (!found || found.gateway !== "shin-gateway") { root.setAttribute("data-gateway", "none"); return null; }
        info = found;
        setSession(found.open ? { open: true } : saved());
        return session;
      }, function () { root.setAttribute("data-gateway", "none"); return null; });
  }

  window.shinGateway = {
    ready: ready,
    api: api,
    onSession: function (fn) { listeners.push(fn); if (info) { fn(session); } },
    el: el
  };
})();
