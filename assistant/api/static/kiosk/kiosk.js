/* 办事助手 — self-service kiosk page (vanilla JS, no dependencies, no CDN).
 *
 * Voice: hold "按住说话" → the microphone (getUserMedia + an AudioWorklet, or a
 * ScriptProcessor where AudioWorklet is missing) is downsampled to 16 kHz PCM16
 * in the page and streamed over WS /api/v1/voice/stream; release → {"type":"end"}.
 * The server answers partial/final transcripts, the reply, then the spoken reply
 * as binary WAV frames (played in order).
 * Touch and text: common items, follow-up buttons and the text box go through
 * POST /api/v1/chat (channel kiosk) and are spoken via POST /api/v1/tts.
 * Barge-in: while a reply is spoken, the (echo-cancelled) microphone is watched;
 * speech louder than the level (GET /api/v1/voice/status → barge_in) stops the
 * reply and starts a hands-free turn with the audio from just before the onset,
 * which ends after a pause (end_silence_seconds).
 * After the idle time (GET /api/v1/voice/status → idle_seconds; `?idle=N` for
 * tests and demos) the screen is cleared and a new kiosk conversation starts
 * (the server restarts the old one).
 * Pre-applications (prefill.js) use this page's conversation, idle reset and
 * hold-to-talk through window.banshiKiosk: dictation streams like a turn
 * (mode=dictate&field=<kind>) and the server answers {"type":"dictation","text"}
 * instead of a reply; the text goes into the field the citizen chose.
 * Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var STATUS_URL = "/api/v1/voice/status";
  var SESSION_URL = "/api/v1/voice/sessions";
  var STREAM_URL = "/api/v1/voice/stream";
  var CHAT_URL = "/api/v1/chat";
  var TTS_URL = "/api/v1/tts";
  var EVENTS_URL = "/api/v1/chat/events";
  var WORKLET_URL = "/static/kiosk/pcm16-worklet.js";
  var SLOW_KEY = "banshi_kiosk_slow";
  var TARGET_RATE = 16000;
  var FRAME_SAMPLES = 1600;
  var MIN_HOLD_MS = 350;
  var TIMEOUT_MS = 30000;
  var HUMAN_TEXT = "转人工";
  var CANCEL_TEXT = "取消人工";
  var MAX_SPOKEN_CHARS = 150;
  var FRAME_MS = 100;             // one PCM frame (FRAME_SAMPLES at 16 kHz)
  var PRE_ROLL_FRAMES = 6;        // audio kept from before a barge-in onset
  var BARGE_FRAMES = 3;           // loud frames in a row that count as speech
  var HANDS_FREE_MAX_MS = 15000;  // a hands-free turn ends at the latest after this
  var LISTENER_LINGER_MS = 1500;  // the barge-in listener outlives a pause between reply parts
  // The browser's noise suppression and gain control distort speech for the
  // recogniser; the gateway applies its own gain control (voice/audio.py).
  // Echo cancellation stays on: the kiosk's own voice must not be transcribed.
  var MIC_CONSTRAINTS = {
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false }
  };

  var TEXT = {
    idle: "按住说话",
    listening: "正在听，说完松开",
    handsFree: "正在听，请说，说完稍等",
    thinking: "正在查询…",
    start: "按住下面的“按住说话”按钮，说出您要办的事，说完松开。",
    welcome: "您好！请问您要办什么事？比如：“社保卡怎么办”“身份证丢了怎么补办”。",
    tooShort: "请按住按钮不放，说完再松开。",
    notHeard: "（没有听清）",
    network: "网络好像有点问题，请稍后再试，或点“找人工”。",
    noMic: "本机的麦克风暂时不能使用。请点下面的常办事项，或输入文字提问。",
    noAsr: "语音识别暂时不可用。请点下面的常办事项，或输入文字提问。",
    micDenied: "没有得到麦克风权限。请点下面的常办事项，或输入文字提问。",
    relayed: "已转给工作人员，请稍候。",
    operator: "工作人员：",
    waiting: "正在为您转接人工服务，请稍候。",
    active: "工作人员已接入，正在为您服务。",
    deferred: "已为您登记人工服务，工作人员上班后会回复您。"
  };

  var $ = function (id) { return document.getElementById(id); };
  var talkEl = $("talk");
  var talkLabelEl = $("talk-label");
  var replayEl = $("replay");
  var slowEl = $("slow");
  var humanEl = $("human");
  var noticeEl = $("notice");
  var handoffEl = $("handoff-bar");
  var handoffTextEl = $("handoff-status");
  var handoffCancelEl = $("handoff-cancel");
  var transcriptEl = $("transcript");
  var answerLabelEl = $("answer-label");
  var answerEl = $("answer");
  var choicesEl = $("choices");
  var playerEl = $("player");
  var formEl = $("text-form");
  var inputEl = $("text-input");

  var state = {
    session: null,        // {sender_id, token}
    sessionRequest: null,
    voice: false,         // the server can recognize speech and this page can record
    tts: false,
    idleMs: 90000,
    busy: false,          // a turn is in flight
    dirty: false,         // something was said since the last reset
    handoff: null,
    lastEventId: 0,
    bargeIn: false,       // speaking while a reply plays stops it (server setting)
    bargeLevel: 0.02,     // RMS (0..1) that counts as speech
    endSilenceMs: 1200,   // a hands-free turn ends after this much quiet
    turn: 0               // the current turn; audio of older turns is dropped
  };

  /* ---------- small helpers ---------- */
  function setNotice(text) {
    noticeEl.textContent = text || "";
    noticeEl.hidden = !text;
  }

  function clearNode(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function paragraph(text, className) {
    var p = document.createElement("p");
    if (className) p.className = className;
    p.textContent = text;
    return p;
  }

  function fetchJson(url, opts) {
    opts = opts || {};
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    if (controller) opts.signal = controller.signal;
    opts.credentials = "same-origin";
    opts.cache = "no-store";
    return fetch(url, opts).then(function (res) {
      if (timer) clearTimeout(timer);
      return res.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        return { status: res.status, ok: res.ok, body: body };
      });
    }, function (err) {
      if (timer) clearTimeout(timer);
      throw err;
    });
  }

  function postJson(url, payload) {
    return fetchJson(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload)
    });
  }

  /* ---------- kiosk conversation ---------- */
  function newSession(previous) {
    if (state.sessionRequest) return state.sessionRequest;
    var payload = previous ? { sender_id: previous.sender_id, token: previous.token } : null;
    state.sessionRequest = (payload ? postJson(SESSION_URL, payload) : fetchJson(SESSION_URL, { method: "POST" }))
      .then(function (res) {
        state.sessionRequest = null;
        if (!res.ok || !res.body || !res.body.sender_id || !res.body.token) throw new Error("session");
        state.session = { sender_id: res.body.sender_id, token: res.body.token };
        document.body.setAttribute("data-session", state.session.sender_id);
        return state.session;
      }, function (err) {
        state.sessionRequest = null;
        throw err;
      });
    return state.sessionRequest;
  }

  function ensureSession() {
    return state.session ? Promise.resolve(state.session) : newSession(null);
  }

  /* ---------- answer rendering ---------- */
  function showTranscript(text, partial) {
    transcriptEl.textContent = text;
    transcriptEl.classList.toggle("partial", !!partial);
  }

  function showChoices(buttons) {
    clearNode(choicesEl);
    (buttons || []).slice(0, 6).forEach(function (b) {
      if (!b) return;
      var title = typeof b.title === "string" ? b.title : "";
      var payload = typeof b.payload === "string" && b.payload ? b.payload : title;
      if (!title) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = title;
      button.addEventListener("click", function () {
        touched();
        sendText(payload, title);
      });
      choicesEl.appendChild(button);
    });
    choicesEl.hidden = !choicesEl.firstChild;
  }

  function itemButtons(items) {
    return (items || []).slice(0, 3).map(function (item) {
      return {
        title: item.name,
        payload: "/ask_service" + JSON.stringify({ service_item: item.id })
      };
    });
  }

  // body: {messages, items, handoff?} of a chat or voice turn.
  function renderReply(body) {
    clearNode(answerEl);
    // What the answer is about, in large type ("回答：最低生活保障申请").
    answerLabelEl.textContent = typeof body.item_name === "string" && body.item_name
      ? "回答：" + body.item_name : "回答";
    var buttons = [];
    var shown = 0;
    (Array.isArray(body.messages) ? body.messages : []).forEach(function (m) {
      if (!m || typeof m !== "object") return;
      if (typeof m.text === "string" && m.text) {
        answerEl.appendChild(paragraph(m.text));
        shown++;
      }
      if (Array.isArray(m.buttons)) buttons = buttons.concat(m.buttons);
    });
    if (body.handoff && typeof body.handoff === "object") {
      setHandoff(body.handoff);
      if (!shown) {
        answerEl.appendChild(paragraph(TEXT.relayed));
        shown++;
      }
    } else if (shown && state.handoff && !state.handoff.deferred) {
      setHandoff(null);
    }
    if (!shown) answerEl.appendChild(paragraph(TEXT.network, "error"));
    if (!buttons.length && Array.isArray(body.items) && body.items.length > 1) buttons = itemButtons(body.items);
    showChoices(buttons);
    answerEl.scrollTop = 0;
    document.body.setAttribute("data-answered", String(Date.now()));
    replyHooks.forEach(function (hook) { try { hook(body); } catch (e) { /* the reply is shown anyway */ } });
  }

  function replyText(body) {
    var parts = [];
    (body.messages || []).forEach(function (m) {
      if (m && typeof m.text === "string" && m.text) parts.push(m.text);
    });
    if (!parts.length && body.handoff) parts.push(TEXT.relayed);
    return parts.join("\n");
  }

  function showError(text) {
    clearNode(answerEl);
    answerEl.appendChild(paragraph(text, "error"));
    showChoices([]);
  }

  /* ---------- playback ---------- */
  var queue = [];        // blob URLs still to play
  var lastAudio = [];    // blob URLs of the last reply (for 重听)
  var playing = false;

  playerEl.addEventListener("playing", function () {
    var count = Number(playerEl.getAttribute("data-played") || "0") + 1;
    playerEl.setAttribute("data-played", String(count));
    startBargeListener();
  });
  playerEl.addEventListener("ended", playNext);
  playerEl.addEventListener("error", playNext);

  function playNext() {
    playing = false;
    if (!queue.length) {
      touched(); // listening counts as using the kiosk
      lingerBargeListener();
      return;
    }
    playing = true;
    playerEl.src = queue.shift();
    var started = playerEl.play();
    if (started && typeof started.catch === "function") {
      started.catch(function () { playing = false; });
    }
  }

  function enqueueAudio(blob, turn) {
    if (turn !== state.turn) return;
    var url = URL.createObjectURL(blob);
    lastAudio.push(url);
    queue.push(url);
    replayEl.disabled = false;
    if (!playing) playNext();
  }

  function newReplyAudio() {
    stopAudio();
    lastAudio.forEach(function (url) { URL.revokeObjectURL(url); });
    lastAudio = [];
    replayEl.disabled = true;
  }

  function stopAudio() {
    queue = [];
    playing = false;
    stopBargeListener();
    try { playerEl.pause(); } catch (e) { /* nothing playing */ }
  }

  function replay() {
    if (!lastAudio.length) return;
    stopAudio();
    queue = lastAudio.slice();
    playNext();
  }

  // What to say for a reply: without source lines, the first MAX_SPOKEN_CHARS
  // characters in whole lines (as the voice endpoints do).
  function spokenText(text) {
    var kept = [];
    var size = 0;
    var lines = text.split("\n");
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (!line.trim() || /^\s*来源[：:]/.test(line)) continue;
      if (kept.length && size + line.length > MAX_SPOKEN_CHARS) {
        kept.push("更多内容请看屏幕。");
        break;
      }
      kept.push(line);
      size += line.length;
    }
    return kept.join("\n");
  }

  // Speak a text (chat replies, operator messages) through POST /api/v1/tts.
  function speak(text) {
    text = spokenText(text || "");
    if (!state.tts || !text) return;
    var turn = state.turn;
    fetch(TTS_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "audio/wav" },
      body: JSON.stringify({ text: text, elderly: slowEl.getAttribute("aria-pressed") === "true" }),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (!res.ok) return null;
      return res.blob();
    }).then(function (blob) {
      if (blob && blob.size) enqueueAudio(blob, turn);
    }).catch(function () { /* the text is on screen */ });
  }

  /* ---------- chat turns (buttons, text) ---------- */
  function setBusy(on) {
    state.busy = on;
    talkEl.disabled = on || !state.voice;
    var buttons = document.querySelectorAll(".choice, .item, #send, #human, #handoff-cancel");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = on;
    if (on) answerEl.setAttribute("aria-busy", "true");
    else answerEl.removeAttribute("aria-busy");
  }

  function postChat(text, retried) {
    return ensureSession().then(function (session) {
      return postJson(CHAT_URL, { sender_id: session.sender_id, token: session.token, text: text, channel: "kiosk" });
    }).then(function (res) {
      if (res.status === 403 && !retried) {
        state.session = null;
        return postChat(text, true);
      }
      return res;
    });
  }

  function sendText(text, display) {
    if (state.busy || capture || !text) return;
    state.dirty = true;
    state.turn++;
    newReplyAudio();
    showTranscript(display || text, false);
    setBusy(true);
    postChat(text, false).then(function (res) {
      setBusy(false);
      if (res.ok && res.body) {
        renderReply(res.body);
        speak(replyText(res.body));
      } else if (res.body && typeof res.body.detail === "string") {
        showError(res.body.detail);
      } else {
        showError(TEXT.network);
      }
    }).catch(function () {
      setBusy(false);
      showError(TEXT.network);
    });
  }

  /* ---------- voice turns ---------- */
  var capture = null; // {ws, stream, context, node, source, started, frames, ended, dictation}
  var lastDictation = null; // the dictation that just ended (told that it is idle again)
  var audioContext = null;
  var workletReady = null;

  function setTalk(mode) {
    talkEl.classList.toggle("listening", mode === "listening");
    talkEl.classList.toggle("thinking", mode === "thinking");
    talkLabelEl.textContent = TEXT[mode] || TEXT.idle;
    talkEl.setAttribute("aria-pressed", mode === "listening" ? "true" : "false");
    if (capture && capture.dictation && capture.dictation.onState) capture.dictation.onState(mode);
    else if (!capture && lastDictation && lastDictation.onState) lastDictation.onState("idle");
  }

  function getContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audioContext) audioContext = new Ctx();
    if (audioContext.state === "suspended") audioContext.resume();
    if (!workletReady) {
      workletReady = audioContext.audioWorklet && typeof AudioWorkletNode === "function"
        ? audioContext.audioWorklet.addModule(WORKLET_URL).then(function () { return true; }, function () { return false; })
        : Promise.resolve(false);
    }
    return audioContext;
  }

  // ScriptProcessor fallback: the same box-filter downsampling on the page.
  function scriptCapture(context, onFrame) {
    var node = context.createScriptProcessor(4096, 1, 1);
    var step = context.sampleRate / TARGET_RATE;
    var pos = 0, sum = 0, count = 0, frame = new Int16Array(FRAME_SAMPLES), filled = 0;
    function post() {
      if (!filled) return;
      onFrame(frame.slice(0, filled).buffer);
      filled = 0;
    }
    node.onaudioprocess = function (event) {
      var data = event.inputBuffer.getChannelData(0);
      for (var i = 0; i < data.length; i++) {
        sum += data[i]; count++; pos += 1;
        if (pos >= step) {
          pos -= step;
          var s = Math.max(-1, Math.min(1, sum / count));
          sum = 0; count = 0;
          frame[filled++] = s < 0 ? s * 32768 : s * 32767;
          if (filled === FRAME_SAMPLES) post();
        }
      }
    };
    node.flush = function () { post(); return Promise.resolve(); };
    return node;
  }

  function workletCapture(context, onFrame) {
    var node = new AudioWorkletNode(context, "pcm16-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    var flushed = null;
    node.port.onmessage = function (event) {
      if (event.data instanceof ArrayBuffer) onFrame(event.data);
      else if (event.data && event.data.flushed && flushed) { flushed(); flushed = null; }
    };
    node.flush = function () {
      return new Promise(function (resolve) {
        flushed = resolve;
        node.port.postMessage("flush");
        setTimeout(resolve, 300);
      });
    };
    return node;
  }

  function streamUrl(session, dictation) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + STREAM_URL +
      "?sender_id=" + encodeURIComponent(session.sender_id) +
      "&token=" + encodeURIComponent(session.token) +
      "&elderly=" + (slowEl.getAttribute("aria-pressed") === "true" ? "1" : "0") +
      (dictation ? "&mode=dictate&field=" + encodeURIComponent(dictation.field || "text") : "");
  }

  // Open the microphone for `owner` ({stream, source, node}); frames of 16 kHz PCM16
  // go to owner.onFrame (which may change while the microphone stays open).
  function openMicrophone(owner, context) {
    return navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS).then(function (stream) {
      owner.stream = stream;
      if (owner.ended || owner.cancelled) { stopTracks(owner); return null; }
      return workletReady.then(function (hasWorklet) {
        if (owner.ended || owner.cancelled) { stopTracks(owner); return; }
        var onFrame = function (buffer) { if (owner.onFrame) owner.onFrame(buffer); };
        owner.source = context.createMediaStreamSource(stream);
        owner.node = hasWorklet ? workletCapture(context, onFrame) : scriptCapture(context, onFrame);
        owner.source.connect(owner.node);
        if (!hasWorklet) owner.node.connect(context.destination);
      });
    });
  }

  // A new voice turn: the reply audio of the last one stops.
  function beginTurn(handsFree, dictation) {
    touched();
    state.dirty = true;
    state.turn++;
    newReplyAudio();
    var current = {
      turn: state.turn, frames: [], started: Date.now(), ended: false, cancelled: false,
      replied: false, failed: false, handsFree: handsFree, heard: false, quietMs: 0,
      dictation: dictation || null
    };
    current.onFrame = function (buffer) { turnFrame(current, buffer); };
    capture = current;
    setTalk(handsFree ? "handsFree" : "listening");
    if (!dictation) showTranscript("", true);
    ensureSession().then(function (session) {
      if (current.cancelled) return;
      openSocket(current, session);
    }).catch(function () {
      failTurn(current, TEXT.network);
    });
    return current;
  }

  function startCapture(dictation) {
    if (capture || state.busy || !state.voice) return;
    var context;
    try {
      context = getContext();
    } catch (e) {
      voiceOff(TEXT.noMic);
      if (dictation) dictation.onError(TEXT.noMic);
      return;
    }
    var current = beginTurn(false, dictation);
    openMicrophone(current, context).catch(function (err) {
      var denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      failTurn(current, null);
      voiceOff(denied ? TEXT.micDenied : TEXT.noMic);
      if (dictation) dictation.onError(denied ? TEXT.micDenied : TEXT.noMic);
    });
  }

  /* ---------- barge-in: speaking while the kiosk talks ---------- */
  var barge = null;       // the listener while a reply plays: {stream, source, node, frames, loud}
  var lingerTimer = null;

  function frameLevel(buffer) {
    var samples = new Int16Array(buffer);
    var sum = 0;
    for (var i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
    return Math.sqrt(sum / Math.max(1, samples.length)) / 32768;
  }

  function startBargeListener() {
    if (lingerTimer) { clearTimeout(lingerTimer); lingerTimer = null; }
    if (!state.bargeIn || !state.voice || barge || capture || state.busy) return;
    var context;
    try { context = getContext(); } catch (e) { return; }
    var listener = { frames: [], loud: 0, ended: false };
    listener.onFrame = function (buffer) { bargeFrame(listener, buffer); };
    barge = listener;
    openMicrophone(listener, context).catch(function () {
      if (barge === listener) stopBargeListener();
    });
  }

  function stopBargeListener() {
    if (lingerTimer) { clearTimeout(lingerTimer); lingerTimer = null; }
    if (!barge) return;
    barge.ended = true;
    stopTracks(barge);
    barge = null;
  }

  // After the last part of a reply: keep listening a little (more parts may come).
  function lingerBargeListener() {
    if (!barge || lingerTimer) return;
    lingerTimer = setTimeout(function () { lingerTimer = null; if (!playing) stopBargeListener(); }, LISTENER_LINGER_MS);
  }

  function bargeFrame(listener, buffer) {
    if (listener.ended) return;
    listener.frames.push(buffer);
    if (listener.frames.length > PRE_ROLL_FRAMES) listener.frames.shift();
    listener.loud = frameLevel(buffer) >= state.bargeLevel ? listener.loud + 1 : 0;
    if (listener.loud >= BARGE_FRAMES && !capture && !state.busy) bargeIn(listener);
  }

  // The person spoke over the reply: stop it and hand the open microphone, with
  // the frames from just before the onset, to a new hands-free turn.
  function bargeIn(listener) {
    barge = null;
    if (lingerTimer) { clearTimeout(lingerTimer); lingerTimer = null; }
    var count = Number(document.body.getAttribute("data-barged") || "0") + 1;
    document.body.setAttribute("data-barged", String(count));
    var current = beginTurn(true);
    current.stream = listener.stream;
    current.source = listener.source;
    current.node = listener.node;
    listener.onFrame = current.onFrame;
    listener.frames.forEach(function (buffer) { turnFrame(current, buffer); });
    listener.frames = [];
  }

  function turnFrame(current, buffer) {
    sendFrame(current, buffer);
    if (!current.handsFree || current.ended) return;
    // Hands-free: the turn ends after a pause that follows speech.
    if (frameLevel(buffer) >= state.bargeLevel) {
      current.heard = true;
      current.quietMs = 0;
    } else {
      current.quietMs += FRAME_MS;
    }
    if ((current.heard && current.quietMs >= state.endSilenceMs) || Date.now() - current.started >= HANDS_FREE_MAX_MS) {
      endCapture(current);
    }
  }

  function openSocket(current, session) {
    var ws = new WebSocket(streamUrl(session, current.dictation));
    ws.binaryType = "arraybuffer";
    current.ws = ws;
    ws.onopen = function () {
      current.frames.forEach(function (f) { ws.send(f); });
      current.frames = [];
      if (current.ended) ws.send(JSON.stringify({ type: "end" }));
    };
    ws.onmessage = function (event) {
      if (capture !== current && !current.ended) return;
      if (typeof event.data !== "string") {
        enqueueAudio(new Blob([event.data], { type: "audio/wav" }), current.turn);
        return;
      }
      var msg = null;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (!msg) return;
      if (current.dictation) {
        dictationMessage(current, msg);
      } else if (msg.type === "partial" && !current.ended) {
        showTranscript(msg.text || "", true);
      } else if (msg.type === "final") {
        showTranscript(msg.corrected || msg.transcript || TEXT.notHeard, false);
      } else if (msg.type === "reply") {
        current.replied = true;
        renderReply(msg);
        finishTurn(current);
      } else if (msg.type === "error") {
        current.failed = true;
        if (msg.code === "asr_unavailable") voiceOff(msg.message || TEXT.noAsr);
        else if (msg.code === "forbidden") state.session = null;
        showError(msg.message || TEXT.network);
        finishTurn(current);
      }
    };
    ws.onclose = function () {
      if (!current.replied && !current.failed && !current.cancelled && current.ended) {
        if (current.dictation) current.dictation.onError(TEXT.network);
        else showError(TEXT.network);
      }
      finishTurn(current);
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  // Dictation into a form field: partial transcripts, then the field's text.
  function dictationMessage(current, msg) {
    var dictation = current.dictation;
    if (msg.type === "partial" && !current.ended) {
      dictation.onPartial(typeof msg.text === "string" ? msg.text : "");
    } else if (msg.type === "dictation") {
      current.replied = true;
      dictation.onText(typeof msg.text === "string" ? msg.text : "",
        typeof msg.transcript === "string" ? msg.transcript : "");
      finishTurn(current);
    } else if (msg.type === "error") {
      current.failed = true;
      if (msg.code === "asr_unavailable") voiceOff(msg.message || TEXT.noAsr);
      else if (msg.code === "forbidden") state.session = null;
      dictation.onError(msg.message || TEXT.network);
      finishTurn(current);
    }
  }

  function sendFrame(current, buffer) {
    if (current.cancelled) return;
    if (current.ws && current.ws.readyState === 1) current.ws.send(buffer);
    else current.frames.push(buffer);
  }

  function stopTracks(current) {
    if (current.source) { try { current.source.disconnect(); } catch (e) { /* gone */ } }
    if (current.node) {
      try { current.node.disconnect(); } catch (e) { /* gone */ }
      if (current.node.port) current.node.port.onmessage = null;
      current.node.onaudioprocess = null;
    }
    if (current.stream) current.stream.getTracks().forEach(function (t) { t.stop(); });
    current.stream = null;
  }

  function stopCapture() {
    var current = capture;
    if (!current || current.ended || current.cancelled || current.handsFree) return;
    touched();
    if (Date.now() - current.started < MIN_HOLD_MS) {
      cancelCapture(current);
      if (current.dictation) current.dictation.onError(TEXT.tooShort);
      else showTranscript(TEXT.tooShort, false);
      return;
    }
    endCapture(current);
  }

  function endCapture(current) {
    if (current.ended || current.cancelled) return;
    current.ended = true;
    setTalk("thinking");
    setBusy(true);
    var flush = current.node && current.node.flush ? current.node.flush() : Promise.resolve();
    flush.then(function () {
      stopTracks(current);
      if (current.ws && current.ws.readyState === 1) current.ws.send(JSON.stringify({ type: "end" }));
    });
  }

  function cancelCapture(current) {
    current.cancelled = true;
    stopTracks(current);
    if (current.ws) {
      if (current.ws.readyState === 1) current.ws.send(JSON.stringify({ type: "cancel" }));
      else try { current.ws.close(); } catch (e) { /* closed */ }
    }
    finishTurn(current);
  }

  function failTurn(current, message) {
    current.failed = true;
    stopTracks(current);
    if (current.ws) try { current.ws.close(); } catch (e) { /* closed */ }
    if (message && current.dictation) current.dictation.onError(message);
    else if (message) showError(message);
    finishTurn(current);
  }

  function finishTurn(current) {
    if (capture !== current) return;
    capture = null;
    lastDictation = current.dictation;
    setTalk("idle");
    lastDictation = null;
    setBusy(false);
  }

  function voiceOff(message) {
    state.voice = false;
    talkEl.disabled = true;
    talkEl.hidden = true;
    setNotice(message);
  }

  /* ---------- human handoff: operator messages on the live stream ---------- */
  var events = null;

  function setHandoff(ticket) {
    state.handoff = ticket ? { ticket_id: ticket.ticket_id, status: ticket.status, deferred: !!ticket.deferred } : null;
    if (!state.handoff) {
      handoffEl.hidden = true;
      handoffTextEl.textContent = "";
      handoffCancelEl.hidden = true;
      return;
    }
    handoffTextEl.textContent = state.handoff.status === "active" ? TEXT.active
      : state.handoff.deferred ? TEXT.deferred : TEXT.waiting;
    // While waiting (in service hours) the person can go back to the assistant.
    handoffCancelEl.hidden = !(state.handoff.status === "waiting" && !state.handoff.deferred);
    handoffEl.hidden = false;
    openEvents();
  }

  function openEvents() {
    if (events || !state.session || typeof window.EventSource !== "function") return;
    var session = state.session;
    events = new window.EventSource(EVENTS_URL + "?sender_id=" + encodeURIComponent(session.sender_id) +
      "&token=" + encodeURIComponent(session.token) + "&after=" + state.lastEventId);
    events.addEventListener("message", function (e) {
      var m = null;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (!m || typeof m.id !== "number" || m.id <= state.lastEventId || state.session !== session) return;
      state.lastEventId = m.id;
      var text = typeof m.text === "string" ? m.text : "";
      if (!text) return;
      if (m.role === "operator") {
        setHandoff({ ticket_id: m.ticket_id, status: "active", deferred: false });
        clearNode(answerEl);
        answerEl.appendChild(paragraph(TEXT.operator, "operator-label"));
        answerEl.appendChild(paragraph(text));
        showChoices([]);
        state.turn++;
        newReplyAudio();
        speak(text);
      } else if (m.role === "system") {
        answerEl.appendChild(paragraph(text));
        if (/已结束|转回|已取消/.test(text)) setHandoff(null);
      }
    });
  }

  function closeEvents() {
    if (events) events.close();
    events = null;
  }

  /* ---------- idle reset ---------- */
  var idleTimer = null;
  var resetHooks = [];   // run when the screen is cleared for the next person (prefill.js, supplement.js)
  var replyHooks = [];   // run with each reply shown (supplement.js)

  function touched() {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(onIdle, state.idleMs);
  }

  function onIdle() {
    idleTimer = null;
    // Not while someone talks, waits for an answer or listens to it.
    if (capture || state.busy || (!playerEl.paused && !playerEl.ended)) { touched(); return; }
    if (!state.dirty) return;
    resetScreen();
  }

  function resetScreen() {
    var previous = state.session;
    state.session = null;
    state.dirty = false;
    state.lastEventId = 0;
    closeEvents();
    setHandoff(null);
    state.turn++;
    newReplyAudio();
    showTranscript(TEXT.start, false);
    clearNode(answerEl);
    answerEl.appendChild(paragraph(TEXT.welcome, "hint"));
    showChoices([]);
    inputEl.value = "";
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    newSession(previous).catch(function () { /* retried on the next turn */ });
    answerLabelEl.textContent = "回答";
    resetHooks.forEach(function (hook) { try { hook(); } catch (e) { /* the screen is reset anyway */ } });
    document.body.setAttribute("data-reset", String(Date.now()));
  }

  /* ---------- events ---------- */
  talkEl.addEventListener("pointerdown", function (e) {
    if (e.button !== undefined && e.button !== 0) return;
    e.preventDefault();
    try { talkEl.setPointerCapture(e.pointerId); } catch (err) { /* not capturable */ }
    startCapture();
  });
  talkEl.addEventListener("pointerup", stopCapture);
  talkEl.addEventListener("pointercancel", stopCapture);
  talkEl.addEventListener("lostpointercapture", stopCapture);
  talkEl.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  // Keyboard (and switch access): hold Space or Enter.
  talkEl.addEventListener("keydown", function (e) {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) {
      e.preventDefault();
      startCapture();
    }
  });
  talkEl.addEventListener("keyup", function (e) {
    if (e.key === " " || e.key === "Enter") {
      e.preventDefault();
      stopCapture();
    }
  });

  replayEl.addEventListener("click", function () { touched(); replay(); });

  slowEl.addEventListener("click", function () {
    touched();
    var on = slowEl.getAttribute("aria-pressed") !== "true";
    slowEl.setAttribute("aria-pressed", on ? "true" : "false");
    try { window.localStorage.setItem(SLOW_KEY, on ? "1" : "0"); } catch (e) { /* private mode */ }
  });

  humanEl.addEventListener("click", function () {
    touched();
    sendText(HUMAN_TEXT, "找人工");
  });

  handoffCancelEl.addEventListener("click", function () {
    touched();
    sendText(CANCEL_TEXT, "返回智能助手");
  });

  var items = document.querySelectorAll(".item");
  for (var i = 0; i < items.length; i++) {
    items[i].addEventListener("click", function (e) {
      touched();
      sendText(e.currentTarget.getAttribute("data-text"), e.currentTarget.textContent);
    });
  }

  formEl.addEventListener("submit", function (e) {
    e.preventDefault();
    touched();
    var text = inputEl.value.trim();
    if (!text) { inputEl.focus(); return; }
    inputEl.value = "";
    sendText(text, text);
  });

  ["pointerdown", "keydown", "input"].forEach(function (type) {
    document.addEventListener(type, touched, true);
  });

  /* ---------- for prefill.js ---------- */
  window.banshiKiosk = {
    session: ensureSession,
    forgetSession: function () { state.session = null; },   // after a 403: a new one next time
    touched: touched,
    markDirty: function () { state.dirty = true; },
    // opts: {field: kind, onPartial(text), onText(text, transcript), onError(message), onState(mode)}
    dictate: function (opts) { startCapture(opts); },
    release: stopCapture,
    voiceReady: function () { return state.voice; },
    busy: function () { return state.busy || !!capture; },
    onReset: function (hook) { resetHooks.push(hook); },
    // For supplement.js: every reply shown (chat or voice turn), and speaking a text
    // like a reply (POST /api/v1/tts; 重听 replays it).
    onReply: function (hook) { replyHooks.push(hook); },
    say: function (text) { state.turn++; newReplyAudio(); speak(text); }
  };

  /* ---------- start ---------- */
  try {
    if (window.localStorage.getItem(SLOW_KEY) === "1") slowEl.setAttribute("aria-pressed", "true");
  } catch (e) { /* private mode */ }

  var idleParam = Number(new URLSearchParams(window.location.search).get("idle"));
  talkEl.disabled = true;
  newSession(null).catch(function () { /* retried on the first turn */ });

  var canRecord = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia &&
    (window.AudioContext || window.webkitAudioContext) && typeof WebSocket === "function");
  fetchJson(STATUS_URL, { method: "GET", headers: { "Accept": "application/json" } }).then(function (res) {
    var status = res.body || {};
    state.tts = !!status.tts;
    if (typeof status.idle_seconds === "number" && status.idle_seconds > 0) state.idleMs = status.idle_seconds * 1000;
    var bargeIn = status.barge_in || {};
    state.bargeIn = !!bargeIn.enabled;
    if (typeof bargeIn.level === "number" && bargeIn.level > 0) state.bargeLevel = bargeIn.level;
    if (typeof bargeIn.end_silence_seconds === "number" && bargeIn.end_silence_seconds > 0) {
      state.endSilenceMs = bargeIn.end_silence_seconds * 1000;
    }
    if (idleParam >= 2) state.idleMs = idleParam * 1000;
    if (!canRecord) voiceOff(TEXT.noMic);
    else if (!status.asr) voiceOff(TEXT.noAsr);
    else {
      state.voice = true;
      talkEl.disabled = state.busy;
    }
    document.body.setAttribute("data-ready", "1");
    touched();
  }).catch(function () {
    voiceOff(TEXT.noAsr);
    document.body.setAttribute("data-ready", "1");
    touched();
  });
})();
