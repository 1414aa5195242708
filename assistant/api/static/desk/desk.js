/* 办事助手 — operator desk (vanilla JS, no dependencies).
 *
 * Login (cookie session + CSRF token), the live queue, one ticket's summary and
 * conversation, replies, close / hand back, and suggested answers (POST
 * /api/v1/assist) with the operator's marks. Server text is only ever inserted
 * with textContent (never innerHTML).
 */
(function () {
  "use strict";

  var API = "/api/v1/desk";
  var ASSIST_URL = "/api/v1/assist";
  var STREAM_RETRY_MS = 3000;
  var STREAM_RETRY_MAX_MS = 30000;
  var LATE_SECONDS = 300; // waiting longer than this is highlighted
  var TITLE = "人工坐席 - 办事助手";

  var NETWORK_ERROR = "网络连接有问题，请稍后再试。";
  var EXPIRED = "登录已过期，请重新登录。";

  var REASONS = { request_human: "群众要求转人工", complaint: "投诉", fallback: "助手未能回答" };
  var STATUSES = {
    waiting: "等待接入",
    active: "服务中",
    closed: "已结束",
    handed_back: "已转回智能助手",
    cancelled: "群众已取消"
  };
  var CHANNELS = { web: "网页", wechat: "微信", kiosk: "自助终端", hotline: "热线", api: "接口", cli: "命令行" };
  var QUESTION_TYPES = {
    overview: "办理概述",
    materials: "所需材料",
    conditions: "办理条件",
    process: "办理流程",
    fee: "收费标准",
    time_limit: "办理时限",
    location: "办理地点"
  };
  var INTENT_QUESTION = {
    ask_service: "overview",
    ask_materials: "materials",
    ask_conditions: "conditions",
    ask_process: "process",
    ask_fee: "fee",
    ask_time_limit: "time_limit",
    ask_location: "location"
  };
  var VERIFICATION = {
    verified: "已核验",
    number_given: "已提供办件号，未核验",
    none: "未核验",
    locked: "核验失败次数过多，已锁定",
    throttled: "查询过于频繁",
    unavailable: "办件系统暂不可用"
  };
  var OPEN = { waiting: true, active: true };

  function $(id) { return document.getElementById(id); }

  var el = {
    loading: $("loading"),
    login: $("login"),
    loginForm: $("login-form"),
    username: $("username"),
    password: $("password"),
    loginError: $("login-error"),
    loginBtn: $("login-btn"),
    desk: $("desk"),
    conn: $("conn"),
    queryMode: $("query-mode"),
    operatorName: $("operator-name"),
    logout: $("logout"),
    queue: $("queue"),
    queueCount: $("queue-count"),
    waitingCount: $("waiting-count"),
    queueEmpty: $("queue-empty"),
    ticketEmpty: $("ticket-empty"),
    ticket: $("ticket"),
    ticketTitle: $("ticket-title"),
    ticketStatus: $("ticket-status"),
    ticketWait: $("ticket-wait"),
    sumItem: $("sum-item"),
    sumReason: $("sum-reason"),
    sumChannel: $("sum-channel"),
    sumTurns: $("sum-turns"),
    sumVerification: $("sum-verification"),
    sumQuestion: $("sum-question"),
    sumAnswer: $("sum-answer"),
    conversation: $("conversation"),
    replyForm: $("reply-form"),
    reply: $("reply"),
    replyError: $("reply-error"),
    sendReply: $("send-reply"),
    handback: $("handback"),
    closeTicket: $("close-ticket"),
    ticketClosed: $("ticket-closed"),
    assistMode: $("assist-mode"),
    assistText: $("assist-text"),
    assistGo: $("assist-go"),
    assistClear: $("assist-clear"),
    assistStatus: $("assist-status"),
    suggestions: $("suggestions")
  };

  var state = {
    user: null,
    csrf: "",
    tickets: [],
    queueAt: 0, // Date.now() when the queue's waiting_seconds were computed
    knownIds: null, // ticket ids seen in the queue (to flag new arrivals)
    selectedId: null,
    ticket: null, // the open ticket (GET /tickets/{id})
    ticketAt: 0,
    shownIds: {}, // message ids shown in the conversation
    lastMessageId: 0,
    lastCitizenId: 0,
    busy: false, // a reply / close / hand back is being sent
    drafts: {}, // ticket id -> {text, pending}
    pending: null, // an inserted suggestion: {ticketId, snapshot, suggestion, query}
    assistAuto: "", // the text last put into #assist-text automatically
    assistSeq: 0,
    assistQuery: "",
    suggestions: [],
    context: null // the item/question of the answer used last (follow-up questions)
  };

  var events = null;
  var eventsRetry = null;
  var eventsDelay = STREAM_RETRY_MS;
  var ticker = null;

  /* ------------------------------------------------------------ helpers */
  function show(node, on) { node.hidden = !on; }

  function text(node, value) { node.textContent = value == null ? "" : String(value); }

  function make(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content != null) node.textContent = String(content);
    return node;
  }

  function formatWait(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(s) : two(m) + ":" + two(s);
  }

  function formatTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function itemName(t) {
    var s = (t && t.summary) || {};
    return s.item_name || (t && t.item_id) || "未识别事项";
  }

  function isOpen(t) { return !!(t && OPEN[t.status]); }

  /* ------------------------------------------------------------ network */
  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }

  function detailOf(body, fallback) {
    if (body && typeof body.detail === "string" && body.detail.trim()) return body.detail;
    return fallback;
  }

  // JSON request to the gateway; 401 anywhere goes back to the login form.
  function api(method, url, body, retried) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    return fetch(url, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      return res.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        if (res.ok) return data;
        if (res.status === 401 && url !== API + "/login") {
          loggedOut(EXPIRED);
          throw new ApiError(401, detailOf(data, EXPIRED));
        }
        if (res.status === 403 && method !== "GET" && !retried && url !== API + "/login") {
          // The CSRF token may be stale (logged in again in another tab): refresh it once.
          return refreshMe().then(function () { return api(method, url, body, true); });
        }
        throw new ApiError(res.status, detailOf(data, res.status >= 500 ? NETWORK_ERROR : "请求失败（" + res.status + "）"));
      });
    }, function () {
      throw new ApiError(0, NETWORK_ERROR);
    });
  }

  function refreshMe() {
    return api("GET", API + "/me").then(function (me) {
      state.user = me;
      state.csrf = me.csrf_token || "";
      return me;
    });
  }

  /* ------------------------------------------------------------ login */
  function showLogin(message) {
    show(el.loading, false);
    show(el.desk, false);
    show(el.login, true);
    text(el.loginError, message || "");
    show(el.loginError, !!message);
    el.password.value = "";
    el.loginBtn.disabled = false;
    document.title = TITLE;
    (el.username.value ? el.password : el.username).focus();
  }

  // The session ended (401): back to the login form.
  function loggedOut(message) {
    var wasIn = !!state.user;
    stopDesk();
    showLogin(wasIn ? message : "");
  }

  el.loginForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var username = el.username.value.trim();
    var password = el.password.value;
    if (!username || !password) {
      text(el.loginError, "请输入用户名和密码。");
      show(el.loginError, true);
      (username ? el.password : el.username).focus();
      return;
    }
    el.loginBtn.disabled = true;
    show(el.loginError, false);
    api("POST", API + "/login", { username: username, password: password }).then(function (me) {
      el.password.value = "";
      startDesk(me);
    }, function (err) {
      el.loginBtn.disabled = false;
      text(el.loginError, err.message || NETWORK_ERROR);
      show(el.loginError, true);
      el.password.select();
      el.password.focus();
    });
  });

  el.logout.addEventListener("click", function () {
    el.logout.disabled = true;
    api("POST", API + "/logout").then(function () {
      el.logout.disabled = false;
      stopDesk();
      showLogin("");
    }, function (err) {
      el.logout.disabled = false;
      if (err.status !== 401) alertConn(err.message);
    });
  });

  // For the page's other parts (desk-uploads.js: materials handed in by photo).
  window.banshiDesk = { api: api, formatTime: formatTime };

  /* ------------------------------------------------------------ desk life cycle */
  function startDesk(me) {
    state.user = me;
    state.csrf = me.csrf_token || "";
    show(el.loading, false);
    show(el.login, false);
    show(el.desk, true);
    text(el.operatorName, (me.display_name || me.username) + (me.role === "admin" ? "（管理员）" : ""));
    state.knownIds = null;
    renderMode();
    loadQueue();
    openEvents();
    if (!ticker) ticker = setInterval(tick, 1000);
    var saved = null;
    try { saved = parseInt(window.sessionStorage.getItem("banshi_desk_ticket") || "", 10); } catch (e) { saved = null; }
    if (saved > 0) selectTicket(saved, false);
    else el.assistText.focus();
  }

  function stopDesk() {
    closeEvents();
    if (ticker) clearInterval(ticker);
    ticker = null;
    state.user = null;
    state.csrf = "";
    state.tickets = [];
    state.knownIds = null;
    state.selectedId = null;
    state.ticket = null;
    state.shownIds = {};
    state.drafts = {};
    state.pending = null;
    state.suggestions = [];
    state.context = null;
    el.queue.textContent = "";
    el.conversation.textContent = "";
    el.suggestions.textContent = "";
    el.reply.value = "";
    el.assistText.value = "";
    text(el.assistStatus, "");
    show(el.ticket, false);
    show(el.ticketEmpty, true);
  }

  function alertConn(message) {
    text(el.conn, message);
    el.conn.classList.add("down");
  }

  /* ------------------------------------------------------------ live events */
  function closeEvents() {
    if (eventsRetry) clearTimeout(eventsRetry);
    eventsRetry = null;
    if (events) events.close();
    events = null;
  }

  function openEvents() {
    if (events || eventsRetry || typeof window.EventSource !== "function") return;
    var es = new window.EventSource(API + "/events");
    events = es;
    es.addEventListener("open", function () {
      eventsDelay = STREAM_RETRY_MS;
      text(el.conn, "● 实时连接正常");
      el.conn.classList.remove("down");
      // Catch up with what happened while the stream was away.
      if (state.selectedId) reloadTicket();
    });
    es.addEventListener("queue", function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data && Array.isArray(data.tickets)) renderQueue(data.tickets);
    });
    es.addEventListener("message", function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data && typeof data === "object") onLiveMessage(data);
    });
    es.addEventListener("error", function () {
      if (events !== es) return;
      alertConn("● 连接中断，正在重连…");
      if (es.readyState !== 2) return; // the browser reconnects by itself
      es.close();
      events = null;
      // Refused: maybe the session ended.
      api("GET", API + "/me").then(function (me) {
        state.csrf = me.csrf_token || state.csrf;
        eventsRetry = setTimeout(function () {
          eventsRetry = null;
          if (state.user) openEvents();
        }, eventsDelay);
        eventsDelay = Math.min(eventsDelay * 2, STREAM_RETRY_MAX_MS);
      }, function (err) {
        if (err.status === 401 || !state.user) return;
        eventsRetry = setTimeout(function () {
          eventsRetry = null;
          if (state.user) openEvents();
        }, eventsDelay);
        eventsDelay = Math.min(eventsDelay * 2, STREAM_RETRY_MAX_MS);
      });
    });
  }

  function onLiveMessage(m) {
    if (m.ticket_id !== state.selectedId || !state.ticket) return;
    appendMessage(m);
    if (m.role === "system") reloadTicket(); // closed or handed back (maybe by a colleague)
  }

  /* ------------------------------------------------------------ queue */
  function loadQueue() {
    return api("GET", API + "/queue").then(function (data) {
      if (data && Array.isArray(data.tickets)) renderQueue(data.tickets);
    }, function (err) {
      if (err.status !== 401) alertConn(err.message);
    });
  }

  function ticketItem(t) {
    var btn = make("button", "ticket-item " + t.status);
    btn.type = "button";
    btn.setAttribute("data-id", String(t.id));
    if (t.id === state.selectedId) {
      btn.classList.add("selected");
      btn.setAttribute("aria-current", "true");
    }

    var line1 = make("span", "t-line");
    line1.appendChild(make("span", "t-item", itemName(t)));
    var wait = make("span", "t-wait");
    wait.setAttribute("data-wait", String(t.waiting_seconds || 0));
    line1.appendChild(wait);
    btn.appendChild(line1);

    var meta = make("span", "t-line t-meta");
    var status = make("span", "t-status " + t.status,
      t.deferred && t.status === "waiting" ? "非服务时间登记" : (STATUSES[t.status] || t.status));
    meta.appendChild(status);
    meta.appendChild(make("span", "t-reason", REASONS[t.reason] || t.reason || ""));
    meta.appendChild(make("span", "t-channel", CHANNELS[t.channel] || t.channel || ""));
    if (t.status === "waiting" && t.position) meta.appendChild(make("span", "t-pos", "第" + t.position + "位"));
    if (t.status === "active" && t.operator) {
      var mine = state.user && t.operator === state.user.username;
      meta.appendChild(make("span", "t-op", mine ? "我在服务" : t.operator));
    }
    btn.appendChild(meta);

    var last = t.last_message;
    var preview = last ? (roleLabel(last) + "：" + (last.text || "")) : ("问题：" + ((t.summary || {}).question || "—"));
    btn.appendChild(make("span", "t-last" + (last && last.role === "citizen" ? " citizen" : ""), preview));
    btn.setAttribute("aria-label", itemName(t) + "，" + (STATUSES[t.status] || t.status) + "，" + preview);
    return btn;
  }

  function renderQueue(tickets) {
    var focusedId = document.activeElement && document.activeElement.classList &&
      document.activeElement.classList.contains("ticket-item")
      ? document.activeElement.getAttribute("data-id") : null;
    var first = state.knownIds === null;
    var known = state.knownIds || {};
    var now = {};
    state.tickets = tickets;
    state.queueAt = Date.now();

    // Entries are updated in place (only when they changed), so that a click in
    // progress or the keyboard focus is not lost when the queue refreshes.
    var existing = {};
    Array.prototype.forEach.call(el.queue.children, function (li) {
      existing[li.getAttribute("data-id")] = li;
    });
    var waiting = 0;
    var wanted = [];
    tickets.forEach(function (t) {
      if (t.status === "waiting") waiting++;
      now[t.id] = true;
      var signature = JSON.stringify([t.status, t.deferred, itemName(t), t.reason, t.channel, t.position,
        t.operator, t.last_message && t.last_message.id, t.id === state.selectedId]);
      var li = existing[String(t.id)];
      if (!li) {
        li = make("li");
        li.setAttribute("data-id", String(t.id));
      }
      if (li.getAttribute("data-sig") !== signature) {
        var btn = ticketItem(t);
        if (!first && !known[t.id]) btn.classList.add("fresh");
        var old = li.firstChild;
        var hadFocus = old && old === document.activeElement;
        if (old) li.replaceChild(btn, old);
        else li.appendChild(btn);
        li.setAttribute("data-sig", signature);
        if (hadFocus || String(t.id) === focusedId) btn.focus();
      }
      var wait = li.querySelector(".t-wait");
      if (wait) wait.setAttribute("data-wait", String(t.waiting_seconds || 0));
      wanted.push(li);
    });
    Object.keys(existing).forEach(function (id) {
      if (!now[id]) el.queue.removeChild(existing[id]);
    });
    wanted.forEach(function (li, i) {
      if (el.queue.children[i] !== li) el.queue.insertBefore(li, el.queue.children[i] || null);
    });
    state.knownIds = now;
    text(el.queueCount, tickets.length);
    el.queueCount.classList.toggle("zero", tickets.length === 0);
    text(el.waitingCount, waiting ? "等待 " + waiting + " 位" : "");
    show(el.queueEmpty, tickets.length === 0);
    document.title = (waiting ? "(" + waiting + ") " : "") + TITLE;
    tick();

    // Keep the open ticket in step with the queue.
    if (state.ticket && state.selectedId) {
      var inQueue = null;
      for (var i = 0; i < tickets.length; i++) {
        if (tickets[i].id === state.selectedId) inQueue = tickets[i];
      }
      if (!inQueue && isOpen(state.ticket)) {
        reloadTicket(); // ended elsewhere (citizen cancelled, a colleague closed it)
      } else if (inQueue) {
        var lastId = inQueue.last_message ? inQueue.last_message.id : 0;
        if (lastId > state.lastMessageId || inQueue.status !== state.ticket.status) reloadTicket();
      }
    }
  }

  function tick() {
    var elapsed = (Date.now() - state.queueAt) / 1000;
    var waits = el.queue.querySelectorAll(".t-wait");
    for (var i = 0; i < waits.length; i++) {
      var seconds = parseInt(waits[i].getAttribute("data-wait"), 10) + elapsed;
      waits[i].textContent = formatWait(seconds);
      waits[i].classList.toggle("late", seconds >= LATE_SECONDS);
    }
    if (state.ticket) {
      var since = (state.ticket.waiting_seconds || 0) + (Date.now() - state.ticketAt) / 1000;
      text(el.ticketWait, isOpen(state.ticket) ? "已等待 " + formatWait(since) : "");
    }
  }

  el.queue.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest(".ticket-item") : null;
    if (!btn) return;
    selectTicket(parseInt(btn.getAttribute("data-id"), 10), true);
  });

  el.queue.addEventListener("keydown", function (e) {
    var items = Array.prototype.slice.call(el.queue.querySelectorAll(".ticket-item"));
    var index = items.indexOf(document.activeElement);
    if (index < 0 || !items.length) return;
    var next = null;
    if (e.key === "ArrowDown") next = items[Math.min(items.length - 1, index + 1)];
    else if (e.key === "ArrowUp") next = items[Math.max(0, index - 1)];
    else if (e.key === "Home") next = items[0];
    else if (e.key === "End") next = items[items.length - 1];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  });

  /* ------------------------------------------------------------ ticket */
  function roleLabel(m) {
    if (m.role === "citizen") return "群众";
    if (m.role === "operator") {
      if (state.user && m.author === state.user.username) return "我";
      return "坐席" + (m.author ? " " + m.author : "");
    }
    return "系统";
  }

  function saveDraft() {
    if (!state.selectedId) return;
    state.drafts[state.selectedId] = { text: el.reply.value, pending: state.pending };
  }

  function rememberSelection(id) {
    try {
      if (id) window.sessionStorage.setItem("banshi_desk_ticket", String(id));
      else window.sessionStorage.removeItem("banshi_desk_ticket");
    } catch (e) { /* not essential */ }
  }

  function selectTicket(id, focusReply) {
    if (!id) return;
    if (id !== state.selectedId) {
      saveDraft();
      state.selectedId = id;
      state.ticket = null;
      state.shownIds = {};
      state.lastMessageId = 0;
      state.lastCitizenId = 0;
      var draft = state.drafts[id] || { text: "", pending: null };
      el.reply.value = draft.text;
      state.pending = draft.pending;
      state.context = null;
      clearSuggestions();
      el.assistText.value = "";
      state.assistAuto = "";
      show(el.replyError, false);
      markSelected();
    }
    rememberSelection(id);
    renderMode();
    return api("GET", API + "/tickets/" + id).then(function (t) {
      if (state.selectedId !== id) return;
      renderTicket(t, true);
      if (focusReply && isOpen(t)) el.reply.focus();
    }, function (err) {
      if (state.selectedId !== id) return;
      if (err.status === 404) {
        state.selectedId = null;
        rememberSelection(null);
        show(el.ticket, false);
        show(el.ticketEmpty, true);
        renderMode();
        return;
      }
      if (err.status !== 401) alertConn(err.message);
    });
  }

  function reloadTicket() {
    var id = state.selectedId;
    if (!id || !state.ticket) return;
    api("GET", API + "/tickets/" + id).then(function (t) {
      if (state.selectedId === id) renderTicket(t, false);
    }, function (err) {
      if (err.status && err.status !== 401) alertConn(err.message);
    });
  }

  function markSelected() {
    var items = el.queue.querySelectorAll(".ticket-item");
    for (var i = 0; i < items.length; i++) {
      var on = parseInt(items[i].getAttribute("data-id"), 10) === state.selectedId;
      items[i].classList.toggle("selected", on);
      if (on) items[i].setAttribute("aria-current", "true");
      else items[i].removeAttribute("aria-current");
    }
  }

  function verificationText(v) {
    if (!v || typeof v !== "object") return "未核验";
    var label = VERIFICATION[v.state] || (v.verified ? "已核验" : (v.state || "未核验"));
    if (v.verified && v.application_number) label += "（办件号 " + v.application_number + "）";
    return label;
  }

  function renderTicket(t, fresh) {
    state.ticket = t;
    state.ticketAt = Date.now();
    var s = t.summary || {};
    show(el.ticketEmpty, false);
    show(el.ticket, true);
    text(el.ticketTitle, "工单 #" + t.id);
    text(el.ticketStatus, t.deferred && t.status === "waiting" ? "非服务时间登记" : (STATUSES[t.status] || t.status));
    el.ticketStatus.className = "status " + t.status;
    text(el.sumItem, itemName(t));
    text(el.sumReason, REASONS[s.reason || t.reason] || s.reason || t.reason || "—");
    text(el.sumChannel, CHANNELS[s.channel || t.channel] || s.channel || t.channel || "—");
    text(el.sumTurns, s.turns != null ? s.turns : "—");
    text(el.sumVerification, verificationText(s.verification));
    text(el.sumQuestion, s.question || "—");
    text(el.sumAnswer, s.bot_answer || "—");

    var messages = Array.isArray(t.messages) ? t.messages : [];
    if (fresh) {
      el.conversation.textContent = "";
      state.shownIds = {};
      state.lastMessageId = 0;
      state.lastCitizenId = 0;
    }
    messages.forEach(appendMessage);
    if (!messages.length && !el.conversation.firstChild) {
      el.conversation.appendChild(make("p", "none", "群众转人工后还没有发新消息。"));
    }

    var open = isOpen(t);
    show(el.replyForm, open);
    show(el.ticketClosed, !open);
    text(el.ticketClosed, open ? "" : "本工单" + (STATUSES[t.status] || "已结束") + "，不能再回复。");
    setBusy(state.busy);

    // Nothing said since the handoff: ask about the question that led to it.
    if (fresh && !latestCitizenText(messages)) refillAssist(s.question || "");
    renderMode();
    tick();
    try {
      document.dispatchEvent(new CustomEvent("banshi:ticket", { detail: t }));
    } catch (e) { /* an old browser: the extras stay off */ }
  }

  function latestCitizenText(messages) {
    for (var i = messages.length - 1; i >= 0; i--) {
      if (messages[i].role === "citizen" && messages[i].text) return messages[i].text;
    }
    return "";
  }

  function appendMessage(m) {
    if (!m || typeof m.id !== "number" || state.shownIds[m.id]) return;
    state.shownIds[m.id] = true;
    state.lastMessageId = Math.max(state.lastMessageId, m.id);
    var placeholder = el.conversation.querySelector(".none");
    if (placeholder) placeholder.parentNode.removeChild(placeholder);
    var role = m.role === "citizen" || m.role === "operator" ? m.role : "system";
    var box = make("div", "msg " + role);
    box.setAttribute("data-id", String(m.id));
    box.appendChild(make("span", "who-line", roleLabel(m) + "  " + formatTime(m.at)));
    box.appendChild(make("span", "text", m.text || ""));
    // Keep the order by id (a live message may arrive before a reload's older ones).
    var after = null;
    var nodes = el.conversation.querySelectorAll(".msg");
    for (var i = nodes.length - 1; i >= 0; i--) {
      if (parseInt(nodes[i].getAttribute("data-id"), 10) < m.id) { after = nodes[i]; break; }
    }
    if (after) after.parentNode.insertBefore(box, after.nextSibling);
    else el.conversation.insertBefore(box, el.conversation.firstChild);
    el.conversation.scrollTop = el.conversation.scrollHeight;
    // The newest citizen message is what the assist panel looks up.
    if (role === "citizen" && m.id > state.lastCitizenId) {
      state.lastCitizenId = m.id;
      refillAssist(m.text);
    }
  }

  function setBusy(on) {
    state.busy = on;
    var open = isOpen(state.ticket);
    el.sendReply.disabled = on || !open;
    el.handback.disabled = on || !open;
    el.closeTicket.disabled = on || !open;
  }

  function replyErrorText(message) {
    text(el.replyError, message);
    show(el.replyError, !!message);
  }

  function sendReply() {
    if (state.busy || !state.ticket || !isOpen(state.ticket)) return;
    var body = el.reply.value.trim();
    if (!body) {
      replyErrorText("回复不能为空。");
      el.reply.focus();
      return;
    }
    var id = state.ticket.id;
    var pending = state.pending && state.pending.ticketId === id ? state.pending : null;
    var sentText = el.reply.value;
    replyErrorText("");
    setBusy(true);
    api("POST", API + "/tickets/" + id + "/messages", { text: body }).then(function (m) {
      setBusy(false);
      if (pending) {
        // Sent exactly as inserted: "used"; changed in any way first: "edited".
        postMark(pending.suggestion, pending.query, body === pending.snapshot.trim() ? "used" : "edited", id);
      }
      state.pending = null;
      delete state.drafts[id];
      if (state.selectedId === id) {
        if (el.reply.value === sentText) el.reply.value = "";
        appendMessage(m);
        el.reply.focus();
      }
    }, function (err) {
      setBusy(false);
      if (err.status === 401) return;
      replyErrorText(err.message);
      if (err.status === 409) reloadTicket();
    });
  }

  function finish(action) {
    if (state.busy || !state.ticket || !isOpen(state.ticket)) return;
    var id = state.ticket.id;
    replyErrorText("");
    setBusy(true);
    api("POST", API + "/tickets/" + id + "/" + action).then(function (t) {
      setBusy(false);
      state.pending = null;
      delete state.drafts[id];
      if (state.selectedId === id) {
        el.reply.value = "";
        renderTicket(t, false);
      }
      loadQueue();
    }, function (err) {
      setBusy(false);
      if (err.status === 401) return;
      replyErrorText(err.message);
      if (err.status === 409) reloadTicket();
    });
  }

  el.replyForm.addEventListener("submit", function (e) {
    e.preventDefault();
    sendReply();
  });

  el.reply.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) {
      e.preventDefault();
      sendReply();
    }
  });

  el.reply.addEventListener("input", function () {
    show(el.replyError, false);
    // Emptied by hand: the inserted suggestion was not used.
    if (!el.reply.value.trim()) state.pending = null;
  });

  el.handback.addEventListener("click", function () { finish("handback"); });
  el.closeTicket.addEventListener("click", function () { finish("close"); });

  el.queryMode.addEventListener("click", function () {
    saveDraft();
    state.selectedId = null;
    state.ticket = null;
    state.pending = null;
    state.context = null;
    rememberSelection(null);
    show(el.ticket, false);
    show(el.ticketEmpty, true);
    markSelected();
    clearSuggestions();
    el.assistText.value = "";
    state.assistAuto = "";
    renderMode();
    el.assistText.focus();
  });

  /* ------------------------------------------------------------ assist */
  function replyUsable() {
    return !!(state.ticket && isOpen(state.ticket) && !el.ticket.hidden);
  }

  function renderMode() {
    el.assistMode.textContent = "";
    if (state.selectedId) {
      el.assistMode.appendChild(document.createTextNode("为 "));
      el.assistMode.appendChild(make("strong", null, "工单 #" + state.selectedId));
      el.assistMode.appendChild(document.createTextNode(" 查找答案，可插入到回复框。"));
    } else {
      el.assistMode.appendChild(make("strong", null, "电话查询"));
      el.assistMode.appendChild(document.createTextNode("：输入来电群众的问题，查到的答案可复制。"));
    }
  }

  function refillAssist(value) {
    if (!value) return;
    var typing = document.activeElement === el.assistText && el.assistText.value !== state.assistAuto;
    if (typing) return;
    el.assistText.value = value;
    state.assistAuto = value;
  }

  function clearSuggestions() {
    state.assistSeq++;
    state.suggestions = [];
    el.suggestions.textContent = "";
    text(el.assistStatus, "");
    el.assistGo.disabled = false;
  }

  // What the conversation is about so far, so that "那要多少钱" finds the item.
  function assistContext() {
    var ctx = {};
    if (state.context) {
      ctx.item_id = state.context.item_id;
      if (state.context.question_type) ctx.question_type = state.context.question_type;
    } else if (state.selectedId && state.ticket) {
      var s = state.ticket.summary || {};
      var item = state.ticket.item_id || s.item_id;
      if (item) ctx.item_id = item;
      if (INTENT_QUESTION[s.intent]) ctx.question_type = INTENT_QUESTION[s.intent];
    }
    return ctx.item_id ? ctx : null;
  }

  function getSuggestions() {
    var query = el.assistText.value.trim();
    if (!query) {
      text(el.assistStatus, "请先输入群众的问题。");
      el.assistText.focus();
      return;
    }
    var seq = ++state.assistSeq;
    var payload = { text: query };
    var ctx = assistContext();
    if (ctx) payload.context = ctx;
    el.assistGo.disabled = true;
    text(el.assistStatus, "正在查找答案…");
    api("POST", ASSIST_URL, payload).then(function (data) {
      if (seq !== state.assistSeq) return;
      el.assistGo.disabled = false;
      renderSuggestions(data || {}, query);
    }, function (err) {
      if (seq !== state.assistSeq) return;
      el.assistGo.disabled = false;
      if (err.status === 401) return;
      text(el.assistStatus, err.message);
    });
  }

  function cardField(dl, label, value) {
    if (value == null || value === "" || (Array.isArray(value) && !value.length)) return;
    dl.appendChild(make("dt", null, label));
    var dd = make("dd");
    if (Array.isArray(value)) {
      var list = make(label === "所需材料" ? "ol" : "ul");
      value.forEach(function (v) { list.appendChild(make("li", null, v)); });
      dd.appendChild(list);
    } else {
      dd.textContent = String(value);
    }
    dl.appendChild(dd);
  }

  function suggestionCard(s, index) {
    var box = make("article", "suggestion");
    box.setAttribute("data-rank", String(s.rank));
    box.setAttribute("aria-label", "建议 " + (index + 1));

    var head = make("div", "s-head");
    head.appendChild(make("span", "s-rank", (index + 1) + "."));
    head.appendChild(make("span", "item-name", s.item_name || s.item_id));
    head.appendChild(make("span", "qtype", QUESTION_TYPES[s.question_type] || s.question_type));
    var pct = Math.round((Number(s.confidence) || 0) * 100);
    var conf = make("span", "confidence" + (pct < 40 ? " low" : ""), pct + "%");
    conf.title = "可信度";
    head.appendChild(conf);
    box.appendChild(head);

    box.appendChild(make("div", "answer", s.answer || ""));

    var card = s.card || {};
    var where = card.where || {};
    var details = make("details", "card");
    details.appendChild(make("summary", null, "知识卡片"));
    var dl = make("dl");
    cardField(dl, "所需材料", card.materials);
    cardField(dl, "收费", card.fees);
    cardField(dl, "办理时限", card.time_limit);
    cardField(dl, "办理窗口", where.window);
    cardField(dl, "网上办理", where.online);
    cardField(dl, "咨询电话", where.phone);
    cardField(dl, "办理部门", card.departments);
    details.appendChild(dl);
    box.appendChild(details);

    var actions = make("div", "actions");
    var insert = make("button", "insert primary", replyUsable() ? "插入" : "复制");
    insert.type = "button";
    insert.title = replyUsable() ? "把这条答案放进回复框" : "复制这条答案";
    var wrong = make("button", "wrong", "不对");
    wrong.type = "button";
    wrong.title = "这条建议不对（记录下来用于改进）";
    var note = make("span", "s-note");
    note.setAttribute("role", "status");
    actions.appendChild(insert);
    actions.appendChild(wrong);
    actions.appendChild(note);
    box.appendChild(actions);

    insert.addEventListener("click", function () { useSuggestion(s, box); });
    wrong.addEventListener("click", function () {
      wrong.disabled = true;
      postMark(s, state.assistQuery, "wrong", state.selectedId).then(function (ok) {
        if (ok) {
          box.classList.add("marked-wrong");
          text(note, "已记录：不对");
        } else {
          wrong.disabled = false;
          text(note, "记录失败，请重试");
        }
      });
    });
    return box;
  }

  function renderSuggestions(data, query) {
    el.suggestions.textContent = "";
    state.assistQuery = query;
    var list = Array.isArray(data.suggestions) ? data.suggestions.slice(0, 3) : [];
    state.suggestions = list;
    if (!list.length) {
      text(el.assistStatus, data.needs_item
        ? "没有找到明确的事项，请先和群众确认要办理的事项。"
        : "没有找到合适的答案，请换个说法再试。");
      return;
    }
    text(el.assistStatus, data.needs_item ? "事项不太明确，请和群众确认后再回答。" : "找到 " + list.length + " 条建议：");
    list.forEach(function (s, i) { el.suggestions.appendChild(suggestionCard(s, i)); });
    if (!state.selectedId && !data.needs_item) {
      // Phone mode: a follow-up question is most likely about the best answer's item.
      state.context = { item_id: list[0].item_id, question_type: list[0].question_type };
    }
  }

  function copyText(value) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(value).then(function () { return true; }, function () { return fallbackCopy(value); });
    }
    return Promise.resolve(fallbackCopy(value));
  }

  function fallbackCopy(value) {
    var area = make("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function useSuggestion(s, box) {
    var note = box.querySelector(".s-note");
    var answer = s.answer || "";
    if (!replyUsable()) {
      // Phone mode: the operator reads the answer out; copying it counts as used.
      copyText(answer).then(function (ok) {
        text(note, ok ? "已复制" : "请手动选中答案复制");
      });
      postMark(s, state.assistQuery, "used", null);
      state.context = { item_id: s.item_id, question_type: s.question_type };
      return;
    }
    var current = el.reply.value.replace(/\s+$/, "");
    // Replace an earlier inserted answer that was not changed; otherwise append.
    if (!current || (state.pending && el.reply.value === state.pending.snapshot)) {
      el.reply.value = answer;
    } else {
      el.reply.value = current + "\n" + answer;
    }
    state.pending = { ticketId: state.ticket.id, snapshot: el.reply.value, suggestion: s, query: state.assistQuery };
    state.context = { item_id: s.item_id, question_type: s.question_type };
    var cards = el.suggestions.querySelectorAll(".suggestion");
    for (var i = 0; i < cards.length; i++) {
      cards[i].classList.remove("inserted");
      var n = cards[i].querySelector(".s-note");
      if (n && n.textContent === "已插入回复框") n.textContent = "";
    }
    box.classList.add("inserted");
    text(note, "已插入回复框");
    show(el.replyError, false);
    el.reply.focus();
    el.reply.setSelectionRange(el.reply.value.length, el.reply.value.length);
  }

  // Record the operator's verdict on a suggestion; resolves true when stored.
  function postMark(s, query, mark, ticketId) {
    var body = {
      query: (query || "").slice(0, 2000) || "(空)",
      rank: s.rank,
      mark: mark,
      item_id: s.item_id,
      question_type: s.question_type,
      confidence: Math.max(0, Math.min(1, Number(s.confidence) || 0))
    };
    if (ticketId) body.ticket_id = ticketId;
    return api("POST", API + "/marks", body).then(function () { return true; }, function () { return false; });
  }

  el.assistGo.addEventListener("click", getSuggestions);
  el.assistText.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) {
      e.preventDefault();
      getSuggestions();
    }
  });
  el.assistClear.addEventListener("click", function () {
    el.assistText.value = "";
    state.assistAuto = "";
    if (!state.selectedId) state.context = null; // a new caller
    clearSuggestions();
    el.assistText.focus();
  });

  /* ------------------------------------------------------------ start */
  api("GET", API + "/me").then(startDesk, function (err) {
    showLogin(err.status === 401 ? "" : err.message);
  });
})();
