/* 办事助手 — photos in the web chat: missing materials (补交材料) and photo questions.
 *
 * "拍照" in the composer sends a photo of a notice, a receipt or a form
 * (POST /api/v1/chat/{id}/photos): the text read from it is answered like a typed
 * message (an application number on a receipt starts the progress lookup).
 *
 * After a progress answer, asks the gateway whether this conversation has just
 * verified an application that is missing materials (GET /api/v1/chat/{id}/uploads);
 * if so, shows the attach bar: which material (when several), "拍照上传" (the phone's
 * camera) and "选择照片或文件" (a photo or PDF file). The file goes to
 * POST /api/v1/chat/{id}/uploads and the pre-check's answer appears in the chat.
 * Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var chat = window.banshiChat;
  if (!chat) return;

  var TIMEOUT_MS = 60000;
  var ANSWER_PROGRESS = "progress";
  var NETWORK_ERROR = "网络好像有点问题，文件没有传上去，请稍后再试。";
  var TOO_LARGE = "文件太大了，最大 {mb} MB。请您压缩后再上传，或者直接拍一张照片。";
  var TITLE_ONE = "需要补交：{name}。您可以直接拍照，或选择照片、PDF 文件上传。";
  var TITLE_MANY = "需要补交 {n} 项材料。请先选择要补交哪一项，再拍照或选择文件上传。";
  var SENT_LABEL = "补交材料：{name}";
  var PHOTO_LABEL = "［照片］{text}";
  var PHOTO_SENDING = "［照片］";

  var barEl = document.getElementById("attach-bar");
  var titleEl = document.getElementById("attach-title");
  var selectEl = document.getElementById("attach-material");
  var cameraEl = document.getElementById("attach-camera");
  var pickEl = document.getElementById("attach-pick");
  var cameraInput = document.getElementById("attach-camera-input");
  var fileInput = document.getElementById("attach-file-input");
  if (!barEl || !selectEl || !cameraInput || !fileInput) return;

  var wanted = { materials: [], maxBytes: 0 };
  var uploading = false;

  var fill = chat.fill;

  function url(current) {
    return "/api/v1/chat/" + encodeURIComponent(current.sender_id) + "/uploads?token=" +
      encodeURIComponent(current.token);
  }

  function render() {
    var materials = wanted.materials;
    // While materials are wanted, photos go to the attach bar (one camera button on screen).
    var photoAsk = document.getElementById("photo-ask");
    if (photoAsk) photoAsk.hidden = materials.length > 0;
    if (!materials.length) {
      barEl.hidden = true;
      return;
    }
    selectEl.textContent = "";
    materials.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      selectEl.appendChild(option);
    });
    selectEl.hidden = materials.length < 2;
    titleEl.textContent = materials.length < 2
      ? fill(TITLE_ONE, { name: materials[0] })
      : fill(TITLE_MANY, { n: materials.length });
    setBusy(uploading);
    barEl.hidden = false;
  }

  function setBusy(on) {
    uploading = on;
    cameraEl.disabled = on;
    pickEl.disabled = on;
    selectEl.disabled = on;
  }

  // What this conversation may hand in now (nothing when it has not verified an application).
  function refresh() {
    var current = chat.session();
    if (!current) return Promise.resolve();
    return fetch(url(current), {
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (body) {
      var ok = body && body.verified && Array.isArray(body.materials);
      wanted = {
        materials: ok ? body.materials.filter(function (m) { return typeof m === "string" && m; }) : [],
        maxBytes: body && typeof body.max_bytes === "number" ? body.max_bytes : 0
      };
      render();
    }, function () { /* offline: keep what is shown */ });
  }

  function send(file) {
    var current = chat.session();
    if (!file || !current || uploading) return;
    var material = wanted.materials.length > 1 ? selectEl.value : wanted.materials[0];
    if (wanted.maxBytes && file.size > wanted.maxBytes) {
      chat.addSystemMessage(fill(TOO_LARGE, { mb: Math.floor(wanted.maxBytes / 1048576) }));
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    if (material) form.append("material", material);
    chat.addUserMessage(fill(SENT_LABEL, { name: material || file.name || "" }));
    setBusy(true);
    chat.showTyping();
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    var options = { method: "POST", body: form, credentials: "same-origin", cache: "no-store",
                    headers: { "Accept": "application/json" } };
    if (controller) options.signal = controller.signal;
    fetch(url(current), options).then(function (res) {
      return res.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        return { status: res.status, body: body };
      });
    }).then(function (result) {
      if (timer) clearTimeout(timer);
      chat.hideTyping();
      setBusy(false);
      var body = result.body || {};
      if (result.status === 201 && typeof body.message === "string") {
        chat.addBotMessage(body.message, []);
      } else if (result.status >= 400 && result.status < 500 && typeof body.detail === "string") {
        chat.addSystemMessage(body.detail);
      } else {
        chat.addSystemMessage(NETWORK_ERROR);
      }
      return refresh();
    }, function () {
      if (timer) clearTimeout(timer);
      chat.hideTyping();
      setBusy(false);
      chat.addSystemMessage(NETWORK_ERROR);
    });
  }

  function onChosen(input) {
    var file = input.files && input.files[0];
    input.value = ""; // the same file can be chosen again
    send(file);
  }

  /* ---------- photo questions ---------- */
  var photoEl = document.getElementById("photo-ask");
  var photoInput = document.getElementById("photo-input");

  function ask(file) {
    var current = chat.session();
    if (!file || uploading || chat.isSending()) return;
    if (wanted.maxBytes && file.size > wanted.maxBytes) {
      chat.addSystemMessage(fill(TOO_LARGE, { mb: Math.floor(wanted.maxBytes / 1048576) }));
      return;
    }
    var bubble = chat.addUserMessage(PHOTO_SENDING);
    chat.setSending(true);
    photoEl.disabled = true;
    chat.showTyping();
    chat.ensureSession().then(function (s) {
      current = s;
      var form = new FormData();
      form.append("file", file, file.name || "photo.jpg");
      return fetch("/api/v1/chat/" + encodeURIComponent(current.sender_id) + "/photos?token=" +
        encodeURIComponent(current.token), {
        method: "POST", body: form, credentials: "same-origin", cache: "no-store",
        headers: { "Accept": "application/json" }
      });
    }).then(function (res) {
      return res.text().then(function (raw) {
        var body = null;
        try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
        return { status: res.status, body: body || {} };
      });
    }).then(function (result) {
      chat.hideTyping();
      chat.setSending(false);
      photoEl.disabled = false;
      if (result.status === 200 && typeof result.body.read === "string") {
        var shown = bubble && bubble.querySelector(".msg");
        if (shown) shown.textContent = fill(PHOTO_LABEL, { text: result.body.read });
        chat.showReply(result.body);
      } else if (result.status >= 400 && result.status < 500 && typeof result.body.detail === "string") {
        chat.addSystemMessage(result.body.detail);
      } else {
        chat.addSystemMessage(NETWORK_ERROR);
      }
    }, function () {
      chat.hideTyping();
      chat.setSending(false);
      photoEl.disabled = false;
      chat.addSystemMessage(NETWORK_ERROR);
    });
  }

  if (photoEl && photoInput) {
    photoEl.addEventListener("click", function () { if (!uploading && !chat.isSending()) photoInput.click(); });
    photoInput.addEventListener("change", function () {
      var file = photoInput.files && photoInput.files[0];
      photoInput.value = "";
      ask(file);
    });
  }

  /* ---------- handing in missing materials ---------- */
  cameraEl.addEventListener("click", function () { if (!uploading) cameraInput.click(); });
  pickEl.addEventListener("click", function () { if (!uploading) fileInput.click(); });
  cameraInput.addEventListener("change", function () { onChosen(cameraInput); });
  fileInput.addEventListener("change", function () { onChosen(fileInput); });

  document.addEventListener("banshi:reply", function (e) {
    var body = e.detail || {};
    if (body.answer === ANSWER_PROGRESS || wanted.materials.length) refresh();
  });

  // A page reloaded within the grant's time shows the bar again.
  refresh();
})();
