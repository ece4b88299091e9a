// The Models page's actions (after sign-in at /ui, gateway.js): test a model now
// (/health?model=NAME: a tiny request to each of its deployments), switch a deployment or a
// whole model off and on (/model/update), add a deployment (/model/new) and delete one added
// at run time (/model/delete). The table is read from /model/info after every action.
(function () {
  "use strict";
  var gw = window.shinGateway;
  var holder = document.getElementById("live-models");
  if (!gw || !gw.AdminTable || !holder) { return; }
  var api = gw.api;
  var el = gw.el;
  var results;

  function deployments() {
    return api("GET", "/model/info").then(function (body) {
      var seen = {};
      return body.data.filter(function (d) {
        var id = d.model_info.id;
        if (seen[id]) { return false; }
        seen[id] = true;
        return true;
      });
    });
  }

  function state(d) { return d.deployment_state && d.deployment_state.enabled === false ? "disabled" : "enabled"; }

  function test(d) {
    var name = d.model_name;
    results.textContent = "Testing " + name + "…";
    return api("GET", "/health?fresh=true&model=" + encodeURIComponent(name)).then(function (body) {
      results.textContent = "";
      results.appendChild(el("h3", "Test of " + name + ": " + body.healthy_count + " healthy, " + body.unhealthy_count + " unhealthy"));
      var list = el("ul", null, "test-results");
      (body.healthy_endpoints || []).concat(body.unhealthy_endpoints || []).forEach(function (e) {
        var line = (e.error ? "✗ " : "✓ ") + e.model_id + " · " + e.model + " · " + (e.api_base || "") +
          (e.latency !== undefined ? " · " + Number(e.latency).toFixed(3) + " s" : "") + (e.error ? " · " + e.error : "");
        list.appendChild(el("li", line, e.error ? "bad" : "good"));
      });
      results.appendChild(list);
      document.documentElement.setAttribute("data-model-test", body.unhealthy_count ? "unhealthy" : "healthy");
    });
  }

  function draw() {
    results = el("div", null, "test-box");
    results.setAttribute("role", "status");
    holder.appendChild(results);
    gw.AdminTable(holder, {
      title: "Deployments (live)", id: "models",
      load: deployments,
      key: function (d) { return d.model_info.id; },
      columns: [["model_name", "Model"], [function (d) { return d.model_info.id; }, "Deployment id", "id"],
        [function (d) { return d.litellm_params.model; }, "Upstream model", "upstream"],
        [function (d) { return d.litellm_params.api_base; }, "API base", "api_base"],
        [function (d) { return d.model_info.litellm_provider; }, "Provider", "provider"],
        [state, "State", "state"],
        [function (d) { return d.model_info.db_model ? "added at run time" : "config.yaml"; }, "Defined in", "origin"]],
      create: {
        label: "Add a deployment",
        fields: [{ name: "model_name", label: "Model name (what clients ask for)", type: "text" },
          { name: "model", label: "Upstream model (provider/name)", type: "text", placeholder: "openai/gpt-4o-mini" },
          { name: "api_base", label: "API base", type: "text" },
          { name: "api_key", label: "API key (or os.environ/NAME)", type: "text" },
          { name: "rpm", label: "RPM", type: "number" }, { name: "tpm", label: "TPM", type: "number" },
          { name: "input_cost_per_token", label: "Input USD / token", type: "number" },
          { name: "output_cost_per_token", label: "Output USD / token", type: "number" }],
        submit: function (v) {
          var params = {};
          ["model", "api_base", "api_key", "rpm", "tpm", "input_cost_per_token", "output_cost_per_token"].forEach(function (k) {
            if (v[k] !== undefined && v[k] !== null) { params[k] = v[k]; }
          });
          return api("POST", "/model/new", { model_name: v.model_name, litellm_params: params });
        }
      },
      actions: function (d) {
        var off = state(d) === "disabled";
        var out = [
          ["Test", function () { return test(d); }],
          [off ? "Enable" : "Disable", function () {
            return api("POST", "/model/update", { model_info: { id: d.model_info.id, disabled: !off } });
          }],
          [off ? "Enable model" : "Disable model", function () {
            return api("POST", "/model/update", { model_name: d.model_name, model_info: { disabled: !off } });
          }]
        ];
        if (d.model_info.db_model) {
          out.push(["Delete", function () { return api("POST", "/model/delete", { id: d.model_info.id }); }, "Confirm delete"]);
        }
        return out;
      }
    });
  }

  gw.onSession(function (session) {
    holder.textContent = "";
    holder.hidden = !session;
    if (session) { draw(); }
  });
})();
