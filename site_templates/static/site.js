// Draws every chart of the page from its embedded spec with the local vega-embed.
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

  function draw() {
    var holders = document.querySelectorAll(".vega[data-spec]");
    if (!holders.length) { root.setAttribute("data-charts", "ready"); return; }
    if (typeof vegaEmbed !== "function") {
      record("vega-embed did not load");
      root.setAttribute("data-charts", "failed");
      return;
    }
    var options = {
      renderer: "svg",
      actions: { export: true, source: false, compiled: false, editor: false },
      theme: dark && dark.matches ? "dark" : undefined,
      config: { background: null }
    };
    var pending = Array.prototype.map.call(holders, function (holder) {
      var source = document.getElementById(holder.getAttribute("data-spec"));
      var spec = JSON.parse(source.textContent);
      return vegaEmbed(holder, spec, options).catch(function (error) {
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
  if (dark && dark.addEventListener) {
    dark.addEventListener("change", function () { root.removeAttribute("data-charts"); draw(); });
  }
})();
