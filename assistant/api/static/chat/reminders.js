/* 办事助手 — "提醒": this conversation's reminders (服务找人) and status notices,
 * listed and cancelled without typing "我的提醒" / "退订提醒".
 *
 * GET    /api/v1/chat/{id}/reminders               → {reminders: [...], subscriptions: [...]}
 * DELETE /api/v1/chat/{id}/reminders/{rid}         one dated reminder
 * DELETE /api/v1/chat/{id}/subscriptions/{sid}     one application's status notices
 * DELETE /api/v1/chat/{id}/reminders, …/subscriptions   all of them
 * (the conversation's token in X-Chat-Token). Reminders are set in the conversation
 * ("身份证2027年3月到期，提醒我", "提醒我" after a progress answer); the panel reloads
 * when a reply was about them. Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var chat = window.banshiChat;
  if (!chat) return;

  var ANSWER_FOLLOWUP = "followup";
  var EMPTY = "您目前没有设置提醒。";
  var LOADING = "正在读取您的提醒……";
  var FAILED = "网络好像有点问题，提醒没有读到，请稍后再试。";
  var CANCEL_FAILED = "网络好像有点问题，没有取消成功，请稍后再试。";
  var CANCELLED = "已取消：{what}。";
  var CANCELLED_ALL = "已全部取消，以后不会再提醒您。";
  var STATUS_WHEN = "状态有变化时提醒";
  var SEND_WHEN = "{when}提醒";
  var CANCEL_LABEL = "取消{what}";

  var openEl = document.getElementById("reminders-open");
  var panelEl = document.getElementById("reminders-panel");
  var closeEl = document.getElementById("reminders-close");
  var statusEl = document.getElementById("reminders-status");
  var listEl = document.getElementById("reminders-list");
  var allEl = document.getElementById("reminders-cancel-all");
  if (!openEl || !panelEl || !listEl || !statusEl || !allEl) return;

  var busy = false;

  var fill = chat.fill;

  function base(current) {
    return "/api/v1/chat/" + encodeURIComponent(current.sender_id);
  }

  function call(method, path, current) {
    return fetch(base(current) + path, {
      method: method,
      headers: { "Accept": "application/json", "X-Chat-Token": current.token },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (!res.ok && res.status !== 404) throw new Error("reminders " + res.status);
      return res.json();
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // "2027-03" → 2027年3月到期; "2026-12-20" → 2026年12月20日
  function dueText(due) {
    var parts = String(due || "").split("-");
    if (parts.length === 2) return parseInt(parts[0], 10) + "年" + parseInt(parts[1], 10) + "月到期";
    if (parts.length === 3) {
      return parseInt(parts[0], 10) + "年" + parseInt(parts[1], 10) + "月" + parseInt(parts[2], 10) + "日";
    }
    return "";
  }

  function sendText(iso) {
    var at = new Date(iso);
    if (isNaN(at.getTime())) return "";
    if (at.getTime() <= Date.now() + 120000) return "马上";
    return (at.getMonth() + 1) + "月" + at.getDate() + "日 " + pad(at.getHours()) + ":" + pad(at.getMinutes());
  }

  function item(what, when, onCancel) {
    var li = document.createElement("li");
    li.className = "reminders-item";
    var text = document.createElement("span");
    text.className = "reminders-text";
    var whatEl = document.createElement("span");
    whatEl.className = "reminders-what";
    whatEl.textContent = what;
    var whenEl = document.createElement("span");
    whenEl.className = "reminders-when";
    whenEl.textContent = when;
    text.appendChild(whatEl);
    text.appendChild(whenEl);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reminders-cancel";
    button.textContent = "取消";
    button.setAttribute("aria-label", fill(CANCEL_LABEL, { what: what }));
    button.addEventListener("click", function () { onCancel(button, what); });
    li.appendChild(text);
    li.appendChild(button);
    return li;
  }

  function render(body) {
    listEl.textContent = "";
    var subs = Array.isArray(body && body.subscriptions) ? body.subscriptions : [];
    var dated = Array.isArray(body && body.reminders) ? body.reminders : [];
    subs.forEach(function (s) {
      if (typeof s.id !== "number") return;
      var what = String(s.title || "") + " · 编号 " + String(s.number || "");
      listEl.appendChild(item(what, STATUS_WHEN, function (button, label) {
        cancel("/subscriptions/" + s.id, button, label);
      }));
    });
    dated.forEach(function (r) {
      if (typeof r.id !== "number") return;
      var what = String(r.title || "") + (r.number ? " · 编号 " + String(r.number) : "");
      var when = [dueText(r.due_on), fill(SEND_WHEN, { when: sendText(r.send_at) })].filter(Boolean).join("，");
      listEl.appendChild(item(what, when, function (button, label) {
        cancel("/reminders/" + r.id, button, label);
      }));
    });
    var count = listEl.children.length;
    allEl.hidden = count < 2;
    return count;
  }

  function load(message) {
    var current = chat.session();
    if (!current) {
      render(null);
      statusEl.textContent = EMPTY;
      return Promise.resolve();
    }
    if (!message) statusEl.textContent = LOADING;
    return call("GET", "/reminders", current).then(function (body) {
      var count = render(body);
      statusEl.textContent = message || (count ? "" : EMPTY);
      if (message && !count) statusEl.textContent = message + EMPTY;
    }, function () {
      statusEl.textContent = FAILED;
    });
  }

  function setBusy(on) {
    busy = on;
    allEl.disabled = on;
    Array.prototype.forEach.call(listEl.querySelectorAll("button"), function (b) { b.disabled = on; });
  }

  function cancel(path, button, what) {
    var current = chat.session();
    if (!current || busy) return;
    setBusy(true);
    call("DELETE", path, current).then(function () {
      setBusy(false);
      return load(fill(CANCELLED, { what: what }));
    }, function () {
      setBusy(false);
      statusEl.textContent = CANCEL_FAILED;
    });
  }

  function cancelAll() {
    var current = chat.session();
    if (!current || busy) return;
    setBusy(true);
    Promise.all([call("DELETE", "/reminders", current), call("DELETE", "/subscriptions", current)]).then(function () {
      setBusy(false);
      return load(CANCELLED_ALL);
    }, function () {
      setBusy(false);
      statusEl.textContent = CANCEL_FAILED;
    });
  }

  function setOpen(on) {
    panelEl.hidden = !on;
    openEl.setAttribute("aria-expanded", on ? "true" : "false");
    if (on) {
      load();
      closeEl.focus();
    } else {
      openEl.focus();
    }
  }

  openEl.addEventListener("click", function () { setOpen(panelEl.hidden); });
  closeEl.addEventListener("click", function () { setOpen(false); });
  allEl.addEventListener("click", cancelAll);
  panelEl.addEventListener("keydown", function (e) {
    if (e.key === "Escape") setOpen(false);
  });

  // A reminder set or cancelled in the conversation shows in the open panel.
  document.addEventListener("banshi:reply", function (e) {
    var body = e.detail || {};
    if (!panelEl.hidden && body.answer === ANSWER_FOLLOWUP) load();
  });
})();
