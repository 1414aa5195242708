/* 办事助手 — the review queue (admins). Trend chart by Chart.js (vendored, MIT).
 *
 * Reads GET /api/v1/admin/reviews (the list, with the filters kept in the page's
 * address), /summary (counts and the trend) and /options (reasons, channels, the
 * catalog's items and the domain's intents for an assignment); a row's "处理" opens
 * the editor: 指定 (assign), 审核通过 (accept), 不予采纳 (dismiss). Server text is
 * only ever inserted with textContent (never innerHTML).
 */
(function () {
  "use strict";

  var API = "/api/v1/admin/reviews";
  var NETWORK_ERROR = window.banshiAdmin.NETWORK_ERROR;

  function $(id) { return document.getElementById(id); }

  var state = { chart: null, query: "", items: {}, intents: {}, current: null };

  /* ------------------------------------------------------------ helpers */
  var admin = window.banshiAdmin;
  var request = admin.request;

  function showError(id, message) {
    $(id).textContent = message || "";
    $(id).hidden = !message;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function addOptions(select, rows, withId) {
    rows.forEach(function (row) {
      var option = document.createElement("option");
      option.value = row.id;
      option.textContent = withId ? row.name + "（" + row.id + "）" : row.name;
      select.appendChild(option);
    });
  }

  function understanding(review) {
    var parts = [];
    if (review.intent) parts.push("意图：" + (state.intents[review.intent] || review.intent));
    if (review.confidence !== null && review.confidence !== undefined) {
      parts.push("把握：" + Math.round(review.confidence * 100) + "%");
    }
    if (review.item_id) parts.push("事项：" + (review.item_name || review.item_id));
    if (review.detail) parts.push(review.detail);
    return parts.join("；");
  }

  function assignment(review) {
    if (review.not_covered) return "目录未收录" + (review.assigned_intent ? "；" + (state.intents[review.assigned_intent] || review.assigned_intent) : "");
    var parts = [];
    if (review.assigned_item) parts.push(review.assigned_item_name || review.assigned_item);
    if (review.assigned_intent) parts.push(state.intents[review.assigned_intent] || review.assigned_intent);
    return parts.join("；");
  }

  /* ------------------------------------------------------------ summary */
  function renderTotals(counts) {
    var cards = [["待处理", counts.pending], ["待指定", counts.open], ["待审核", counts.assigned], ["已完成", counts.done]];
    counts.by_reason.forEach(function (r) { if (r.count) cards.push([r.label, r.count]); });
    var box = $("totals");
    clear(box);
    cards.forEach(function (c) {
      var card = document.createElement("div");
      card.className = "total";
      var label = document.createElement("span");
      label.className = "total-label";
      label.textContent = c[0];
      var value = document.createElement("span");
      value.className = "total-value";
      value.textContent = String(c[1]);
      card.appendChild(label);
      card.appendChild(value);
      box.appendChild(card);
    });
    document.body.setAttribute("data-open", String(counts.pending));
  }

  function renderTrend(trend) {
    if (!window.Chart) return;
    var data = {
      labels: trend.map(function (d) { return d.day.slice(5); }),
      datasets: [
        { type: "line", label: "待处理（当天结束时）", data: trend.map(function (d) { return d.open; }),
          borderColor: "#0072B2", backgroundColor: "#0072B2", borderWidth: 3, pointRadius: 3 },
        { type: "bar", label: "当天新增", data: trend.map(function (d) { return d.new; }), backgroundColor: "#E69F00" }
      ]
    };
    var options = { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } } };
    if (state.chart) {
      state.chart.data = data;
      state.chart.update();
    } else {
      state.chart = new window.Chart($("chart-trend"), { data: data, options: options });
    }
  }

  function loadSummary() {
    return request("GET", API + "/summary").then(function (summary) {
      renderTotals(summary.counts);
      renderTrend(summary.trend);
    });
  }

  /* ------------------------------------------------------------ the list */
  function readForm() {
    var params = new URLSearchParams();
    params.set("state", $("state").value);
    if ($("reason").value) params.set("reason", $("reason").value);
    if ($("channel").value) params.set("channel", $("channel").value);
    return params;
  }

  function fillForm(params) {
    $("state").value = params.get("state") || "pending";
    $("reason").value = params.get("reason") || "";
    $("channel").value = params.get("channel") || "";
  }

  /* Where an accepted review went: a situation of an item, a training example, the not-covered list. */
  function destinations(review) {
    var list = document.createElement("ul");
    list.className = "destinations";
    review.destinations.forEach(function (d) {
      var li = document.createElement("li");
      li.setAttribute("data-kind", d.kind);
      li.textContent = d.text;
      list.appendChild(li);
    });
    return list;
  }

  function renderRows(found) {
    var body = $("rows");
    clear(body);
    found.items.forEach(function (review) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-review", String(review.id));
      tr.setAttribute("data-reason", review.reason);
      cell(tr, review.text, "said");
      cell(tr, review.reason_label);
      cell(tr, review.channel_label);
      cell(tr, review.seen, "num");
      cell(tr, understanding(review));
      var status = review.status_label;
      var assigned = assignment(review);
      if (assigned) status += "：" + assigned;
      if (review.outcome === "dismissed") status += "（不予采纳）";
      var statusCell = cell(tr, status, "review-status");
      if (review.destinations && review.destinations.length) statusCell.appendChild(destinations(review));
      var actions = cell(tr, "", "actions");
      actions.textContent = "";
      if (review.status !== "done") {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "open-review";
        button.textContent = "处理";
        button.addEventListener("click", function () { openEditor(review); });
        actions.appendChild(button);
      }
      body.appendChild(tr);
    });
    $("rows-empty").hidden = found.items.length > 0;
  }

  function load() {
    var query = readForm().toString();
    state.query = query;
    showError("error", "");
    $("status").textContent = "正在加载…";
    document.body.removeAttribute("data-loaded");
    history.replaceState(null, "", window.location.pathname + "?" + query);
    return Promise.all([request("GET", API + "?" + query), loadSummary()]).then(function (found) {
      if (query !== state.query) return;
      renderRows(found[0]);
      $("status").textContent = "共 " + found[0].total + " 条" + (found[0].total > found[0].items.length ? "，显示最近的 " + found[0].items.length + " 条" : "") + "。";
      document.body.setAttribute("data-loaded", "1");
    }, function (error) {
      showError("error", error.message || NETWORK_ERROR);
      $("status").textContent = "";
    });
  }

  /* ------------------------------------------------------------ the editor */
  function openEditor(review) {
    state.current = review;
    $("editor").hidden = false;
    $("editor-text").textContent = "“" + review.text + "”";
    $("editor-meta").textContent = review.reason_label + "；" + review.channel_label + "；" + understanding(review);
    $("assign-item").value = review.assigned_item || review.item_id || "";
    if ($("assign-item").value !== (review.assigned_item || review.item_id || "")) $("assign-item").value = "";
    $("assign-intent").value = review.assigned_intent || "";
    $("assign-not-covered").checked = !!review.not_covered;
    $("assign-item").disabled = !!review.not_covered;
    $("assign-note").value = review.note || "";
    $("accept-btn").disabled = review.status !== "assigned";
    showError("editor-error", "");
    $("editor").scrollIntoView({ block: "nearest" });
    $("assign-item").focus();
  }

  function closeEditor() {
    state.current = null;
    $("editor").hidden = true;
  }

  function act(path, body, done) {
    var review = state.current;
    if (!review) return;
    showError("editor-error", "");
    Array.prototype.forEach.call($("assign-form").querySelectorAll("button"), function (b) { b.disabled = true; });
    request("POST", API + "/" + review.id + "/" + path, body).then(function (result) {
      return load().then(function () { done(result); });
    }, function (error) {
      showError("editor-error", error.message || NETWORK_ERROR);
    }).then(function () {
      Array.prototype.forEach.call($("assign-form").querySelectorAll("button"), function (b) { b.disabled = false; });
      if (state.current) $("accept-btn").disabled = state.current.status !== "assigned";
    });
  }

  function assign(event) {
    event.preventDefault();
    var notCovered = $("assign-not-covered").checked;
    var body = {
      item_id: notCovered ? null : ($("assign-item").value || null),
      intent: $("assign-intent").value || null,
      not_covered: notCovered,
      note: $("assign-note").value.trim() || null
    };
    if (!body.item_id && !body.intent && !notCovered) {
      showError("editor-error", "请选择正确的事项或意图，或者标记为“目录未收录”。");
      return;
    }
    act("assign", body, function (review) {
      state.current = review;
      $("status").textContent = "已指定，请再审核通过。";
    });
  }

  function accept() {
    act("accept", {}, function (result) {
      closeEditor();
      if (result && result.warning) showError("error", result.warning);
      var said = "已审核通过。";
      if (result && result.situation) said += result.situation.message + "。";
      $("status").textContent = said;
    });
  }

  function dismiss() {
    act("dismiss", { note: $("assign-note").value.trim() || null }, function () {
      closeEditor();
      $("status").textContent = "已标记为不予采纳。";
    });
  }

  function start() {
    $("filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    $("assign-form").addEventListener("submit", assign);
    $("accept-btn").addEventListener("click", accept);
    $("dismiss-btn").addEventListener("click", dismiss);
    $("close-btn").addEventListener("click", closeEditor);
    $("assign-not-covered").addEventListener("change", function () {
      $("assign-item").disabled = $("assign-not-covered").checked;
      if ($("assign-not-covered").checked) $("assign-item").value = "";
    });
    Promise.all([admin.signIn(), request("GET", API + "/options")]).then(function (found) {
      var options = found[1];
      addOptions($("reason"), options.reasons);
      addOptions($("channel"), options.channels);
      addOptions($("assign-item"), options.items, true);
      addOptions($("assign-intent"), options.intents, true);
      options.items.forEach(function (i) { state.items[i.id] = i.name; });
      options.intents.forEach(function (i) { state.intents[i.id] = i.name; });
      fillForm(new URLSearchParams(window.location.search));
      load();
    }, function (error) {
      showError("error", error.message || NETWORK_ERROR);
      $("status").textContent = "";
    });
  }

  start();
}());
