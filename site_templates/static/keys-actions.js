// The Keys page's actions (after sign-in at /ui, gateway.js): create, edit (budget, budget
// period, models, limits), block/unblock and revoke keys; the same for users and teams.
// Each table is read from the gateway's API (/key/list, /user/list, /team/list) after every
// action. A new key's secret is shown once, with a copy button, and kept nowhere.
(function () {
  "use strict";
  var gw = window.shinGateway;
  var holder = document.getElementById("live-keys");
  if (!gw || !gw.AdminTable || !holder) { return; }
  var api = gw.api;

  var PERIODS = [["", "none"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"], ["1h", "1 hour"]];
  var BUDGET = [
    { name: "max_budget", label: "Budget (USD)", type: "number" },
    { name: "budget_duration", label: "Budget period", type: "select", options: PERIODS },
    { name: "models", label: "Models (comma-separated; empty: all)", type: "list" },
    { name: "rpm_limit", label: "Requests / minute", type: "number" },
    { name: "tpm_limit", label: "Tokens / minute", type: "number" },
    { name: "max_parallel_requests", label: "Parallel requests", type: "number" }
  ];

  function all(path, field) {
    return api("GET", path).then(function (body) { return field ? body[field] : body; });
  }

  function keysTable() {
    return gw.AdminTable(holder, {
      title: "Virtual keys (live)", id: "keys",
      load: function () { return all("/key/list?return_full_object=true&size=100", "keys"); },
      key: function (k) { return k.key_alias || k.key_name; },
      columns: [["key_alias", "Alias"], ["key_name", "Key"], ["user_id", "User"], ["team_id", "Team"],
        ["models", "Models"], ["max_budget", "Budget"], ["spend", "Spent"], ["budget_duration", "Period"],
        ["budget_reset_at", "Resets"], ["expires", "Expires"], ["rpm_limit", "RPM"], ["tpm_limit", "TPM"],
        [function (k) { return k.blocked ? "blocked" : "active"; }, "Status", "status"]],
      create: {
        label: "Create a key",
        fields: [{ name: "key_alias", label: "Alias", type: "text" },
          { name: "user_id", label: "User", type: "text" }, { name: "team_id", label: "Team", type: "text" },
          { name: "duration", label: "Expires after (e.g. 30d)", type: "text" }].concat(BUDGET),
        submit: function (values) { return api("POST", "/key/generate", values); },
        after: function (answer, box) {
          gw.showOnce(box, "The new key, shown this once: copy it now.", answer.key);
        }
      },
      edit: {
        fields: [{ name: "key_alias", label: "Alias", type: "text" }].concat(BUDGET),
        submit: function (k, values) { return api("POST", "/key/update", Object.assign({ key: k.token }, values)); }
      },
      actions: function (k) {
        return [
          [k.blocked ? "Unblock" : "Block", function () {
            return api("POST", k.blocked ? "/key/unblock" : "/key/block", { key: k.token });
          }],
          ["Revoke", function () { return api("POST", "/key/delete", { keys: [k.token] }); }, "Confirm revoke"]
        ];
      }
    });
  }

  function usersTable() {
    return gw.AdminTable(holder, {
      title: "Users (live)", id: "users",
      load: function () { return all("/user/list?page_size=100", "users"); },
      key: function (u) { return u.user_id; },
      columns: [["user_id", "User"], ["user_alias", "Alias"], ["user_email", "Email"], ["teams", "Teams"],
        ["models", "Models"], ["max_budget", "Budget"], ["spend", "Spent"], ["budget_duration", "Period"],
        ["budget_reset_at", "Resets"], ["key_count", "Keys"],
        [function (u) { return u.blocked ? "blocked" : "active"; }, "Status", "status"]],
      create: {
        label: "Create a user",
        fields: [{ name: "user_id", label: "User id", type: "text" }, { name: "user_alias", label: "Alias", type: "text" },
          { name: "user_email", label: "Email", type: "text" }].concat(BUDGET),
        submit: function (values) { return api("POST", "/user/new", Object.assign({ auto_create_key: false }, values)); }
      },
      edit: {
        fields: [{ name: "user_alias", label: "Alias", type: "text" }].concat(BUDGET),
        submit: function (u, values) { return api("POST", "/user/update", Object.assign({ user_id: u.user_id }, values)); }
      },
      actions: function (u) {
        return [
          [u.blocked ? "Unblock" : "Block", function () {
            return api("POST", "/user/update", { user_id: u.user_id, blocked: !u.blocked });
          }],
          ["Delete", function () { return api("POST", "/user/delete", { user_ids: [u.user_id] }); },
            "Confirm: delete with its keys"]
        ];
      }
    });
  }

  function teamsTable() {
    return gw.AdminTable(holder, {
      title: "Teams (live)", id: "teams",
      load: function () { return api("GET", "/team/list"); },
      key: function (t) { return t.team_id; },
      columns: [["team_alias", "Team"], ["team_id", "Team id"], ["models", "Models"], ["max_budget", "Budget"],
        ["spend", "Spent"], ["budget_duration", "Period"], ["budget_reset_at", "Resets"],
        [function (t) { return (t.members_with_roles || []).length; }, "Members", "members"],
        [function (t) { return (t.keys || []).length; }, "Keys", "keys"],
        [function (t) { return t.blocked ? "blocked" : "active"; }, "Status", "status"]],
      create: {
        label: "Create a team",
        fields: [{ name: "team_alias", label: "Team name", type: "text" }, { name: "team_id", label: "Team id (optional)", type: "text" }].concat(BUDGET),
        submit: function (values) { return api("POST", "/team/new", values); }
      },
      edit: {
        fields: [{ name: "team_alias", label: "Team name", type: "text" }].concat(BUDGET),
        submit: function (t, values) { return api("POST", "/team/update", Object.assign({ team_id: t.team_id }, values)); }
      },
      actions: function (t) {
        return [
          [t.blocked ? "Unblock" : "Block", function () {
            return api("POST", t.blocked ? "/team/unblock" : "/team/block", { team_id: t.team_id });
          }],
          ["Delete", function () { return api("POST", "/team/delete", { team_ids: [t.team_id] }); },
            "Confirm: delete with its keys"]
        ];
      }
    });
  }

  var drawn = false;
  gw.onSession(function (session) {
    holder.textContent = "";
    holder.hidden = !session;
    drawn = false;
    if (session && !drawn) {
      drawn = true;
      keysTable();
      usersTable();
      teamsTable();
    }
  });
})();
