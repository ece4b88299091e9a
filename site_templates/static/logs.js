// The Logs page: search and filter the newest requests and errors (data/logs.js, loaded as a
// script so it works from file://), open one to see it as stored (its detail chunk, loaded the
// same way when needed), and export what the filters show as CSV or JSON, built in the browser.
// Every value reaches the page through textContent: nothing from a request is parsed as HTML.
// Records on <html> data-logs="ready" with the number of rows shown, for the browser tests.
(function () {
  "use strict";
  var data = window.shinLogs;
  var app = document.getElementById("logs-app");
  if (!data || !app || !Array.isArray(data.rows)) { return; }
  var root = document.documentElement;
  var form = document.getElementById("log-filters");
  var table = document.getElementById("log-table");
  var more = document.getElementById("log-more");
  var count = document.getElementById("log-count");
  var detail = document.getElementById("log-detail");
  var PAGE = 100;
  var shown = PAGE;
  var current = [];
  var chunks = {};
  var waiting = {};

  var COLUMNS = [
    ["timestamp", "Time (UTC)", "ts"], ["model", "Model"], ["user_id", "User"],
    ["key_alias", "Key"], ["status_code", "Status", "num"], ["stream", "Stream"],
    ["total_tokens", "Tokens", "num"], ["cost", "Cost", "num"], ["latency", "Latency", "num"],
    ["answer", "Response or error", "preview"]
  ];
  var EXPORT = (data.fields || []).slice();

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function money(value) {
    if (value === null || value === undefined) { return "—"; }
    var v = Number(value);
    return "$" + (v >= 1 || v === 0 ? v.toFixed(2) : v.toFixed(4));
  }

  function show(row, key) {
    var v = row[key];
    if (v === null || v === undefined || v === "") { return "—"; }
    if (key === "cost") { return money(v); }
    if (key === "latency") { return Number(v).toFixed(3) + " s"; }
    if (key === "stream") { return v ? "yes" : "no"; }
    if (key === "total_tokens") { return Number(v).toLocaleString("en-US"); }
    if (key === "answer" && String(v).length > 90) { return String(v).slice(0, 90) + "…"; }
    return String(v);
  }

  // -- filters ---------------------------------------------------------------------------
  function options(name) {
    var select = form.elements[name];
    var seen = {};
    data.rows.forEach(function (r) { if (r[name] !== null && r[name] !== undefined) { seen[r[name]] = true; } });
    Object.keys(seen).sort().forEach(function (value) {
      var option = el("option", value);
      option.value = value;
      select.appendChild(option);
    });
  }
  ["model", "user_id", "key_alias"].forEach(options);

  function bound(value) { return value ? value.replace("T", " ") : ""; }

  function matches(row, f) {
    if (f.view === "errors" && !(row.status_code >= 400)) { return false; }
    if (f.model && row.model !== f.model) { return false; }
    if (f.user_id && row.user_id !== f.user_id) { return false; }
    if (f.key_alias && row.key_alias !== f.key_alias) { return false; }
    if (f.status) {
      var cls = Math.floor(Number(row.status_code) / 100);
      if (f.status === "other" ? (cls >= 2 && cls <= 5 && cls !== 3) : String(cls) !== f.status) { return false; }
    }
    if (f.stream && (f.stream === "yes") !== !!row.stream) { return false; }
    if (f.from && row.timestamp < f.from) { return false; }
    if (f.to && row.timestamp > f.to) { return false; }
    if (f.text) {
      var hay = [row.model, row.user_id, row.key_alias, row.team_id, row.request_id, row.error_type,
        row.prompt, row.answer, row.status_code].join("\u0001").toLowerCase();
      if (hay.indexOf(f.text) < 0) { return false; }
    }
    return true;
  }

  function filters() {
    var e = form.elements;
    return {
      text: e.text.value.trim().toLowerCase(), view: e.view.value, model: e.model.value,
      user_id: e.user_id.value, key_alias: e.key_alias.value, status: e.status.value,
      stream: e.stream.value, from: bound(e.from.value), to: bound(e.to.value)
    };
  }

  // -- the list --------------------------------------------------------------------------
  function header() {
    var tr = el("tr");
    COLUMNS.forEach(function (c) { var th = el("th", c[1], c[2] || "text"); th.scope = "col"; tr.appendChild(th); });
    table.tHead.textContent = "";
    table.tHead.appendChild(tr);
  }

  function render() {
    var f = filters();
    current = data.rows.filter(function (r) { return matches(r, f); });
    var body = table.tBodies[0];
    body.textContent = "";
    current.slice(0, shown).forEach(function (row) {
      var tr = el("tr", null, row.status_code >= 400 ? "failed" : "");
      tr.tabIndex = 0;
      tr.setAttribute("data-id", String(row.id));
      COLUMNS.forEach(function (c) {
        var td = el("td", show(row, c[0]), c[2] || "text");
        td.setAttribute("data-label", c[1]);
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { open(row); });
      tr.addEventListener("keydown", function (event) { if (event.key === "Enter") { open(row); } });
      body.appendChild(tr);
    });
    count.textContent = "Showing " + Math.min(shown, current.length) + " of " + current.length +
      " matching requests (" + data.rows.length + " in this report).";
    more.hidden = current.length <= shown;
    root.setAttribute("data-logs", "ready");
    root.setAttribute("data-logs-shown", String(current.length));
  }

  form.addEventListener("input", function () { shown = PAGE; render(); });
  form.addEventListener("change", function () { shown = PAGE; render(); });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(function () { shown = PAGE; render(); }, 0); });
  more.addEventListener("click", function () { shown += PAGE; render(); });

  // -- export ----------------------------------------------------------------------------
  var FORMULA = /^[=+\-@\t\r]/;
  function csvCell(value) {
    if (value === null || value === undefined) { return ""; }
    var text = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
    if (typeof value === "string" && FORMULA.test(text)) { text = "'" + text; }
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function download(name, type, text) {
    var url = URL.createObjectURL(new Blob([text], { type: type }));
    var a = el("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  }

  function exported(kind) {
    var rows = current.map(function (r) {
      var out = {};
      EXPORT.forEach(function (k) { out[k] = r[k] === undefined ? null : r[k]; });
      return out;
    });
    if (kind === "json") {
      download("requests.json", "application/json", JSON.stringify({ filters: filters(), rows: rows }, null, 1));
      return;
    }
    var lines = [EXPORT.join(",")];
    rows.forEach(function (r) { lines.push(EXPORT.map(function (k) { return csvCell(r[k]); }).join(",")); });
    download("requests.csv", "text/csv", lines.join("\n") + "\n");
  }
  Array.prototype.forEach.call(form.querySelectorAll("[data-export]"), function (button) {
    button.addEventListener("click", function () { exported(button.getAttribute("data-export")); });
  });

  // -- one request -----------------------------------------------------------------------
  data.detail = function (chunk, rows) {
    chunks[chunk] = rows;
    (waiting[chunk] || []).forEach(function (resolve) { resolve(rows); });
    delete waiting[chunk];
  };

  function loadChunk(chunk) {
    if (chunks[chunk]) { return Promise.resolve(chunks[chunk]); }
    return new Promise(function (resolve, reject) {
      var first = !waiting[chunk];
      (waiting[chunk] = waiting[chunk] || []).push(resolve);
      if (!first) { return; }
      var script = el("script");
      script.src = "data/logs/detail-" + chunk + ".js";
      script.onerror = function () { reject(new Error("could not load " + script.src)); };
      document.body.appendChild(script);
    });
  }

  function pretty(text) {
    if (text === null || text === undefined) { return "(not stored)"; }
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return String(text); }
  }

  function fact(list, label, value) {
    var div = el("div");
    div.appendChild(el("dt", label));
    div.appendChild(el("dd", value === null || value === undefined || value === "" ? "—" : value));
    list.appendChild(div);
  }

  function secs(v) { return v === null || v === undefined ? "—" : Number(v).toFixed(3) + " s"; }

  function open(row) {
    detail.hidden = false;
    detail.textContent = "";
    detail.appendChild(el("p", "Loading the request…", "meta"));
    loadChunk(row.chunk).then(function (rows) {
      var d = rows[String(row.id)] || {};
      detail.textContent = "";
      var head = el("div", null, "detail-head");
      head.appendChild(el("h2", "Request " + (row.request_id || "#" + row.id)));
      var close = el("button", "Close", "fold-toggle");
      close.type = "button";
      close.addEventListener("click", function () { detail.hidden = true; });
      head.appendChild(close);
      detail.appendChild(head);
      var dl = el("dl", null, "facts");
      fact(dl, "Time (UTC)", row.timestamp);
      fact(dl, "Status", row.status_code + (row.error_type ? " · " + row.error_type : ""));
      fact(dl, "Model asked", row.model);
      fact(dl, "Routed to", [d.model_group, d.upstream_model, d.provider].filter(Boolean).join(" · "));
      fact(dl, "API base", d.api_base);
      fact(dl, "User · key · team", [row.user_id, row.key_alias, row.team_id].map(function (v) { return v || "—"; }).join(" · "));
      fact(dl, "Endpoint", (row.endpoint || "") + (row.stream ? " (streamed)" : ""));
      fact(dl, "Tokens", "prompt " + (row.prompt_tokens || 0) + " · completion " + (row.completion_tokens || 0) +
        " · total " + (row.total_tokens || 0) + (d.cached_tokens ? " · cached " + d.cached_tokens : "") +
        (d.reasoning_tokens ? " · reasoning " + d.reasoning_tokens : ""));
      fact(dl, "Cost", money(row.cost) + (d.cost_status ? " (" + d.cost_status + ")" : ""));
      fact(dl, "How it was priced", d.how_priced);
      fact(dl, "Latency", secs(row.latency) + " = upstream " + secs(d.upstream_latency) + " + gateway " + secs(d.gateway_latency));
      fact(dl, "Time to first token", secs(d.time_to_first_token));
      fact(dl, "Attempts", d.attempts);
      fact(dl, "Request id", row.request_id);
      if (d.host) { fact(dl, "Host", d.host); }
      if (d.metadata) { fact(dl, "Metadata", d.metadata); }
      detail.appendChild(dl);
      if (data.datasette) {
        var link = el("a", "This row in Datasette");
        link.href = data.datasette + encodeURIComponent(String(row.id));
        link.rel = "noopener";
        detail.appendChild(el("p")).appendChild(link);
      }
      detail.appendChild(el("h3", "Messages (as stored)"));
      detail.appendChild(el("pre", pretty(d.messages), "stored"));
      detail.appendChild(el("h3", row.status_code >= 400 ? "Error returned" : "Response (as stored)"));
      detail.appendChild(el("pre", d.response === null || d.response === undefined ? "(not stored)" : d.response, "stored"));
      root.setAttribute("data-log-detail", String(row.id));
      detail.focus();
    }, function (error) {
      detail.textContent = "";
      detail.appendChild(el("p", String(error.message || error), "not-recorded"));
    });
  }

  header();
  app.hidden = false;
  var fallback = document.getElementById("logs-static");
  if (fallback) { fallback.hidden = true; }
  render();
})();
