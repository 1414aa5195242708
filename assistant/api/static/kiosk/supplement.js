/* 办事助手 — handing in missing materials (补交) at the kiosk, with the document camera.
 *
 * After each reply about progress (answer "progress"), asks the gateway whether this
 * kiosk conversation has just verified an application that is missing materials
 * (GET /api/v1/chat/{id}/uploads?token=…: the conversation's token from
 * POST /api/v1/voice/sessions). If so, a large "拍照补交材料" button appears under the
 * answer. It opens a full-screen step: which material (when several), "拍照" with the
 * document camera (camera.js, the same capture as the pre-application form) or
 * "选择文件" (a photo or PDF; the only way without a camera). The photo goes to
 * POST /api/v1/chat/{id}/uploads (multipart: file, material) — checked, pre-checked
 * by OCR, stored encrypted and forwarded like the web chat's — and the pre-check's
 * answer is shown in large type and read aloud like a reply. The idle reset closes
 * it and forgets the conversation's state. Server text only goes in with textContent.
 */
(function () {
  "use strict";

  var ANSWER_PROGRESS = "progress";
  var TIMEOUT_MS = 120000;  // OCR on a kiosk's small CPU
  var PDF = "application/pdf";
  var TEXT = {
    intro: "编号 {number} 需要补交：{names}。",
    choose: "请先点一下要补交的是哪一项材料。",
    camera: "请把“{material}”平放在高拍仪下，对准后点“拍下这张”。",
    checking: "正在检查照片，请稍候……",
    noCamera: "没有找到摄像头，请选择照片或 PDF 文件。",
    notPhoto: "这个文件不是照片，请重新选择。",
    tooLarge: "文件太大了，最大 {mb} MB。请重新拍一张。",
    network: "网络好像有点问题，照片没有传上去。请稍后再试，或到窗口补交。",
    more: "还需要补交：{names}。可以接着拍。",
    done: "需要补交的材料都已经交了，请留意办件进度。"
  };

  var kiosk = window.banshiKiosk;
  var camera = window.banshiCamera;
  var $ = function (id) { return document.getElementById(id); };
  var openEl = $("supplement-open");
  var overlayEl = $("supplement");
  var closeEl = $("supplement-close");
  var introEl = $("supplement-intro");
  var chooseEl = $("supplement-choose");
  var materialsEl = $("supplement-materials");
  var shootEl = $("supplement-shoot");
  var pickEl = $("supplement-pick");
  var cameraEl = $("supplement-camera");
  var videoEl = $("supplement-view");
  var snapEl = $("supplement-snap");
  var cancelEl = $("supplement-cancel");
  var fileEl = $("supplement-file");
  var statusEl = $("supplement-status");
  var answerEl = $("supplement-answer");
  if (!kiosk || !camera || !openEl || !overlayEl) return;

  var state = {
    wanted: null,     // {number, materials, maxBytes}
    material: null,   // the material chosen
    stream: null,     // the camera
    sending: false,
    generation: 0     // bumped by the idle reset: answers for the previous person are dropped
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return values[key] == null ? "" : String(values[key]);
    });
  }

  function clearNode(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function masked(number) {
    number = String(number || "");
    return number.length > 9 ? number.slice(0, 6) + "****" + number.slice(-3) : number;
  }

  function url(session) {
    return "/api/v1/chat/" + encodeURIComponent(session.sender_id) + "/uploads?token=" +
      encodeURIComponent(session.token);
  }

  function setStatus(text) {
    statusEl.textContent = text || "";
    statusEl.hidden = !text;
  }

  function showAnswer(text, isError) {
    clearNode(answerEl);
    String(text || "").split("\n").forEach(function (line) {
      if (!line) return;
      var p = document.createElement("p");
      p.textContent = line;
      if (isError) p.className = "error";
      answerEl.appendChild(p);
    });
    answerEl.hidden = !answerEl.firstChild;
    if (!answerEl.hidden) answerEl.focus();
  }

  /* ---------- what this conversation may hand in ---------- */
  function refresh() {
    var generation = state.generation;
    return kiosk.session().then(function (session) {
      return fetch(url(session), {
        headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store"
      });
    }).then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (body) {
      if (generation !== state.generation) return;
      var materials = body && body.verified && Array.isArray(body.materials)
        ? body.materials.filter(function (m) { return typeof m === "string" && m; }) : [];
      state.wanted = materials.length ? {
        number: String(body.number || ""), materials: materials,
        maxBytes: typeof body.max_bytes === "number" ? body.max_bytes : 0
      } : null;
      if (state.wanted && state.wanted.materials.indexOf(state.material) < 0) state.material = null;
      openEl.hidden = !state.wanted;
      document.body.setAttribute("data-supplement", state.wanted ? "wanted" : "none");
      if (!overlayEl.hidden) renderWanted();
    }, function () { /* offline: keep what is shown */ });
  }

  function renderWanted() {
    clearNode(materialsEl);
    chooseEl.hidden = !state.wanted;  // all handed in: only the answer stays
    if (!state.wanted) {
      introEl.textContent = TEXT.done;
      return;
    }
    var materials = state.wanted.materials;
    if (materials.length === 1) state.material = materials[0];
    introEl.textContent = fill(TEXT.intro, { number: masked(state.wanted.number), names: materials.join("、") });
    materials.forEach(function (name) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "prefill-item";
      button.setAttribute("role", "radio");
      button.setAttribute("aria-checked", name === state.material ? "true" : "false");
      button.textContent = name;
      button.addEventListener("click", function () {
        kiosk.touched();
        state.material = name;
        setStatus("");
        renderWanted();
      });
      materialsEl.appendChild(button);
    });
    shootEl.textContent = camera.available() ? "拍照" : "选择照片";
    shootEl.disabled = state.sending;
    pickEl.disabled = state.sending;
    pickEl.hidden = !camera.available();  // without a camera "拍照" already picks a file
  }

  /* ---------- open, close ---------- */
  function open() {
    if (!state.wanted) return;
    kiosk.touched();
    kiosk.markDirty();
    kiosk.release();
    setStatus("");
    showAnswer("");
    renderWanted();
    overlayEl.hidden = false;
    document.body.classList.add("prefill-on");
    closeEl.focus();
  }

  function close() {
    stopCamera();
    fileEl.value = "";
    if (overlayEl.hidden) return;
    overlayEl.hidden = true;
    document.body.classList.remove("prefill-on");
    setStatus("");
    showAnswer("");
    if (!openEl.hidden) openEl.focus();
  }

  // The next person: nothing of this one's stays.
  function reset() {
    state.generation++;
    close();
    state.wanted = null;
    state.material = null;
    state.sending = false;
    openEl.hidden = true;
    document.body.setAttribute("data-supplement", "none");
  }

  /* ---------- the document camera, or a file ---------- */
  function stopCamera() {
    camera.stop(state.stream);
    state.stream = null;
    videoEl.srcObject = null;
    cameraEl.hidden = true;
  }

  function chosen() {
    if (state.material) return true;
    setStatus(TEXT.choose);
    return false;
  }

  function shoot() {
    kiosk.touched();
    if (state.sending || !chosen()) return;
    showAnswer("");
    if (!camera.available()) { pickFile(); return; }
    stopCamera();
    var material = state.material;
    camera.open().then(function (stream) {
      if (overlayEl.hidden || state.material !== material) { camera.stop(stream); return; }
      state.stream = stream;
      videoEl.srcObject = stream;
      cameraEl.hidden = false;
      setStatus(fill(TEXT.camera, { material: material }));
      snapEl.focus();
    }).catch(function () {
      camera.disable();
      setStatus(TEXT.noCamera);
      renderWanted();
      pickFile();
    });
  }

  function pickFile() {
    fileEl.value = "";
    fileEl.click();
  }

  snapEl.addEventListener("click", function () {
    kiosk.touched();
    if (!state.stream || state.sending) return;
    camera.snap(videoEl).then(function (blob) {
      stopCamera();
      send(blob, "photo.jpg");
    }).catch(function () { setStatus(TEXT.notPhoto); });
  });

  cancelEl.addEventListener("click", function () { kiosk.touched(); stopCamera(); setStatus(""); });

  fileEl.addEventListener("change", function () {
    kiosk.touched();
    var file = fileEl.files && fileEl.files[0];
    fileEl.value = "";
    if (!file || !chosen()) return;
    if (file.type === PDF) { send(file, file.name || "material.pdf"); return; }
    var max = state.wanted ? state.wanted.maxBytes : 0;
    camera.fromFile(file, max).then(function (blob) {
      send(blob, file.name || "photo.jpg");
    }, function () { setStatus(TEXT.notPhoto); });
  });

  /* ---------- hand it in ---------- */
  function setSending(on) {
    state.sending = on;
    shootEl.disabled = on;
    pickEl.disabled = on;
    closeEl.disabled = on;
    if (on) overlayEl.setAttribute("aria-busy", "true");
    else overlayEl.removeAttribute("aria-busy");
  }

  function answered(text, isError) {
    setStatus("");
    showAnswer(text, isError);
    kiosk.say(text);
  }

  function send(blob, name) {
    if (!state.wanted || state.sending) return;
    var max = state.wanted.maxBytes;
    if (max && blob.size > max) {
      answered(fill(TEXT.tooLarge, { mb: Math.floor(max / 1048576) }), true);
      return;
    }
    var generation = state.generation;
    var material = state.material;
    setSending(true);
    setStatus(TEXT.checking);
    kiosk.touched();
    kiosk.session().then(function (session) {
      var form = new FormData();
      form.append("file", blob, name);
      if (material) form.append("material", material);
      var controller = typeof AbortController === "function" ? new AbortController() : null;
      var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
      return fetch(url(session), {
        method: "POST", body: form, credentials: "same-origin", cache: "no-store",
        headers: { "Accept": "application/json" }, signal: controller ? controller.signal : undefined
      }).then(function (res) {
        if (timer) clearTimeout(timer);
        return res.text().then(function (raw) {
          var body = null;
          try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
          return { status: res.status, body: body || {} };
        });
      });
    }).then(function (result) {
      if (generation !== state.generation) return;
      setSending(false);
      kiosk.touched();
      if (result.status === 201 && typeof result.body.message === "string") {
        document.body.setAttribute("data-supplement-verdict", String(result.body.verdict || ""));
        answered(result.body.message, false);
        return refresh().then(function () {
          if (generation !== state.generation || overlayEl.hidden) return;
          var left = state.wanted ? state.wanted.materials.filter(function (m) { return m !== material; }) : [];
          setStatus(left.length ? fill(TEXT.more, { names: left.join("、") }) : "");
        });
      }
      var detail = typeof result.body.detail === "string" ? result.body.detail : TEXT.network;
      answered(detail, true);
    }).catch(function () {
      if (generation !== state.generation) return;
      setSending(false);
      answered(TEXT.network, true);
    });
  }

  shootEl.addEventListener("click", shoot);
  pickEl.addEventListener("click", function () {
    kiosk.touched();
    if (state.sending || !chosen()) return;
    stopCamera();
    pickFile();
  });
  openEl.addEventListener("click", open);
  closeEl.addEventListener("click", function () { kiosk.touched(); close(); });
  overlayEl.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !state.sending) close();
  });

  kiosk.onReply(function (body) {
    if ((body && body.answer === ANSWER_PROGRESS) || state.wanted) refresh();
  });
  kiosk.onReset(reset);
})();
