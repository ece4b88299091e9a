// Draws every chart of the page from its embedded spec with the local vega-embed (tooltips on,
// legends bound to highlight a series), fits small multiples to the page, folds long tables.
// Records the outcome on <html>: data-charts="ready" once all are drawn (or "failed"), and any
// script error in data-errors, so a headless browser test can check the page.
(function () {
  "use strict";
  var root = document.documentElement;
  var errors = [];
  function record(message) {
    errors.push(String(message));
    root.setAttribute("data-errors", JSON.stringify(errors));
  }
  window.addEventListener("error", function (event) { record(event.message); });
  window.addEventListener("unhandledrejection", function (event) { record(event.reason); });
  var consoleError = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };

  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");

  // Small multiples have a fixed cell width in Vega-Lite; size them (and their number of
  // columns) from the width the page gives the chart, so they wrap instead of overflowing.
  function fitFacets(spec, width) {
    var meta = spec.usermeta && spec.usermeta.shin;
    if (!meta || !meta.facet_min_width || !spec.spec) { return spec; }
    var field = spec.facet && spec.facet.field;
    var seen = {};
    ((spec.data && spec.data.values) || []).forEach(function (row) { seen[row[field]] = true; });
    var count = Math.max(1, Object.keys(seen).length);
    var gutter = 80; // y axis, its title and the space between cells
    var columns = Math.max(1, Math.min(count, Math.floor(width / (meta.facet_min_width + gutter))));
    spec.columns = columns;
    spec.spec.width = Math.max(120, Math.floor(width / columns) - gutter);
    return spec;
  }

  // Long tables show their first rows; a button shows the rest. Without this script (and in
  // print) every row shows.
  function foldTables() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-fold]"), function (table) {
      if (table.getAttribute("data-folded") !== null) { return; }
      var keep = parseInt(table.getAttribute("data-fold"), 10);
      var total = table.tBodies[0].rows.length;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "fold-toggle";
      function set(folded) {
        table.classList.toggle("folded", folded);
        table.setAttribute("data-folded", folded ? "yes" : "no");
        button.setAttribute("aria-expanded", folded ? "false" : "true");
        button.textContent = folded ? "Show all " + total + " rows" : "Show the first " + keep + " rows";
      }
      button.addEventListener("click", function () {
        set(table.getAttribute("data-folded") !== "yes");
      });
      var holder = table.parentNode.classList.contains("scroll") ? table.parentNode : table;
      holder.parentNode.insertBefore(button, holder.nextSibling);
      set(true);
    });
  }

  function draw() {
    var holders = document.querySelectorAll(".vega[data-spec]");
    if (!holders.length) { root.setAttribute("data-charts", "ready"); return; }
    if (typeof vegaEmbed !== "function") {
      record("vega-embed did not load");
      root.setAttribute("data-charts", "failed");
      return;
    }
    // Vega's expression interpreter instead of its code generator (Function()): the charts
    // draw under a Content-Security-Policy without 'unsafe-eval' (/ui sends one).
    var interpreter = window.vegaInterpreter && window.vegaInterpreter.expressionInterpreter;
    var options = {
      ast: !!interpreter,
      expr: interpreter,
      renderer: "svg",
      actions: { export: true, source: false, compiled: false, editor: false },
      theme: dark && dark.matches ? "dark" : undefined,
      config: { background: null }
    };
    var pending = Array.prototype.map.call(holders, function (holder) {
      var source = document.getElementById(holder.getAttribute("data-spec"));
      var spec = fitFacets(JSON.parse(source.textContent), holder.clientWidth);
      holder.setAttribute("data-width", String(holder.clientWidth));
      if (holder.shinView) { holder.shinView.finalize(); holder.shinView = null; }
      holder.textContent = "";
      return vegaEmbed(holder, spec, options).then(function (result) {
        holder.shinView = result;
        return result;
      }, function (error) {
        holder.classList.add("failed");
        record(error && error.message ? error.message : error);
        throw error;
      });
    });
    Promise.all(pending).then(
      function () { root.setAttribute("data-charts", "ready"); },
      function () { root.setAttribute("data-charts", "failed"); }
    );
  }

  function start() {
    foldTables();
    draw();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // A phone turned sideways: small multiples are re-fitted to the new width.
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      var stale = Array.prototype.some.call(document.querySelectorAll(".vega[data-spec]"), function (h) {
        return Math.abs(h.clientWidth - parseInt(h.getAttribute("data-width") || "0", 10)) > 40;
      });
      if (stale) { root.removeAttribute("data-charts"); draw(); }
    }, 250);
  });
  if (dark && dark.addEventListener) {
    dark.addEventListener("change", function () { root.removeAttribute("data-charts"); draw(); });
  }
})();
