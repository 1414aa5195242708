/* 办事助手 — operator desk: call mode (热线通话).
 *
 * "开始通话" opens a panel over the ticket. The call audio (the default microphone:
 * the headset, or a line carrying the caller; with "双路输入" a second input is the
 * operator's own headset) is captured with getUserMedia, brought to 16 kHz PCM16 by
 * the kiosk's AudioWorklet (static/kiosk/pcm16-worklet.js) and
 * streamed over WS /api/v1/desk/call: one byte of input (0 caller, 1 operator), then
 * the samples. The server sends the transcript (partial and final phrases), the
 * suggestions and knowledge card (re-ranked on each caller phrase, stable), and the
 * ticket draft; fields the operator edited are kept. "保存工单" saves the draft.
 * Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var desk = window.banshiDesk;
  var URL_PATH = "/api/v1/desk/call";
  var WORKLET_URL = "/static/kiosk/pcm16-worklet.js";
  var SPEAKERS = { caller: "群众", operator: "坐席" };
  var QUESTION_TYPES = {
    overview: "办理概述", materials: "所需材料", conditions: "办理条件", process: "办理流程",
    fee: "收费标准", time_limit: "办理时限", location: "办理地点"
  };
  var TEXT = {
    connecting: "正在连接…",
    live: "通话中，正在转写",
    liveNoAsr: "通话中（语音识别不可用，请手动补录）",
    ended: "通话已结束，请核对并保存工单",
    micDenied: "无法使用麦克风：请在浏览器中允许本页面使用麦克风。",
    noMic: "没有找到可用的麦克风，或浏览器版本过旧。",
    network: "网络连接有问题，通话转写已中断。",
    saved: "工单已保存，编号 ",
    closed: "连接已断开。",
    second: "坐席耳麦（第二路）"
  };
  var DRAFT_FIELDS = ["caller_name", "phone", "address", "item_id", "category", "summary", "answer"];

  function $(id) { return document.getElementById(id); }

  var el = {
    open: $("call-open"), panel: $("call-panel"), close: $("call-close"),
    start: $("call-start"), end: $("call-end"), status: $("call-status"), error: $("call-error"),
    two: $("call-two-inputs"), second: $("call-second"),
    transcript: $("call-transcript"), partial: $("call-partial"),
    typeForm: $("call-type-form"), typeText: $("call-type-text"),
    suggestions: $("call-suggestions"), card: $("call-card"), cardTitle: $("call-card-title"),
    cardFields: $("call-card-fields"), draft: $("call-draft"), item: $("draft-item"),
    save: $("call-save"), saved: $("call-saved"),
    phoneCheck: $("draft-phone-check"), phoneChecked: $("draft-phone-checked"),
    fields: {
      caller_name: $("draft-name"), phone: $("draft-phone"), address: $("draft-address"),
      item_id: $("draft-item"), category: $("draft-category"), summary: $("draft-summary"),
      answer: $("draft-answer")
    }
  };
  if (!el.panel || !el.open) return;

  var call = null; // {ws, context, inputs: [{stream, source, node}], edited: {}, ended}
  var edited = {};
  // Numbers heard from the call audio (digits -> true) and the number 已核对 was ticked for.
  var heardPhones = {};
  var checkedFor = null;
  var questionType = null;
  var lastSocket = null; // the ended call's socket, open for 保存工单

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function showError(message) {
    el.error.textContent = message || "";
    el.error.hidden = !message;
  }

  function setStatus(text) { el.status.textContent = text; }

  function socketUrl(inputs) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + URL_PATH + "?inputs=" + inputs;
  }

  /* ---------- audio capture ---------- */
  function captureNode(context, onFrame) {
    return context.audioWorklet.addModule(WORKLET_URL).then(function () {
      var node = new window.AudioWorkletNode(context, "pcm16-capture");
      node.port.onmessage = function (event) { if (event.data instanceof ArrayBuffer) onFrame(event.data); };
      return node;
    });
  }

  function openInput(context, deviceId, channel) {
    // The caller's line goes to the recogniser as it is: WebRTC's noise suppression and
    // gain control are tuned for a listener's ear and smear quiet digits and consonants;
    // the gateway levels the audio itself (voice/asr.py GainControl). The operator's
    // own headset (channel 1) keeps them, with echo cancellation.
    var own = channel === 1;
    var audio = { echoCancellation: own, noiseSuppression: own, autoGainControl: own, channelCount: 1 };
    if (deviceId) audio.deviceId = { exact: deviceId };
    return navigator.mediaDevices.getUserMedia({ audio: audio }).then(function (stream) {
      var input = { stream: stream, source: context.createMediaStreamSource(stream) };
      return captureNode(context, function (buffer) { sendFrame(channel, buffer); }).then(function (node) {
        input.node = node;
        input.source.connect(node);
        return input;
      });
    });
  }

  function sendFrame(channel, buffer) {
    if (!call || call.ended || !call.ws || call.ws.readyState !== 1) return;
    var out = new Uint8Array(buffer.byteLength + 1);
    out[0] = channel;
    out.set(new Uint8Array(buffer), 1);
    call.ws.send(out.buffer);
  }

  function stopInputs(current) {
    (current.inputs || []).forEach(function (input) {
      try { input.source.disconnect(); } catch (e) { /* already */ }
      try { input.node.disconnect(); } catch (e) { /* already */ }
      input.stream.getTracks().forEach(function (t) { t.stop(); });
    });
    current.inputs = [];
    if (current.context) { current.context.close().catch(function () {}); current.context = null; }
  }

  function listSecondInputs() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    navigator.mediaDevices.enumerateDevices().then(function (devices) {
      el.second.textContent = "";
      devices.filter(function (d) { return d.kind === "audioinput"; }).forEach(function (d, n) {
        var option = make("option", null, d.label || (TEXT.second + " " + (n + 1)));
        option.value = d.deviceId;
        el.second.appendChild(option);
      });
    });
  }

  /* ---------- what the server sends ---------- */
  function addPhrase(message) {
    var li = make("li", "call-phrase " + message.speaker);
    li.appendChild(make("span", "call-speaker", SPEAKERS[message.speaker] || message.speaker));
    li.appendChild(make("span", "call-text", message.text));
    el.transcript.appendChild(li);
    el.transcript.scrollTop = el.transcript.scrollHeight;
    el.partial.textContent = "";
  }

  function showCard(card) {
    el.card.hidden = !card;
    if (!card) return;
    el.cardTitle.textContent = card.item_name;
    el.cardFields.textContent = "";
    var rows = [
      ["所需材料", (card.materials || []).join("；")],
      ["收费", card.fees],
      ["办理时限", card.time_limit],
      ["办理部门", (card.departments || []).join("、")],
      ["办理窗口", card.where && card.where.window],
      ["网上办理", card.where && (card.where.online || []).join("；")],
      ["咨询电话", card.where && card.where.phone]
    ];
    rows.forEach(function (row) {
      if (!row[1]) return;
      el.cardFields.appendChild(make("dt", null, row[0]));
      el.cardFields.appendChild(make("dd", null, row[1]));
    });
  }

  function ensureItemOption(id, name) {
    if (!id) return;
    for (var i = 0; i < el.item.options.length; i++) {
      if (el.item.options[i].value === id) return;
    }
    var option = make("option", null, name || id);
    option.value = id;
    el.item.appendChild(option);
  }

  function showSuggestions(message) {
    el.suggestions.textContent = "";
    (message.suggestions || []).forEach(function (s) {
      ensureItemOption(s.item_id, s.item_name);
      var li = make("li", "call-suggestion");
      li.dataset.itemId = s.item_id;
      var head = make("div", "call-suggestion-head");
      head.appendChild(make("strong", "call-item", s.item_name));
      head.appendChild(make("span", "call-question", QUESTION_TYPES[s.question_type] || s.question_type));
      var use = make("button", "link", "用作答复");
      use.type = "button";
      use.addEventListener("click", function () {
        el.fields.answer.value = s.answer;
        el.fields.item_id.value = s.item_id;
        edited.answer = edited.item_id = true;
      });
      head.appendChild(use);
      li.appendChild(head);
      li.appendChild(make("p", "call-answer", s.answer));
      el.suggestions.appendChild(li);
    });
    showCard(message.card);
  }

  function showDraft(draft) {
    questionType = draft.question_type || null;
    ensureItemOption(draft.item_id, draft.item_name);
    DRAFT_FIELDS.forEach(function (name) {
      if (edited[name]) return;
      var value = draft[name];
      el.fields[name].value = value === null || value === undefined ? "" : value;
    });
    // A number heard from the audio (not read in the transcript): read it back first.
    if (draft.phone_heard && draft.phone) heardPhones[draft.phone] = true;
    updatePhoneCheck();
  }

  function phoneDigits(value) {
    var digits = String(value || "").replace(/\D/g, "");
    return digits.length === 13 && digits.indexOf("86") === 0 ? digits.slice(2) : digits;
  }

  /* The 已核对 row shows while the phone field holds a number heard from the audio;
     a tick counts only for the number it was given for. */
  function updatePhoneCheck() {
    var digits = phoneDigits(el.fields.phone.value);
    var heard = Boolean(digits && heardPhones[digits]);
    if (!heard || checkedFor !== digits) el.phoneChecked.checked = false;
    el.phoneCheck.hidden = !heard;
  }

  function onMessage(event) {
    var message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    switch (message.type) {
      case "ready":
        setStatus(message.asr ? TEXT.live : TEXT.liveNoAsr);
        // Every catalog item: the ticket may name one that was never suggested.
        (message.items || []).forEach(function (item) { ensureItemOption(item.id, item.name); });
        break;
      case "partial":
        el.partial.textContent = message.text ? (SPEAKERS[message.speaker] || "") + "：" + message.text : "";
        break;
      case "final": addPhrase(message); break;
      case "assist": showSuggestions(message); break;
      case "draft": showDraft(message.draft); break;
      case "ended":
        setStatus(TEXT.ended);
        break;
      case "saved":
        el.saved.textContent = TEXT.saved + message.id;
        el.save.disabled = false;
        break;
      case "error":
        if (message.code === "phone_unchecked") el.phoneCheck.hidden = false;
        showError(message.message);
        el.save.disabled = false;
        break;
    }
  }

  /* ---------- the call ---------- */
  function resetPanel() {
    el.transcript.textContent = "";
    el.partial.textContent = "";
    el.suggestions.textContent = "";
    el.saved.textContent = "";
    showCard(null);
    edited = {};
    DRAFT_FIELDS.forEach(function (name) { if (name !== "category") el.fields[name].value = ""; });
    heardPhones = {};
    checkedFor = null;
    el.phoneCheck.hidden = true;
    el.phoneChecked.checked = false;
    el.fields.category.value = "咨询";
    showError("");
  }

  function startCall() {
    if (call) return;
    if (lastSocket) { try { lastSocket.close(); } catch (e) { /* closed */ } lastSocket = null; }
    resetPanel();
    var two = el.two.checked && el.second.value;
    var current = call = { inputs: [], ended: false };
    setStatus(TEXT.connecting);
    el.start.hidden = true;
    el.end.hidden = false;
    var ws = current.ws = new WebSocket(socketUrl(two ? 2 : 1));
    ws.binaryType = "arraybuffer";
    ws.onmessage = onMessage;
    ws.onclose = function () {
      if (call === current && !current.ended) { showError(TEXT.closed); finishLocally(current); }
    };
    ws.onerror = function () { if (call === current && !current.ended) showError(TEXT.network); };
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !Context ||
        typeof window.AudioWorkletNode !== "function") {
      showError(TEXT.noMic);
      return;
    }
    var context = current.context = new Context();
    var opened = [openInput(context, null, 0)];
    if (two) opened.push(openInput(context, el.second.value, 1));
    Promise.all(opened).then(function (inputs) {
      current.inputs = inputs;
      if (current.ended) stopInputs(current);
      listSecondInputs();
    }, function (err) {
      var denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      showError(denied ? TEXT.micDenied : TEXT.noMic);
    });
  }

  function finishLocally(current) {
    current.ended = true;
    stopInputs(current);
    el.start.hidden = false;
    el.end.hidden = true;
    if (call === current) call = null;
  }

  function endCall() {
    if (!call) return;
    var current = call;
    stopInputs(current);
    if (current.ws && current.ws.readyState === 1) current.ws.send(JSON.stringify({ type: "end" }));
    current.ended = true;
    el.start.hidden = false;
    el.end.hidden = true;
    // The socket stays open for 保存工单; a new call opens a new one.
    call = null;
    lastSocket = current.ws;
  }

  function saveTicket(event) {
    event.preventDefault();
    var ws = (call && call.ws) || lastSocket;
    if (!ws || ws.readyState !== 1) { showError(TEXT.closed); return; }
    var ticket = { question_type: questionType };
    DRAFT_FIELDS.forEach(function (name) {
      var value = el.fields[name].value.trim();
      ticket[name] = value || (name === "summary" || name === "answer" ? "" : null);
    });
    ticket.category = el.fields.category.value;
    ticket.phone_checked = !el.phoneCheck.hidden && el.phoneChecked.checked
      && checkedFor === phoneDigits(el.fields.phone.value);
    showError("");
    el.save.disabled = true;
    ws.send(JSON.stringify({ type: "save", ticket: ticket }));
  }

  el.fields.phone.addEventListener("input", updatePhoneCheck);
  el.phoneChecked.addEventListener("change", function () {
    checkedFor = el.phoneChecked.checked ? phoneDigits(el.fields.phone.value) : null;
  });
  DRAFT_FIELDS.forEach(function (name) {
    el.fields[name].addEventListener("input", function () { edited[name] = true; });
    el.fields[name].addEventListener("change", function () { edited[name] = true; });
  });
  el.typeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = el.typeText.value.trim();
    var ws = (call && call.ws) || lastSocket;
    if (!text || !ws || ws.readyState !== 1) return;
    ws.send(JSON.stringify({ type: "phrase", speaker: "caller", text: text }));
    el.typeText.value = "";
  });
  el.two.addEventListener("change", function () {
    el.second.hidden = !el.two.checked;
    if (el.two.checked) listSecondInputs();
  });
  el.open.addEventListener("click", function () {
    el.panel.hidden = false;
    el.start.focus();
  });
  el.close.addEventListener("click", function () { el.panel.hidden = true; });
  el.start.addEventListener("click", startCall);
  el.end.addEventListener("click", endCall);
  el.draft.addEventListener("submit", saveTicket);
  if (desk) desk.call = { start: startCall, end: endCall };
})();
