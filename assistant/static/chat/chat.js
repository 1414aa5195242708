/* 办事助手 — mobile web chat (vanilla JS, no dependencies).
 * Server text is only ever inserted with textContent (never innerHTML);
 * newlines are rendered by CSS `white-space: pre-wrap`.
 */
(function () {
  "use strict";

  var API_URL = "/api/v1/chat";
  var STORAGE_KEY = "banshi_sender_id";
  var MAX_LEN = 500;
  var TIMEOUT_MS = 30000;

  var WELCOME_TEXT = "您好，我是办事助手。您可以问我办事要带什么材料、去哪里办、多久能办好。";
  var STARTERS = ["社保卡怎么办", "身份证丢了怎么补办", "孩子上小学要带什么"];
  var HUMAN_TEXT = "转人工";
  var NETWORK_ERROR = "网络好像有点问题，请稍后再试。";
  var INPUT_ERROR = "您的输入有误，请修改后再试。";
  var EMPTY_REPLY = "抱歉，我暂时没能回答这个问题，可以换个说法再问一次，或点击右上角“找人工”。";

  var listEl = document.getElementById("messages");
  var formEl = document.getElementById("composer");
  var inputEl = document.getElementById("input");
  var sendEl = document.getElementById("send");
  var humanEl = document.getElementById("human");

  var sending = false;
  var typingEl = null;

  /* ---------- sender id ---------- */
  function randomId() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === "function") {
        return window.crypto.randomUUID();
      }
      if (window.crypto && window.crypto.getRandomValues) {
        var bytes = new Uint8Array(16);
        window.crypto.getRandomValues(bytes);
        var hex = "";
        for (var i = 0; i < bytes.length; i++) {
          hex += ("0" + bytes[i].toString(16)).slice(-2);
        }
        return hex;
      }
    } catch (e) { /* fall through */ }
    return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  var memorySenderId = null;
  function getSenderId() {
    var id = null;
    try {
      id = window.localStorage.getItem(STORAGE_KEY);
      if (!id) {
        id = randomId();
        window.localStorage.setItem(STORAGE_KEY, id);
      }
      return id;
    } catch (e) {
      // localStorage unavailable (private mode / disabled): keep an id for this page only.
      if (!memorySenderId) memorySenderId = randomId();
      return memorySenderId;
    }
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

  function postChat(text) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    var opts = {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ sender_id: getSenderId(), text: text, channel: "web" }),
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

  function renderReply(body) {
    var msgs = Array.isArray(body.messages) ? body.messages : [];
    var shown = 0;
    msgs.forEach(function (m) {
      if (!m || typeof m !== "object") return;
      var text = typeof m.text === "string" ? m.text : "";
      var buttons = Array.isArray(m.buttons) ? m.buttons : [];
      if (!text && !buttons.length) return;
      addBotMessage(text, buttons);
      shown++;
    });
    if (!shown) addBotMessage(EMPTY_REPLY, []);
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

  // Keep the newest message visible when the on-screen keyboard opens/closes.
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", scrollToBottom);
  }
  window.addEventListener("resize", scrollToBottom);

  /* ---------- start ---------- */
  getSenderId();
  addBotMessage(WELCOME_TEXT, STARTERS.map(function (t) {
    return { title: t, payload: t };
  }));
})();
