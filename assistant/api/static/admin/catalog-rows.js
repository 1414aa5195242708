/* 办事助手 — the catalog editor's list editors (admins): one card per entry of a list of
 * objects (materials, sources) with a labelled input per field and buttons to add,
 * remove and move an entry; and the validation problems shown next to the field they
 * are about (the API's `fields`: "materials[1].name", "sources[0].checked",
 * "fees_source"). Every input carries its path in data-field. Server text is only
 * ever inserted with textContent.
 */
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* ------------------------------------------------------------ values */
  function readInput(input, field) {
    if (field.type === "checkbox") return input.checked;
    var value = input.value.trim();
    if (field.type === "number") {
      return /^\d+$/.test(value) ? parseInt(value, 10) : value;  // not a number: the server says so at this field
    }
    if (!value && field.nullable) return null;
    return value;
  }

  function writeInput(input, field, value) {
    if (field.type === "checkbox") input.checked = value === undefined ? !!field.initial : !!value;
    else input.value = value === null || value === undefined ? "" : String(value);
  }

  function makeInput(field, id) {
    var input;
    if (field.type === "select") {
      input = el("select");
      field.options.forEach(function (option) {
        var node = el("option", "", option[1]);
        node.value = option[0];
        input.appendChild(node);
      });
    } else if (field.type === "textarea") {
      input = el("textarea");
      input.rows = 2;
    } else {
      input = el("input");
      input.type = field.type || "text";
      if (field.type === "number") { input.min = String(field.min); input.max = String(field.max); input.step = "1"; }
    }
    if (field.maxlength) input.maxLength = field.maxlength;
    input.id = id;
    input.dataset.key = field.key;
    return input;
  }

  /* ------------------------------------------------------------ a list of cards
   * opts: list (the <ol>), add (its add button), path ("materials"), noun ("材料"),
   * fields ([{key, label, type, options, nullable, hint}]), blank() (a new entry),
   * title(entry) (the card's heading after "材料 1："), announce(text). */
  function RowEditor(opts) {
    this.opts = opts;
    this.entries = [];
    var self = this;
    opts.add.addEventListener("click", function () {
      self.read();
      self.entries.push(opts.blank());
      self.render();
      self.focusCard(self.entries.length - 1);
      opts.announce("已添加第 " + self.entries.length + " 个" + opts.noun + "，请填写。");
    });
  }

  RowEditor.prototype.set = function (entries) {
    this.entries = (entries || []).map(function (entry) { return JSON.parse(JSON.stringify(entry)); });
    this.render();
  };

  /* The entries as the inputs have them (fields the page does not show are kept). */
  RowEditor.prototype.read = function () {
    var opts = this.opts;
    var cards = opts.list.children;
    this.entries = this.entries.map(function (entry, index) {
      var card = cards[index];
      var row = JSON.parse(JSON.stringify(entry));
      opts.fields.forEach(function (field) {
        row[field.key] = readInput(card.querySelector("[data-key='" + field.key + "']"), field);
      });
      return row;
    });
    return this.entries;
  };

  RowEditor.prototype.heading = function (index, entry) {
    var title = this.opts.title(entry);
    return this.opts.noun + " " + (index + 1) + (title ? "：" + title : "（未填写）");
  };

  RowEditor.prototype.render = function () {
    var self = this, opts = this.opts;
    opts.list.textContent = "";
    this.entries.forEach(function (entry, index) {
      var card = el("li", "row-card");
      var path = opts.path + "[" + index + "]";
      card.dataset.field = path;
      var heading = el("h4", "row-title", self.heading(index, entry));
      heading.id = opts.path + "-" + index + "-title";
      card.setAttribute("aria-labelledby", heading.id);
      card.appendChild(heading);
      var grid = el("div", "row-fields");
      opts.fields.forEach(function (field) {
        var id = opts.path + "-" + index + "-" + field.key;
        var box = el("div", "field" + (field.type === "checkbox" ? " check" : "") + (field.wide ? " wide" : ""));
        var input = makeInput(field, id);
        input.dataset.field = path + "." + field.key;
        writeInput(input, field, entry[field.key]);
        var label = el("label", "", field.label);
        label.htmlFor = id;
        if (field.type === "checkbox") { box.appendChild(input); box.appendChild(label); } else { box.appendChild(label); box.appendChild(input); }
        if (field.hint) {
          var hint = el("span", "field-hint", field.hint);
          hint.id = id + "-hint";
          input.setAttribute("aria-describedby", hint.id);
          box.appendChild(hint);
        }
        grid.appendChild(box);
      });
      card.appendChild(grid);
      var titleInput = grid.querySelector("[data-key='" + opts.fields[0].key + "']");
      titleInput.addEventListener("input", function () {
        var current = {};
        current[opts.fields[0].key] = titleInput.value.trim();
        heading.textContent = self.heading(index, Object.assign({}, entry, current));
      });
      card.appendChild(self.buttons(index));
      opts.list.appendChild(card);
    });
  };

  RowEditor.prototype.buttons = function (index) {
    var self = this, opts = this.opts, last = this.entries.length - 1;
    var bar = el("div", "row-actions");
    [["up", "上移", index === 0], ["down", "下移", index === last], ["remove", "删除", false]].forEach(function (spec) {
      var button = el("button", "row-" + spec[0], spec[1]);
      button.type = "button";
      button.dataset.action = spec[0];
      button.disabled = spec[2];
      button.setAttribute("aria-label", spec[1] + "第 " + (index + 1) + " 个" + opts.noun);
      button.addEventListener("click", function () { self.act(spec[0], index); });
      bar.appendChild(button);
    });
    return bar;
  };

  RowEditor.prototype.act = function (action, index) {
    var opts = this.opts;
    this.read();
    if (action === "remove") {
      this.entries.splice(index, 1);
      this.render();
      if (this.entries.length) this.focusCard(Math.min(index, this.entries.length - 1));
      else opts.add.focus();
      opts.announce("已删除第 " + (index + 1) + " 个" + opts.noun + "（发布后生效）。");
      return;
    }
    var target = action === "up" ? index - 1 : index + 1;
    var moved = this.entries.splice(index, 1)[0];
    this.entries.splice(target, 0, moved);
    this.render();
    var card = opts.list.children[target];
    var button = card.querySelector("[data-action='" + action + "']");
    (button.disabled ? card.querySelector("[data-action='" + (action === "up" ? "down" : "up") + "']") || card : button).focus();
    opts.announce(opts.noun + "已移到第 " + (target + 1) + " 位。");
  };

  RowEditor.prototype.focusCard = function (index) {
    var input = this.opts.list.children[index].querySelector("input, select, textarea");
    if (input) input.focus();
  };

  /* ------------------------------------------------------------ problems at their field */
  function holder(node) {
    return node.closest(".field, .row-card") || node.closest("fieldset") || node.parentNode;
  }

  /* The element of the form a problem's path points at: the path itself, else the
   * nearest enclosing one ("aliases[3]" → the aliases box, "materials[6]" → its card). */
  function target(form, path) {
    while (path) {
      var found = form.querySelector("[data-field=\"" + CSS.escape(path) + "\"]");
      if (found) return found;
      var cut = path.search(/(\.[^.\[\]]+|\[\d+\])$/);
      path = cut > 0 ? path.slice(0, cut) : "";
    }
    return null;
  }

  function clearProblems(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-problem"), function (node) { node.remove(); });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (node) {
      node.removeAttribute("aria-invalid");
      var described = (node.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id.indexOf("problem-") !== 0;
      });
      if (described.length) node.setAttribute("aria-describedby", described.join(" "));
      else node.removeAttribute("aria-describedby");
    });
  }

  /* Put each problem next to its field; returns the problems that have no field on
   * the page and the first field marked (to move the focus there). */
  function showProblems(form, fields) {
    clearProblems(form);
    var unplaced = [], first = null;
    (fields || []).forEach(function (item, index) {
      var node = item.field ? target(form, item.field) : null;
      if (!node) { unplaced.push(item.problem); return; }
      var note = el("p", "field-problem", item.problem);
      note.id = "problem-" + index;
      note.dataset.for = item.field;
      holder(node).appendChild(note);
      var input = /^(INPUT|SELECT|TEXTAREA)$/.test(node.tagName) ? node : null;
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + note.id).trim());
      }
      if (!first) first = input || node;
    });
    return { unplaced: unplaced, first: first };
  }

  window.banshiRows = { RowEditor: RowEditor, showProblems: showProblems, clearProblems: clearProblems, el: el };
}());
