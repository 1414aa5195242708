/* 办事助手 — analytics dashboard (admins). Charts by Chart.js (vendored, MIT).
 *
 * Reads GET /api/v1/admin/analytics/report with the filters (also kept in the page's
 * address, so a view can be bookmarked or shared), draws every chart, fills the
 * not-understood list and points the CSV links at the same filters. Server text is
 * only ever inserted with textContent (never innerHTML).
 */
(function () {
  "use strict";

  var API = "/api/v1/admin/analytics";
  var NETWORK_ERROR = window.banshiAdmin.NETWORK_ERROR;
  var CHANNEL_COLORS = {
    web: "#0072B2", wechat: "#009E73", kiosk: "#E69F00", hotline: "#CC79A7",
    api: "#56B4E9", cli: "#7f7f7f", sms: "#D55E00", other: "#333333"
  };
  var GOOD = "#1b7f3b", BAD = "#c0392b", COMPLAINT = "#5b2c6f", NEUTRAL = "#9aa0a6";
  var SERIES = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"];
  var MAX_BARS = 10;

  function $(id) { return document.getElementById(id); }

  var state = { charts: {}, query: "" };

  /* ------------------------------------------------------------ helpers */
  function getJSON(url) { return window.banshiAdmin.request("GET", url); }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function isoDay(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
  }

  function daysAgo(n) {
    var d = new Date();
    d.setDate(d.getDate() - n);
    return isoDay(d);
  }

  function shortDay(iso) { return iso.slice(5); }

  function percent(rate) { return rate === null || rate === undefined ? null : Math.round(rate * 1000) / 10; }

  function percentText(rate) { return rate === null || rate === undefined ? "—" : percent(rate) + "%"; }

  function numberText(value) { return value === null || value === undefined ? "—" : String(value); }

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function setStatus(message) { $("status").textContent = message; }

  /* When the conversation turns were last counted (the report's rolled_up_at, UTC). */
  function freshness(rolledUpAt) {
    if (!rolledUpAt) return "";
    var at = new Date(rolledUpAt);
    if (isNaN(at.getTime())) return "";
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return "对话数据统计于 " + at.getFullYear() + "-" + two(at.getMonth() + 1) + "-" + two(at.getDate()) +
      " " + two(at.getHours()) + ":" + two(at.getMinutes()) + "。";
  }

  /* ------------------------------------------------------------ filters */
  function readForm() {
    var params = new URLSearchParams();
    params.set("start", $("start").value);
    params.set("end", $("end").value);
    if ($("channel").value) params.set("channel", $("channel").value);
    if ($("item").value) params.set("item", $("item").value);
    return params;
  }

  function fillForm(params) {
    $("start").value = params.get("start") || daysAgo(6);
    $("end").value = params.get("end") || daysAgo(0);
    $("channel").value = params.get("channel") || "";
    $("item").value = params.get("item") || "";
  }

  function addOptions(select, rows) {
    rows.forEach(function (row) {
      var option = document.createElement("option");
      option.value = row.id;
      option.textContent = row.name;
      select.appendChild(option);
    });
  }

  /* ------------------------------------------------------------ charts */
  function setupChartDefaults() {
    var defaults = window.Chart.defaults;
    defaults.font.family = '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", ' +
      '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif';
    defaults.font.size = 16;
    defaults.color = "#111";
    defaults.animation = false;
    defaults.maintainAspectRatio = false;
    defaults.plugins.legend.labels.boxWidth = 18;
    defaults.plugins.legend.position = "bottom";
  }

  function draw(id, config) {
    var canvas = $(id);
    var chart = state.charts[id];
    if (chart) {
      chart.data = config.data;
      chart.options = config.options || {};
      chart.update();
    } else {
      state.charts[id] = new window.Chart(canvas, config);
    }
    var empty = config.data.datasets.every(function (set) {
      return set.data.every(function (v) { return !v; });
    });
    var box = canvas.parentNode;
    var note = box.querySelector(".chart-empty");
    if (!note) {
      note = document.createElement("p");
      note.className = "chart-empty";
      note.textContent = "这段时间没有数据";
      box.appendChild(note);
    }
    note.hidden = !empty;
  }

  function barOptions(extra) {
    var options = {
      responsive: true,
      scales: { x: { ticks: { autoSkip: true } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { display: true } }
    };
    Object.keys(extra || {}).forEach(function (key) { options[key] = extra[key]; });
    return options;
  }

  function percentOptions() {
    return {
      responsive: true,
      scales: {
        y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } }
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + "：" + ctx.parsed.y + "%"; } } }
      }
    };
  }

  function horizontal(stacked) {
    return {
      indexAxis: "y",
      responsive: true,
      scales: {
        x: { beginAtZero: true, stacked: !!stacked, ticks: { precision: 0 } },
        y: { stacked: !!stacked, ticks: { autoSkip: false } }
      },
      plugins: { legend: { display: !!stacked } }
    };
  }

  function render(report) {
    var tables = report.tables;
    var days = tables.understood_daily.rows.map(function (r) { return r.day; });
    var labels = days.map(shortDay);

    // Conversations per day, one colour per channel, stacked.
    var channels = {};
    tables.conversations_daily.rows.forEach(function (r) {
      if (!channels[r.channel]) channels[r.channel] = { label: r.channel_label, values: {} };
      channels[r.channel].values[r.day] = r.conversations;
    });
    draw("chart-conversations", {
      type: "bar",
      data: {
        labels: labels,
        datasets: Object.keys(channels).sort().map(function (key) {
          return {
            label: channels[key].label,
            backgroundColor: CHANNEL_COLORS[key] || "#333",
            data: days.map(function (d) { return channels[key].values[d] || 0; })
          };
        })
      },
      options: barOptions({
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
      })
    });

    draw("chart-understood", {
      type: "line",
      data: {
        labels: labels,
        datasets: [{
          label: "理解率", borderColor: "#0072B2", backgroundColor: "#0072B2", borderWidth: 3, pointRadius: 5,
          data: tables.understood_daily.rows.map(function (r) { return percent(r.rate); })
        }]
      },
      options: percentOptions()
    });

    draw("chart-handoffs", {
      type: "line",
      data: {
        labels: labels,
        datasets: [{
          label: "转人工率", borderColor: "#D55E00", backgroundColor: "#D55E00", borderWidth: 3, pointRadius: 5,
          data: tables.handoffs_daily.rows.map(function (r) { return percent(r.rate); })
        }]
      },
      options: percentOptions()
    });

    draw("chart-reasons", {
      type: "doughnut",
      data: {
        labels: tables.handoff_reasons.rows.map(function (r) { return r.reason_label; }),
        datasets: [{
          label: "次数",
          backgroundColor: tables.handoff_reasons.rows.map(function (r, i) { return SERIES[i % SERIES.length]; }),
          data: tables.handoff_reasons.rows.map(function (r) { return r.count; })
        }]
      },
      options: { responsive: true, plugins: { legend: { display: true, position: "right" } } }
    });

    var percentiles = [["p50_ms", "P50"], ["p90_ms", "P90"], ["p95_ms", "P95"], ["p99_ms", "P99"]];
    draw("chart-response", {
      type: "bar",
      data: {
        labels: tables.response_times.rows.map(function (r) { return r.channel_label; }),
        datasets: percentiles.map(function (p, i) {
          return {
            label: p[1], backgroundColor: SERIES[i],
            data: tables.response_times.rows.map(function (r) { return r[p[0]]; })
          };
        })
      },
      options: barOptions()
    });

    function ratingSets(rows) {
      return [
        { label: "好评", backgroundColor: GOOD, data: rows.map(function (r) { return r.good; }) },
        { label: "差评", backgroundColor: BAD, data: rows.map(function (r) { return r.bad; }) },
        { label: "投诉", backgroundColor: COMPLAINT, data: rows.map(function (r) { return r.complaints; }) },
        { label: "未表态", backgroundColor: NEUTRAL, data: rows.map(function (r) { return r.neutral; }) }
      ];
    }
    var itemRatings = tables.ratings_by_item.rows.slice(0, MAX_BARS);
    draw("chart-rating-items", {
      type: "bar",
      data: { labels: itemRatings.map(function (r) { return r.item_name; }), datasets: ratingSets(itemRatings) },
      options: horizontal(true)
    });
    var channelRatings = tables.ratings_by_channel.rows;
    draw("chart-rating-channels", {
      type: "bar",
      data: { labels: channelRatings.map(function (r) { return r.channel_label; }), datasets: ratingSets(channelRatings) },
      options: barOptions()
    });

    draw("chart-items", {
      type: "bar",
      data: {
        labels: tables.top_items.rows.map(function (r) { return r.item_name; }),
        datasets: [{ label: "对话轮次", backgroundColor: "#0072B2",
                     data: tables.top_items.rows.map(function (r) { return r.turns; }) }]
      },
      options: horizontal(false)
    });
    draw("chart-questions", {
      type: "bar",
      data: {
        labels: tables.top_questions.rows.map(function (r) { return r.intent_label; }),
        datasets: [{ label: "对话轮次", backgroundColor: "#009E73",
                     data: tables.top_questions.rows.map(function (r) { return r.turns; }) }]
      },
      options: horizontal(false)
    });

    var noticeRows = tables.notifications.rows;
    var states = [["sent", "已发送", GOOD], ["failed", "发送失败", BAD], ["pending", "待发送", "#E69F00"],
                  ["capped", "超出每日上限", NEUTRAL]];
    draw("chart-notices", {
      type: "bar",
      data: {
        labels: noticeRows.map(function (r) { return r.kind_label + "·" + r.channel_label; }),
        datasets: states.map(function (s) {
          return { label: s[1], backgroundColor: s[2], data: noticeRows.map(function (r) { return r[s[0]]; }) };
        })
      },
      options: barOptions({
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }
      })
    });

    renderNotCovered(tables.not_covered.rows);
    renderTotals(report.totals);
  }

  function renderNotCovered(rows) {
    var body = $("not-covered");
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      [r.topic, String(r.count), r.last_day || ""].forEach(function (text, i) {
        var td = document.createElement("td");
        td.textContent = text;
        if (i === 1) td.className = "num";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    $("not-covered-empty").hidden = rows.length > 0;
  }

  function renderTotals(t) {
    var cards = [
      ["会话数", numberText(t.conversations)],
      ["对话轮次", numberText(t.turns)],
      ["理解率", percentText(t.understood_rate)],
      ["转人工率", percentText(t.handoff_rate)],
      ["好评率", percentText(t.satisfaction)],
      ["响应时间 P50", t.response_p50_ms === null ? "—" : t.response_p50_ms + " 毫秒"],
      ["响应时间 P90", t.response_p90_ms === null ? "—" : t.response_p90_ms + " 毫秒"],
      ["通知已发送", numberText(t.notices_sent)],
      ["通知发送失败", numberText(t.notices_failed)],
      ["通知待发送", numberText(t.notices_pending)]
    ];
    var box = $("totals");
    while (box.firstChild) box.removeChild(box.firstChild);
    cards.forEach(function (c) {
      var card = document.createElement("div");
      card.className = "total";
      var label = document.createElement("span");
      label.className = "total-label";
      label.textContent = c[0];
      var value = document.createElement("span");
      value.className = "total-value";
      value.textContent = c[1];
      card.appendChild(label);
      card.appendChild(value);
      box.appendChild(card);
    });
  }

  function updateLinks(query) {
    Array.prototype.forEach.call(document.querySelectorAll("a.csv"), function (a) {
      a.href = API + "/export/" + a.getAttribute("data-table") + ".csv?" + query;
      a.setAttribute("download", "");
    });
  }

  /* ------------------------------------------------------------ loading */
  function load() {
    var params = readForm();
    if (!params.get("start") || !params.get("end")) {
      showError("请选择开始日期和结束日期。");
      return;
    }
    var query = params.toString();
    state.query = query;
    showError("");
    setStatus("正在统计…");
    $("apply").disabled = true;
    document.body.removeAttribute("data-loaded");
    history.replaceState(null, "", window.location.pathname + "?" + query);
    updateLinks(query);
    getJSON(API + "/report?" + query).then(function (report) {
      if (query !== state.query) return; // a newer request is on its way
      render(report);
      var range = report.range;
      setStatus(range.start + " 至 " + range.end + "，共 " + range.days + " 天" +
        (range.channel ? "，渠道：" + $("channel").selectedOptions[0].textContent : "") +
        (range.item ? "，事项：" + $("item").selectedOptions[0].textContent : "") + "。");
      $("freshness").textContent = freshness(range.rolled_up_at);
      document.body.setAttribute("data-loaded", "1");
    }, function (error) {
      showError(error.message || NETWORK_ERROR);
      setStatus("");
    }).then(function () { $("apply").disabled = false; });
  }

  function quickRange(days) {
    $("start").value = daysAgo(days - 1);
    $("end").value = daysAgo(0);
    load();
  }

  function start() {
    if (!window.Chart) {
      showError("图表组件没有加载成功，请刷新页面。");
      return;
    }
    setupChartDefaults();
    $("filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    $("last7").addEventListener("click", function () { quickRange(7); });
    $("last30").addEventListener("click", function () { quickRange(30); });
    Promise.all([window.banshiAdmin.signIn(), getJSON(API + "/options")]).then(function (found) {
      var options = found[1];
      addOptions($("channel"), options.channels);
      addOptions($("item"), options.items);
      fillForm(new URLSearchParams(window.location.search));
      load();
    }, function (error) {
      showError(error.message || NETWORK_ERROR);
      setStatus("");
    });
  }

  start();
}());
