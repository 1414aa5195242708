/* 办事助手 — mobile web chat (vanilla JS, no dependencies).
 * Server text is only ever inserted with textContent (never innerHTML);
 * newlines are rendered by CSS `white-space: pre-wrap`.
 */
(function () {
  "use strict";

  var API_URL = "/api/v1/chat";
  var SESSION_URL = "/api/v1/chat/sessions";
  var EVENTS_URL = "/api/v1/chat/events";
  var STORAGE_KEY = "banshi_chat_session";
  var OLD_STORAGE_KEY = "banshi_sender_id"; // before conversations had tokens
  var MAX_LEN = 500;
  var TIMEOUT_MS = 30000;
  var STREAM_RETRY_MS = 3000;
  var STREAM_RETRY_MAX_MS = 60000;
  var DUPLICATE_WINDOW_MS = 15000;

  var WELCOME_TEXT = "您好，我是办事助手。您可以问我办事要带什么材料、去哪里办、多久能办好。";
  var STARTERS = ["社保卡怎么办", "身份证丢了怎么补办", "孩子上小学要带什么"];
  var HUMAN_TEXT = "转人工";
  var NETWORK_ERROR = "网络好像有点问题，请稍后再试。";
  var INPUT_ERROR = "您的输入有误，请修改后再试。";
  var EMPTY_REPLY = "抱歉，我暂时没能回答这个问题，可以换个说法再问一次，或点击右上角“找人工”。";
  var CANCEL_TEXT = "取消人工";
  var RELAYED_TEXT = "已转给工作人员，请稍候。";
  var OPERATOR_LABEL = "工作人员";
  // System notices that end the human conversation (closed, handed back, cancelled).
  var HANDOFF_END_RE = /已结束|转回|已取消/;

  var listEl = document.getElementById("messages");
  var formEl = document.getElementById("composer");
  var inputEl = document.getElementById("input");
  var sendEl = document.getElementById("send");
  var humanEl = document.getElementById("human");
  var barEl = document.getElementById("handoff-bar");
  var barTextEl = document.getElementById("handoff-status");
  var cancelEl = document.getElementById("handoff-cancel");

  var sending = false;
  var typingEl = null;

  /* ---------- conversation session ----------
   * {sender_id, token} from POST /api/v1/chat/sessions, kept in localStorage with
   * the id of the last live message shown (last_id), the open handoff ticket
   * (handoff) and the tickets this page cancelled itself (cancelled).
   */
  var session = null;
  var sessionRequest = null;

  function validSession(s) {
    return !!(s && typeof s === "object" && typeof s.sender_id === "string" && s.sender_id &&
      typeof s.token === "string" && s.token);
  }

  function loadSession() {
    try {
      window.localStorage.removeItem(OLD_STORAGE_KEY);
      var raw = window.localStorage.getItem(STORAGE_KEY);
      var stored = raw ? JSON.parse(raw) : null;
      if (validSession(stored)) {
        if (typeof stored.last_id !== "number" || stored.last_id < 0) stored.last_id = 0;
        if (!stored.handoff || typeof stored.handoff !== "object") stored.handoff = null;
        if (!Array.isArray(stored.cancelled)) stored.cancelled = [];
        return stored;
      }
    } catch (e) { /* unavailable or corrupt: start a new conversation */ }
    return null;
  }

  function saveSession() {
    if (!session) return;
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    } catch (e) { /* private mode: keep it for this page only */ }
  }

  function newSession() {
    if (sessionRequest) return sessionRequest;
    sessionRequest = fetch(SESSION_URL, {
      method: "POST",
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (!res.ok) throw new Error("session " + res.status);
      return res.json();
    }).then(function (body) {
      if (!validSession(body)) throw new Error("bad session");
      closeStream();
      session = { sender_id: body.sender_id, token: body.token, last_id: 0, handoff: null, cancelled: [] };
      saveSession();
      renderHandoff();
      sessionRequest = null;
      return session;
    }, function (err) {
      sessionRequest = null;
      throw err;
    });
    return sessionRequest;
  }

  function ensureSession() {
    if (session) return Promise.resolve(session);
    return newSession();
  }

  /* ---------- rendering ---------- */
  function scrollToBottom() {
    // Reading scrollHeight forces layout, so this works right away; repeat on
    // the next frame in case fonts/keyboard change the height afterwards.
    listEl.scrollTop = listEl.scrollHeight;
    if (window.requestAnimationFrame) {
      window.requestAnimationFrame(function () {
        listEl.scrollTop = listEl.scrollHeight;
      });
    }
  }

  function appendRow(row) {
    if (typingEl && typingEl.parentNode === listEl) {
      listEl.insertBefore(row, typingEl);
    } else {
      listEl.appendChild(row);
    }
    scrollToBottom();
    return row;
  }

  function disableAllChips(chosen) {
    var chips = listEl.querySelectorAll(".chip");
    for (var i = 0; i < chips.length; i++) {
      chips[i].disabled = true;
    }
    if (chosen) chosen.classList.add("chosen");
  }

  // Re-enable a chip group (used when a send fails, so the user can retry).
  function enableChips(group) {
    if (!group || !group.parentNode) return;
    var chips = group.querySelectorAll(".chip");
    for (var i = 0; i < chips.length; i++) {
      chips[i].disabled = false;
      chips[i].classList.remove("chosen");
    }
  }

  function activeChipGroup() {
    var groups = listEl.querySelectorAll(".chips");
    for (var i = groups.length - 1; i >= 0; i--) {
      if (groups[i].querySelector(".chip:not(:disabled)")) return groups[i];
    }
    return null;
  }

  function buildChips(buttons) {
    var wrap = document.createElement("div");
    wrap.className = "chips";
    wrap.setAttribute("role", "group");
    wrap.setAttribute("aria-label", "快捷回复");
    buttons.forEach(function (b) {
      if (!b) return;
      var title = typeof b.title === "string" ? b.title : "";
      var payload = typeof b.payload === "string" && b.payload ? b.payload : title;
      if (!title && !payload) return;
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = title || payload;
      chip.setAttribute("aria-label", "快捷回复：" + (title || payload));
      chip.addEventListener("click", function () {
        if (sending || chip.disabled) return;
        sendMessage(payload, title || payload, { chip: chip });
      });
      wrap.appendChild(chip);
    });
    return wrap.childNodes.length ? wrap : null;
  }

  function addBotMessage(text, buttons) {
    var row = document.createElement("div");
    row.className = "row bot";

    var avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.textContent = "办";
    avatar.setAttribute("aria-hidden", "true");
    row.appendChild(avatar);

    var col = document.createElement("div");
    col.className = "col";

    var hasText = typeof text === "string" && text.length > 0;
    var chips = Array.isArray(buttons) && buttons.length ? buildChips(buttons) : null;

    var bubble = document.createElement("div");
    bubble.className = "msg bot";
    bubble.textContent = hasText ? text : (chips ? "请选择：" : "");
    col.appendChild(bubble);

    if (chips) col.appendChild(chips);
    row.appendChild(col);
    return appendRow(row);
  }

  function addUserMessage(text) {
    var row = document.createElement("div");
    row.className = "row user";
    var bubble = document.createElement("div");
    bubble.className = "msg user";
    bubble.textContent = text;
    row.appendChild(bubble);
    return appendRow(row);
  }

  function addSystemMessage(text) {
    var row = document.createElement("div");
    row.className = "row system";
    var bubble = document.createElement("div");
    bubble.className = "msg system";
    bubble.setAttribute("role", "alert");
    bubble.textContent = text;
    row.appendChild(bubble);
    return appendRow(row);
  }

  // A status notice or reminder (live, or kept while the chat was closed).
  function addNotice(text) {
    var row = document.createElement("div");
    row.className = "row system notice";
    var bubble = document.createElement("div");
    bubble.className = "msg notice";
    bubble.setAttribute("role", "status");
    bubble.textContent = text;
    row.appendChild(bubble);
    return appendRow(row);
  }

  function addOperatorMessage(text) {
    var row = document.createElement("div");
    row.className = "row operator";

    var avatar = document.createElement("span");
    avatar.className = "avatar operator";
    avatar.textContent = "工";
    avatar.setAttribute("aria-hidden", "true");
    row.appendChild(avatar);

    var col = document.createElement("div");
    col.className = "col";
    var label = document.createElement("div");
    label.className = "sender";
    label.textContent = OPERATOR_LABEL;
    col.appendChild(label);
    var bubble = document.createElement("div");
    bubble.className = "msg operator";
    bubble.textContent = text;
    col.appendChild(bubble);
    row.appendChild(col);
    return appendRow(row);
  }

  // The notice of "取消人工" reaches the page twice (in the reply and on the live
  // stream): a reply equal to a live notice of the last few seconds is not shown
  // again (the other order is handled by session.cancelled).
  var recentNotices = [];
  function seenRecently(text) {
    var now = Date.now();
    recentNotices = recentNotices.filter(function (n) { return now - n.at < DUPLICATE_WINDOW_MS; });
    for (var i = 0; i < recentNotices.length; i++) {
      if (recentNotices[i].text === text) return true;
    }
    return false;
  }
  function rememberNotice(text) {
    recentNotices.push({ text: text, at: Date.now() });
  }

  function showTyping() {
    hideTyping();
    var row = document.createElement("div");
    row.className = "row bot typing-row";
    var avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.textContent = "办";
    avatar.setAttribute("aria-hidden", "true");
    var box = document.createElement("div");
    box.className = "typing";
    var label = document.createElement("span");
    label.textContent = "正在输入…";
    var dots = document.createElement("span");
    dots.className = "dots";
    dots.setAttribute("aria-hidden", "true");
    for (var i = 0; i < 3; i++) dots.appendChild(document.createElement("span"));
    box.appendChild(label);
    box.appendChild(dots);
    row.appendChild(avatar);
    row.appendChild(box);
    listEl.appendChild(row);
    typingEl = row;
    scrollToBottom();
  }

  function hideTyping() {
    if (typingEl && typingEl.parentNode) typingEl.parentNode.removeChild(typingEl);
    typingEl = null;
  }

  function setSending(on) {
    sending = on;
    sendEl.disabled = on;
    inputEl.readOnly = on; // readOnly (not disabled) keeps focus / keyboard on mobile
    humanEl.disabled = on;
    cancelEl.disabled = on;
    if (on) {
      listEl.setAttribute("aria-busy", "true");
    } else {
      listEl.removeAttribute("aria-busy");
    }
  }

  /* ---------- networking ---------- */
  function detailToText(body) {
    if (body && typeof body.detail === "string" && body.detail.trim()) return body.detail;
    return INPUT_ERROR; // list-form details (validation errors) are not meant for people
  }

  function postOnce(text, current) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    var opts = {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ sender_id: current.sender_id, text: text, channel: "web", token: current.token }),
      credentials: "same-origin",
      cache: "no-store"
    };
    if (controller) opts.signal = controller.signal;

    return fetch(API_URL, opts).then(function (res) {
      if (timer) clearTimeout(timer);
      return res.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        if (res.ok) {
          if (!body || typeof body !== "object") return { kind: "network" };
          return { kind: "ok", body: body };
        }
        if (res.status === 403) return { kind: "forbidden", message: detailToText(body) };
        if (res.status >= 400 && res.status < 500) {
          return { kind: "client", message: detailToText(body) };
        }
        return { kind: "network" };
      });
    }, function () {
      if (timer) clearTimeout(timer);
      return { kind: "network" };
    });
  }

  // One turn; a refused token (e.g. the server's key changed) gets a new
  // conversation and one retry.
  function postChat(text) {
    return ensureSession().then(function (current) {
      return postOnce(text, current).then(function (result) {
        if (result.kind !== "forbidden") return result;
        session = null;
        return newSession().then(function (fresh) {
          return postOnce(text, fresh).then(function (again) {
            return again.kind === "forbidden" ? { kind: "client", message: again.message } : again;
          });
        });
      });
    }).catch(function () {
      return { kind: "network" };
    });
  }

  function renderReply(body) {
    var msgs = Array.isArray(body.messages) ? body.messages : [];
    var ticket = body.handoff && typeof body.handoff === "object" ? body.handoff : null;
    var shown = 0;
    msgs.forEach(function (m) {
      if (!m || typeof m !== "object") return;
      var text = typeof m.text === "string" ? m.text : "";
      var buttons = Array.isArray(m.buttons) ? m.buttons : [];
      if (!text && !buttons.length) return;
      shown++;
      if (!buttons.length && seenRecently(text)) return; // already shown from the live stream
      addBotMessage(text, buttons);
    });
    if (ticket) {
      setHandoff(ticket);
      // A person holds the conversation: the bot is quiet on purpose. Say so
      // once per ticket, not after every message.
      if (!shown) {
        if (relayNoticeFor !== ticket.ticket_id) {
          relayNoticeFor = ticket.ticket_id;
          addSystemMessage(RELAYED_TEXT);
        }
        shown++;
      }
    } else if (shown && session && session.handoff && !session.handoff.deferred && !session.handoff.follow_up) {
      // The assistant answered: no ticket holds the conversation any more
      // (e.g. "取消人工" while waiting).
      endHandoff(session.handoff.ticket_id, true);
    }
    if (!shown) addBotMessage(EMPTY_REPLY, []);
  }

  /* ---------- human handoff ---------- */
  var relayNoticeFor = null;

  function setHandoff(ticket) {
    if (!session || !ticket || typeof ticket.ticket_id !== "number") return;
    session.handoff = {
      ticket_id: ticket.ticket_id,
      status: ticket.status === "active" ? "active" : "waiting",
      deferred: !!ticket.deferred,
      follow_up: !!ticket.follow_up,
      position: typeof ticket.position === "number" ? ticket.position : null
    };
    saveSession();
    renderHandoff();
    openStream();
  }

  // cancelledHere: this page's "取消人工" ended it (its notice is shown already).
  function endHandoff(ticketId, cancelledHere) {
    if (!session) return;
    if (cancelledHere && typeof ticketId === "number") {
      session.cancelled.push(ticketId);
      session.cancelled = session.cancelled.slice(-10);
    }
    if (session.handoff && (ticketId == null || session.handoff.ticket_id === ticketId)) {
      session.handoff = null;
    }
    saveSession();
    renderHandoff();
  }

  function renderHandoff() {
    var h = session && session.handoff;
    if (!h) {
      barEl.hidden = true;
      barEl.classList.remove("active");
      cancelEl.hidden = true;
      barTextEl.textContent = "";
      return;
    }
    var text;
    if (h.status === "active") {
      text = "工作人员已接入，正在为您服务。";
    } else if (h.follow_up) {
      text = "您反映的问题已登记（编号 " + h.ticket_id + "），工作人员会在这里回复您。";
    } else if (h.deferred) {
      text = "已为您登记人工服务（编号 " + h.ticket_id + "），工作人员上班后会在这里回复您。";
    } else if (h.position && h.position > 1) {
      text = "正在等候人工服务，您前面还有 " + (h.position - 1) + " 位。";
    } else {
      text = "正在为您转接人工服务，马上就到您。";
    }
    barTextEl.textContent = text;
    barEl.classList.toggle("active", h.status === "active");
    // While waiting (in service hours) the citizen can go back to the assistant.
    cancelEl.hidden = !(h.status === "waiting" && !h.deferred && !h.follow_up);
    barEl.hidden = false;
  }

  /* ---------- live stream (operator replies, ticket notices, status notices) ----------
   * Opened once the conversation exists (a returning citizen at once: notices kept
   * while the chat was closed arrive first), then kept open.
   */
  var stream = null;
  var streamRetry = null;
  var streamDelay = STREAM_RETRY_MS;

  function closeStream() {
    if (streamRetry) clearTimeout(streamRetry);
    streamRetry = null;
    if (stream) stream.close();
    stream = null;
  }

  function openStream() {
    if (stream || streamRetry || !session || typeof window.EventSource !== "function") return;
    var url = EVENTS_URL + "?sender_id=" + encodeURIComponent(session.sender_id) +
      "&token=" + encodeURIComponent(session.token) + "&after=" + (session.last_id || 0);
    var es = new window.EventSource(url);
    stream = es;
    es.addEventListener("open", function () {
      streamDelay = STREAM_RETRY_MS;
    });
    es.addEventListener("message", function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data && typeof data === "object") onLiveMessage(data);
    });
    es.addEventListener("notice", function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data && typeof data.text === "string" && data.text) {
        addNotice(data.text);
        scrollToBottom();
      }
    });
    es.addEventListener("error", function () {
      // EventSource reconnects by itself after a dropped stream; a refused one
      // (CLOSED) is retried here, more slowly each time.
      if (es.readyState !== 2 || stream !== es) return;
      es.close();
      stream = null;
      streamRetry = setTimeout(function () {
        streamRetry = null;
        openStream();
      }, streamDelay);
      streamDelay = Math.min(streamDelay * 2, STREAM_RETRY_MAX_MS);
    });
  }

  function onLiveMessage(m) {
    if (!session || typeof m.id !== "number" || m.id <= (session.last_id || 0)) return;
    session.last_id = m.id;
    saveSession();
    var text = typeof m.text === "string" ? m.text : "";
    if (m.role === "operator") {
      if (text) addOperatorMessage(text);
      var h = session.handoff;
      if (!h || h.ticket_id !== m.ticket_id || h.status !== "active") {
        setHandoff({ ticket_id: m.ticket_id, status: "active", deferred: false, position: null });
      }
    } else if (m.role === "system") {
      var ends = HANDOFF_END_RE.test(text);
      var mine = session.cancelled.indexOf(m.ticket_id) >= 0;
      if (text && !mine && !seenRecently(text)) {
        rememberNotice(text);
        addSystemMessage(text);
      }
      if (ends) endHandoff(m.ticket_id, false);
    }
  }

  /**
   * Send `text` to the bot; the user's bubble shows `display` (defaults to text).
   * opts.fromInput: the text was typed, restore it on failure.
   * opts.chip: the quick-reply chip that was clicked.
   */
  function sendMessage(text, display, opts) {
    opts = opts || {};
    if (sending) return;
    if (typeof text !== "string") return;
    if (!text.trim()) {
      inputEl.focus();
      return;
    }

    var previousChips = activeChipGroup();
    disableAllChips(opts.chip || null);

    addUserMessage(display || text);
    if (opts.fromInput) inputEl.value = "";
    setSending(true);
    showTyping();

    postChat(text).then(function (result) {
      hideTyping();
      setSending(false);
      if (result.kind === "ok") {
        renderReply(result.body);
        openStream(); // status notices of this conversation from now on
        announce("banshi:reply", result.body);
      } else {
        addSystemMessage(result.kind === "client" ? result.message : NETWORK_ERROR);
        // Nothing is lost: put typed text back and re-enable the chips that were usable.
        if (opts.fromInput && !inputEl.value) inputEl.value = text;
        enableChips(previousChips);
      }
      scrollToBottom();
    }).catch(function () {
      // Defensive: a rendering error must never leave the page stuck in "sending".
      hideTyping();
      setSending(false);
      addSystemMessage(NETWORK_ERROR);
      if (opts.fromInput && !inputEl.value) inputEl.value = text;
    });
  }

  /* ---------- for the page's other parts (attach.js: handing in materials) ---------- */
  function announce(name, detail) {
    try {
      document.dispatchEvent(new CustomEvent(name, { detail: detail }));
    } catch (e) { /* an old browser without CustomEvent: the extras stay off */ }
  }

  /* "{name}" placeholders of a message template, filled from values (empty when missing). */
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return values[key] == null ? "" : String(values[key]);
    });
  }

  window.banshiChat = {
    fill: fill,
    ensureSession: ensureSession,
    session: function () { return session; },
    addBotMessage: addBotMessage,
    showReply: function (body) {
      renderReply(body);
      announce("banshi:reply", body);
    },
    addUserMessage: addUserMessage,
    addSystemMessage: addSystemMessage,
    showTyping: showTyping,
    hideTyping: hideTyping,
    isSending: function () { return sending; },
    setSending: setSending
  };

  /* ---------- events ---------- */
  formEl.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = inputEl.value;
    if (text.length > MAX_LEN) text = text.slice(0, MAX_LEN);
    sendMessage(text.trim(), null, { fromInput: true });
  });

  // Don't send while an IME (e.g. pinyin) is still composing.
  inputEl.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.isComposing || e.keyCode === 229)) {
      e.preventDefault();
    }
  });

  humanEl.addEventListener("click", function () {
    sendMessage(HUMAN_TEXT, HUMAN_TEXT, {});
  });

  cancelEl.addEventListener("click", function () {
    sendMessage(CANCEL_TEXT, CANCEL_TEXT, {});
  });

  // Keep the newest message visible when the on-screen keyboard opens/closes.
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", scrollToBottom);
  }
  window.addEventListener("resize", scrollToBottom);

  /* ---------- start ---------- */
  session = loadSession();
  if (session) {
    renderHandoff();
    openStream(); // operator replies, and notices kept while the chat was closed
  } else {
    newSession().catch(function () { /* retried on the first message */ });
  }
  addBotMessage(WELCOME_TEXT, STARTERS.map(function (t) {
    return { title: t, payload: t };
  }));
})();
