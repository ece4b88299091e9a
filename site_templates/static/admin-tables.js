// A live table of admin entities with its actions, drawn from the gateway's JSON API after
// sign-in (gateway.js): a create form, one row per entity with buttons, an edit form per row.
// After every action the table is read again from the API, so it shows the state now.
// Values reach the page through textContent only. Used by keys-actions.js (and models').
(function () {
  "use strict";
  var gw = window.shinGateway;
  if (!gw) { return; }
  var el = gw.el;

  function shown(value) {
    if (value === null || value === undefined || value === "") { return "—"; }
    if (Array.isArray(value)) { return value.length ? value.join(", ") : "all"; }
    if (typeof value === "boolean") { return value ? "yes" : "no"; }
    return String(value);
  }

  // A form of fields [{name, label, type: text|number|list|select, options, placeholder}];
  // values: the current ones (edit) or none (create). Returns {form, values()}.
  function fieldsForm(fields, values, submitLabel, onSubmit) {
    var form = el("form", null, "admin-form");
    var grid = el("div", null, "fields");
    fields.forEach(function (f) {
      var label = el("label", f.label);
      var input;
      if (f.type === "select") {
        input = el("select");
        f.options.forEach(function (o) { var opt = el("option", o[1]); opt.value = o[0]; input.appendChild(opt); });
      } else {
        input = el("input");
        input.type = f.type === "number" ? "number" : "text";
        if (f.type === "number") { input.step = "any"; input.min = "0"; }
        if (f.placeholder) { input.placeholder = f.placeholder; }
      }
      input.name = f.name;
      var current = values ? values[f.name] : undefined;
      if (f.type === "select" && current && !f.options.some(function (o) { return o[0] === current; })) {
        var kept = el("option", current);  // a value set elsewhere (e.g. 2d) stays as it is
        kept.value = current;
        input.appendChild(kept);
      }
      if (current !== undefined && current !== null) {
        input.value = Array.isArray(current) ? current.join(", ") : String(current);
      }
      label.appendChild(input);
      grid.appendChild(label);
    });
    var go = el("button", submitLabel, "action primary");
    go.type = "submit";
    grid.appendChild(go);
    form.appendChild(grid);
    var status = el("p", null, "status");
    status.setAttribute("role", "status");
    form.appendChild(status);
    function read() {
      var out = {};
      fields.forEach(function (f) {
        var raw = form.elements[f.name].value.trim();
        var had = values && values[f.name] !== undefined && values[f.name] !== null &&
          !(Array.isArray(values[f.name]) && !values[f.name].length);
        if (raw === "") { if (had) { out[f.name] = f.type === "list" ? [] : null; } return; }
        if (f.type === "number") { out[f.name] = Number(raw); }
        else if (f.type === "list") { out[f.name] = raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
        else { out[f.name] = raw; }
      });
      return out;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      status.textContent = "Saving…";
      Promise.resolve(onSubmit(read(), status)).then(null, function (error) {
        status.textContent = String(error.message || error);
      });
    });
    return form;
  }

  // config: {title, id, load() -> Promise<[entity]>, columns: [[key, label]], key(entity),
  //   create: {fields, submit(values) -> Promise<answer>, after(answer, box)},
  //   edit: {fields, submit(entity, values)}, actions(entity) -> [[label, fn, confirmText?]]}
  function AdminTable(holder, config) {
    var section = el("div", null, "admin-table");
    section.id = config.id;
    section.appendChild(el("h2", config.title));
    var note = el("p", null, "meta");
    section.appendChild(note);
    var created = el("div", null, "created");
    section.appendChild(created);
    if (config.create) {
      var details = el("details", null, "create");
      details.appendChild(el("summary", config.create.label));
      details.appendChild(fieldsForm(config.create.fields, null, config.create.label, function (values, status) {
        return config.create.submit(values).then(function (answer) {
          status.textContent = "Done.";
          created.textContent = "";
          if (config.create.after) { config.create.after(answer, created); }
          return refresh();
        });
      }));
      section.appendChild(details);
    }
    var scroll = el("div", null, "scroll");
    var table = el("table", null, "data live-table");
    scroll.appendChild(table);
    section.appendChild(scroll);
    holder.appendChild(section);

    function refresh() {
      note.textContent = "Reading the gateway…";
      return config.load().then(draw, function (error) { note.textContent = String(error.message || error); });
    }

    function draw(entities) {
      table.textContent = "";
      var head = el("tr");
      config.columns.forEach(function (c) { var th = el("th", c[1]); th.scope = "col"; head.appendChild(th); });
      head.appendChild(el("th", "Actions"));
      table.appendChild(el("thead")).appendChild(head);
      var body = el("tbody");
      entities.forEach(function (entity) {
        var tr = el("tr");
        tr.setAttribute("data-entity", config.key(entity));
        config.columns.forEach(function (c) {
          var td = el("td", shown(typeof c[0] === "function" ? c[0](entity) : entity[c[0]]));
          td.setAttribute("data-label", c[1]);
          td.setAttribute("data-field", typeof c[0] === "function" ? c[2] || "" : c[0]);
          tr.appendChild(td);
        });
        var cell = el("td", null, "actions");
        cell.setAttribute("data-label", "Actions");
        var editRow = null;
        if (config.edit) {
          var edit = el("button", "Edit", "action");
          edit.type = "button";
          edit.setAttribute("data-action", "edit");
          edit.addEventListener("click", function () {
            if (editRow) { editRow.remove(); editRow = null; return; }
            editRow = el("tr", null, "edit-row");
            var td = el("td");
            td.colSpan = config.columns.length + 1;
            td.appendChild(fieldsForm(config.edit.fields, entity, "Save", function (values, status) {
              return config.edit.submit(entity, values).then(function () { status.textContent = "Saved."; return refresh(); });
            }));
            editRow.appendChild(td);
            tr.parentNode.insertBefore(editRow, tr.nextSibling);
          });
          cell.appendChild(edit);
        }
        (config.actions ? config.actions(entity) : []).forEach(function (a) {
          var button = el("button", a[0], "action" + (a[2] ? " danger" : ""));
          button.type = "button";
          button.setAttribute("data-action", a[0].toLowerCase());
          button.addEventListener("click", function () {
            if (a[2] && button.getAttribute("data-armed") !== "yes") {
              button.setAttribute("data-armed", "yes");
              button.textContent = a[2];
              return;
            }
            button.disabled = true;
            Promise.resolve(a[1](entity)).then(refresh, function (error) {
              button.disabled = false;
              note.textContent = String(error.message || error);
            });
          });
          cell.appendChild(button);
        });
        tr.appendChild(cell);
        body.appendChild(tr);
      });
      table.appendChild(body);
      note.textContent = entities.length + " now, live from the gateway (" + new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC).";
      document.documentElement.setAttribute("data-live-" + config.id, String(entities.length));
    }

    refresh();
    return { refresh: refresh };
  }

  // The raw key of a new key, shown once with a copy button.
  function showOnce(box, label, secret) {
    box.textContent = "";
    box.appendChild(el("p", label, "warn"));
    var row = el("div", null, "secret");
    var code = el("code", secret);
    code.id = "new-secret";
    row.appendChild(code);
    var copy = el("button", "Copy", "action");
    copy.type = "button";
    copy.addEventListener("click", function () {
      var done = function () { copy.textContent = "Copied"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(secret).then(done, function () { select(code); });
      } else { select(code); }
    });
    row.appendChild(copy);
    box.appendChild(row);
  }

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  gw.AdminTable = AdminTable;
  gw.showOnce = showOnce;
  gw.fieldsForm = fieldsForm;
})();
