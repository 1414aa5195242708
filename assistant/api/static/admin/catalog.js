/* 办事助手 — catalog editor (admins).
 *
 * Lists and searches items and bundles (GET /api/v1/admin/catalog/records), loads the
 * record in effect into the form (materials and sources as one card per entry,
 * catalog-rows.js), validates and previews the draft (the chat answers citizens would
 * see), shows each problem next to its field, publishes it with a reason, shows the
 * history with what each version changed (…/revisions/{n}/diff, the fee highlighted)
 * and reverts to any version in one click; starts a retraining in the background and
 * polls its progress (…/retrain). Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var API = "/api/v1/admin/catalog";
  var ACTIONS = { publish: "发布", revert: "恢复" };
  var FORMS = [["original", "原件"], ["copy", "复印件"], ["original_and_copy", "原件和复印件"], ["form", "填写的表格"], ["other", "其他"]];
  var MATERIAL_FIELDS = [
    { key: "name", label: "名称", maxlength: 200, wide: true },
    { key: "form", label: "形式", type: "select", options: FORMS },
    { key: "count", label: "份数", type: "number", min: 1, max: 20 },
    { key: "e_license", label: "电子证照（可以用电子证照代替）", type: "checkbox" },
    { key: "required", label: "是否必需（勾选表示每个人都要交）", type: "checkbox", initial: true },
    { key: "condition", label: "条件（不是必需时，写明什么情况下要交）", maxlength: 500, wide: true },
    { key: "note", label: "说明", type: "textarea", maxlength: 1000, wide: true },
    { key: "source", label: "来源编号", maxlength: 64, nullable: true, hint: "不填则用下方“材料清单的来源编号”" }
  ];
  var SOURCE_FIELDS = [
    { key: "id", label: "编号（小写字母、数字和下划线）", maxlength: 64 },
    { key: "title", label: "标题", maxlength: 300, wide: true },
    { key: "issuer", label: "发布机关", maxlength: 200 },
    { key: "number", label: "文号", maxlength: 100 },
    { key: "url", label: "网址", maxlength: 500, wide: true },
    { key: "effective", label: "施行日期", type: "date", nullable: true },
    { key: "checked", label: "核对日期", type: "date" }
  ];

  function $(id) { return document.getElementById(id); }

  var state = { id: null, document: null, busy: false };

  /* ------------------------------------------------------------ helpers */
  var admin = window.banshiAdmin;
  var request = admin.request;
  var rows = window.banshiRows;
  var materials, sources;

  function today() {
    var now = new Date();
    return new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function setStatus(message) { $("status").textContent = message; }

  function fillList(listId, boxId, lines) {
    var list = $(listId);
    list.textContent = "";
    (lines || []).forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
    $(boxId).hidden = !lines || !lines.length;
  }

  function lines(text) {
    return text.split("\n").map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function ids(text) {
    return text.split(/[,，\s]+/).map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function asList(value) { return Array.isArray(value) ? value : (value ? [value] : []); }

  /* ------------------------------------------------------------ list */
  function loadList() {
    var params = new URLSearchParams();
    if ($("search").value.trim()) params.set("q", $("search").value.trim());
    if ($("kind").value) params.set("kind", $("kind").value);
    return request("GET", API + "/records?" + params.toString()).then(function (data) {
      var list = $("records");
      list.textContent = "";
      data.records.forEach(function (row) {
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.dataset.id = row.id;
        button.textContent = row.name;
        if (row.id === state.id) button.setAttribute("aria-current", "true");
        if (row.revision) {
          var note = document.createElement("span");
          note.className = "revised";
          note.textContent = "已在线修改（版本 " + row.revision + "）";
          button.appendChild(note);
        }
        button.addEventListener("click", function () { openRecord(row.id); });
        li.appendChild(button);
        list.appendChild(li);
      });
      $("count").textContent = "共 " + data.total + " 项";
    }, function (err) { showError(err.message); });
  }

  /* ------------------------------------------------------------ editor */
  function fillForm(doc) {
    $("record-name").textContent = doc.name + (doc.kind === "bundle" ? "（一件事）" : "");
    $("record-meta").textContent = "编号 " + doc.id + " · 部门 " + (doc.department || (doc.departments || []).join("、"));
    $("f-summary").value = doc.summary || "";
    $("f-fees").value = doc.fees || "";
    $("f-fees-source").value = asList(doc.fees_source).join(", ");
    $("f-time-limit").value = doc.time_limit || "";
    $("f-time-limit-source").value = asList(doc.time_limit_source).join(", ");
    $("f-window").value = doc.where.window || "";
    $("f-online").value = (doc.where.online || []).join("\n");
    $("f-phone").value = doc.where.phone || "";
    materials.set(doc.materials || []);
    $("f-materials-source").value = asList(doc.materials_source).join(", ");
    $("f-aliases").value = (doc.aliases || []).join("\n");
    $("f-situations").value = (doc.situations || []).join("\n");
    sources.set(doc.sources || []);
    $("f-verified").value = doc.verified || "";
  }

  function draft() {
    var doc = JSON.parse(JSON.stringify(state.document));
    doc.summary = $("f-summary").value.trim();
    doc.fees = $("f-fees").value.trim();
    doc.fees_source = ids($("f-fees-source").value);
    doc.time_limit = $("f-time-limit").value.trim();
    doc.time_limit_source = ids($("f-time-limit-source").value);
    doc.where = { window: $("f-window").value.trim(), online: lines($("f-online").value), phone: $("f-phone").value.trim() };
    doc.materials = materials.read();
    doc.materials_source = ids($("f-materials-source").value);
    doc.aliases = lines($("f-aliases").value);
    doc.situations = lines($("f-situations").value);
    doc.sources = sources.read();
    doc.verified = $("f-verified").value;
    return doc;
  }

  function clearResults() {
    fillList("problems", "problems-box", []);
    fillList("warnings", "warnings-box", []);
    $("preview-box").hidden = true;
    rows.clearProblems($("editor"));
    showError("");
  }

  /* The problems in the list above the buttons and each one next to its field; the
   * focus moves to the first field to fix. */
  function refused(err) {
    showError(err.message);
    fillList("problems", "problems-box", err.problems);
    var placed = rows.showProblems($("editor"), err.fields);
    if (placed.first) {
      placed.first.scrollIntoView({ block: "center" });
      if (placed.first.focus) placed.first.focus();
    }
    setStatus("");
  }

  function busy(on) {
    state.busy = on;
    ["validate-btn", "preview-btn", "publish-btn", "revert-file"].forEach(function (id) { $(id).disabled = on; });
  }

  function withDraft(action) {
    if (state.busy || !state.document) return;
    clearResults();
    var body = { document: draft() };
    busy(true);
    action(body).then(function () { busy(false); }, function (err) { busy(false); refused(err); });
  }

  function openRecord(id) {
    clearResults();
    setStatus("正在打开…");
    return request("GET", API + "/records/" + encodeURIComponent(id)).then(function (data) {
      state.id = id;
      state.document = data.document;
      fillForm(data.document);
      $("editor").hidden = false;
      $("reason").value = "";
      setStatus("正在修改：" + data.name + "（当前版本 " + (data.revision || "目录文件") + "）");
      Array.prototype.forEach.call(document.querySelectorAll("#records button"), function (b) {
        if (b.dataset.id === id) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
      });
      return loadHistory();
    }, function (err) { showError(err.message); });
  }

  function validate() {
    withDraft(function (body) {
      return request("POST", API + "/records/" + state.id + "/validate", body).then(function (data) {
        fillList("warnings", "warnings-box", data.warnings);
        setStatus("校验通过，可以发布。");
      });
    });
  }

  function preview() {
    withDraft(function (body) {
      return request("POST", API + "/records/" + state.id + "/preview", body).then(function (data) {
        var box = $("preview");
        box.textContent = "";
        data.answers.forEach(function (a) {
          var item = document.createElement("div");
          item.className = "answer";
          item.dataset.question = a.question;
          var label = document.createElement("div");
          label.className = "answer-label";
          label.textContent = "问“" + a.label + "”：";
          var text = document.createElement("p");
          text.className = "answer-text";
          text.textContent = a.text;
          item.appendChild(label);
          item.appendChild(text);
          box.appendChild(item);
        });
        $("preview-box").hidden = false;
        fillList("warnings", "warnings-box", data.warnings);
        setStatus("以下是发布后群众会看到的答复。");
      });
    });
  }

  function publish(event) {
    event.preventDefault();
    var from = document.activeElement;
    if (from && from.tagName === "INPUT" && from.id !== "reason") return;  // Enter in a field publishes nothing
    var reason = $("reason").value.trim();
    if (reason.length < 2) {
      showError("请填写修改原因（2到500个字）。");
      $("reason").focus();
      return;
    }
    withDraft(function (body) {
      body.reason = reason;
      return request("POST", API + "/records/" + state.id + "/publish", body).then(function (data) {
        setStatus("已发布（版本 " + data.revision + "），各服务节点将在几秒内使用新内容。");
        fillList("warnings", "warnings-box", data.warnings);
        return openAfterChange();
      });
    });
  }

  function openAfterChange() {
    var id = state.id, message = $("status").textContent;
    return openRecord(id).then(function () { setStatus(message); return loadList(); });
  }

  /* ------------------------------------------------------------ history */
  function revert(revision) {
    if (state.busy) return;
    var reason = $("reason").value.trim() || (revision ? "恢复到版本 " + revision : "恢复为目录文件中的版本");
    clearResults();
    busy(true);
    request("POST", API + "/records/" + state.id + "/revert", { revision: revision, reason: reason })
      .then(function (data) {
        busy(false);
        setStatus("已恢复（新版本 " + data.revision + "）。");
        return openAfterChange();
      }, function (err) { busy(false); refused(err); });
  }

  function loadHistory() {
    return request("GET", API + "/records/" + state.id + "/history").then(function (data) {
      var body = $("history");
      body.textContent = "";
      data.revisions.forEach(function (row, index) {
        var tr = document.createElement("tr");
        var what = row.action === "revert"
          ? ACTIONS.revert + (row.reverted_to ? "到版本 " + row.reverted_to : "为目录文件版本")
          : ACTIONS.publish;
        [String(row.id) + "（" + what + "）", row.created_at.replace("T", " ").replace("Z", " UTC"),
         row.author.replace(/^operator:/, ""), row.reason].forEach(function (text) {
          var td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        });
        var cell = document.createElement("td");
        var show = document.createElement("button");
        show.type = "button";
        show.className = "show-diff";
        show.dataset.revision = String(row.id);
        show.textContent = "查看改动";
        show.setAttribute("aria-controls", "diff-box");
        show.setAttribute("aria-expanded", "false");
        show.addEventListener("click", function () { showDiff(row.id, show); });
        cell.appendChild(show);
        if (index > 0) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "revert";
          button.dataset.revision = String(row.id);
          button.textContent = "恢复此版本";
          button.addEventListener("click", function () { revert(row.id); });
          cell.appendChild(button);
        } else {
          cell.appendChild(rows.el("span", "current", "当前版本"));
        }
        tr.appendChild(cell);
        body.appendChild(tr);
      });
      $("diff-box").hidden = true;
      $("history-empty").hidden = data.revisions.length > 0;
      $("revert-file").hidden = data.revisions.length === 0;
      $("history-box").hidden = false;
    }, function (err) { showError(err.message); });
  }

  /* ------------------------------------------------------------ what a version changed */
  function beforeAfter(before, after, className) {
    var box = rows.el("div", "before-after" + (className ? " " + className : ""));
    [["修改前", "del", before], ["修改后", "ins", after]].forEach(function (side) {
      var part = rows.el("div", "side");
      part.appendChild(rows.el("span", "side-label", side[0] + "："));
      part.appendChild(rows.el(side[1], "", side[2]));
      box.appendChild(part);
    });
    return box;
  }

  function entryList(title, entries, className) {
    var box = rows.el("div", "entries " + className);
    box.appendChild(rows.el("span", "side-label", title + "："));
    var list = rows.el("ul");
    entries.forEach(function (text) { list.appendChild(rows.el("li", "", text)); });
    box.appendChild(list);
    return box;
  }

  function renderChange(change) {
    var item = rows.el("li", "change" + (change.important ? " important" : ""));
    item.dataset.field = change.field;
    item.appendChild(rows.el(change.important ? "h4" : "strong", "change-label",
      change.important ? "⚠ " + change.label + "有变动，请仔细核对" : change.label));
    if (change.kind === "text") {
      item.appendChild(beforeAfter(change.before, change.after, change.important ? "big" : ""));
      return item;
    }
    if (change.added.length) item.appendChild(entryList("新增", change.added, "added"));
    if (change.removed.length) item.appendChild(entryList("删除", change.removed, "removed"));
    (change.changed || []).forEach(function (entry) {
      var box = rows.el("div", "entries changed");
      box.appendChild(rows.el("span", "side-label", "修改了“" + entry.name + "”："));
      entry.fields.forEach(function (f) {
        var line = rows.el("div", "sub-change");
        line.appendChild(rows.el("span", "sub-label", f.label));
        line.appendChild(beforeAfter(f.before, f.after));
        box.appendChild(line);
      });
      item.appendChild(box);
    });
    if (change.reordered) item.appendChild(rows.el("p", "reordered", "顺序有调整。"));
    return item;
  }

  function showDiff(revision, button) {
    Array.prototype.forEach.call(document.querySelectorAll("#history .show-diff"), function (b) {
      b.setAttribute("aria-expanded", b === button ? "true" : "false");
    });
    request("GET", API + "/records/" + state.id + "/revisions/" + revision + "/diff").then(function (data) {
      $("diff-title").textContent = "版本 " + data.id + " 改了什么（与它之前的版本相比）";
      $("diff-meta").textContent = data.created_at.replace("T", " ").replace("Z", " UTC") + " · " +
        data.author.replace(/^operator:/, "") + " · 原因：" + data.reason;
      var box = $("diff");
      box.textContent = "";
      if (!data.changes.length) {
        box.appendChild(rows.el("p", "empty", "这一版与之前的版本内容相同。"));
      } else {
        var list = rows.el("ul", "changes");
        data.changes.forEach(function (change) { list.appendChild(renderChange(change)); });
        box.appendChild(list);
      }
      $("diff-box").hidden = false;
      $("diff-box").focus();
    }, function (err) { showError(err.message); });
  }

  /* ------------------------------------------------------------ retraining */
  var RETRAIN_POLL_MS = 3000;
  var IDLE_POLL_MS = 15000;
  var RETRAIN_STATUS = { idle: "尚未训练过", running: "训练中", succeeded: "训练完成", failed: "训练失败" };
  var retrainTimer = null;

  function when(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : ""; }

  /* Each gateway replica takes up a new model within seconds (no restart). */
  function replicaText(replicas) {
    var loaded = replicas.filter(function (r) { return r.status === "loaded"; }).length;
    var failed = replicas.filter(function (r) { return r.status === "failed"; }).length;
    var text = loaded ? "已在 " + loaded + " 个网关启用" : "各网关正在加载，几秒内启用";
    if (failed) text += "，" + failed + " 个网关加载失败并继续使用原模型";
    return text;
  }

  function showRetrain(run) {
    var parts = [RETRAIN_STATUS[run.status] || run.status];
    if (run.status === "running") {
      if (run.phase) parts.push(run.phase + (run.progress === null || run.progress === undefined ? "" : " " + run.progress + "%"));
      if (run.last_line) parts.push("最新输出：" + run.last_line);
      parts.push("开始于 " + when(run.started_at));
    } else if (run.status !== "idle") {
      parts.push("开始 " + when(run.started_at) + "，结束 " + when(run.finished_at));
      if (run.status === "succeeded" && run.phase) parts.push(run.phase);
      if (run.model_path) parts.push("新模型：" + run.model_path + "（" + replicaText(run.replicas || []) + "）");
      (run.replicas || []).forEach(function (r) {
        if (r.status !== "loaded" && r.error) parts.push("网关 " + r.replica + "：" + r.error);
      });
      if (run.error) parts.push(run.error);
    }
    $("retrain-status").textContent = parts.join("；");
    $("retrain").disabled = run.status === "running";
    return run.status === "running";
  }

  function pollRetrain() {
    window.clearTimeout(retrainTimer);
    request("GET", API + "/retrain").then(function (run) {
      var busy = showRetrain(run) || (run.model_path && !(run.replicas || []).length);  // still loading
      retrainTimer = window.setTimeout(pollRetrain, busy ? RETRAIN_POLL_MS : IDLE_POLL_MS);
    }, function (err) {
      $("retrain-status").textContent = err.message;
      retrainTimer = window.setTimeout(pollRetrain, IDLE_POLL_MS);
    });
  }

  function startRetrain() {
    $("retrain").disabled = true;
    request("POST", API + "/retrain").then(function (run) {
      showRetrain(run);
      retrainTimer = window.setTimeout(pollRetrain, RETRAIN_POLL_MS);
    }, function (err) {
      $("retrain-status").textContent = err.message;
      pollRetrain();
    });
  }

  /* ------------------------------------------------------------ start */
  function start() {
    materials = new rows.RowEditor({
      list: $("materials"), add: $("add-material"), path: "materials", noun: "材料", fields: MATERIAL_FIELDS,
      blank: function () {
        return { name: "", form: "original", count: 1, e_license: false, note: "", required: true, condition: "", source: null };
      },
      title: function (m) { return m.name; }, announce: setStatus
    });
    sources = new rows.RowEditor({
      list: $("sources"), add: $("add-source"), path: "sources", noun: "来源", fields: SOURCE_FIELDS,
      blank: function () { return { id: "", title: "", issuer: "", number: "", url: "", effective: null, checked: today() }; },
      title: function (s) { return [s.id, s.title].filter(Boolean).join(" "); }, announce: setStatus
    });
    admin.signIn().then(null, function (err) { showError(err.message); });
    $("search-form").addEventListener("submit", function (event) { event.preventDefault(); loadList(); });
    $("kind").addEventListener("change", loadList);
    $("validate-btn").addEventListener("click", validate);
    $("preview-btn").addEventListener("click", preview);
    $("editor").addEventListener("submit", publish);
    $("revert-file").addEventListener("click", function () { revert(0); });
    $("retrain").addEventListener("click", startRetrain);
    loadList();
    pollRetrain();
  }

  start();
}());
