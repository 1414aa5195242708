/* 办事助手 — pre-application (预填) on the kiosk: works without a network.
 *
 * GET /api/v1/kiosk/forms gives the items with their fields and the materials that can
 * be photographed. The citizen picks an item, fills the fields with large inputs (or by
 * voice: tap a field, hold "按住说话填写"; kiosk.js streams the microphone with
 * mode=dictate and puts the answer into that field), photographs materials with the
 * document camera (camera.js: getUserMedia; a camera named like a document camera is
 * preferred; a file picker when there is no camera), and submits: POST
 * /api/v1/kiosk/preapplications answers the receipt number at once, shown in large
 * type and printed (window.print of the receipt sheet) where the kiosk has a printer.
 * The kiosk's own gateway keeps everything (sealed) and its outbox delivers it when the
 * connection returns. The idle reset (kiosk.js) closes this and wipes what was entered.
 * Server text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var FORMS_URL = "/api/v1/kiosk/forms";
  var SUBMIT_URL = "/api/v1/kiosk/preapplications";
  var TIMEOUT_MS = 60000;

  var TEXT = {
    talk: "按住说话填写",
    listening: "正在听，说完松开",
    thinking: "正在识别…",
    pickField: "请先点一下要填的格子。",
    filled: "已填入：",
    notHeard: "没有听清，请再说一遍。",
    choiceNotHeard: "没有听出是哪一项，请直接点选。",
    required: "必填",
    optional: "选填",
    shoot: "拍照",
    pick: "选择照片",
    remove: "删除",
    tooMany: "材料照片最多 {n} 张。",
    notPhoto: "这个文件不是照片，请重新选择。",
    noCamera: "没有找到摄像头，请选择照片文件。",
    submitting: "正在保存…",
    network: "保存没有成功，请再点一次“提交预申请”，或到窗口办理。",
    photos: "张"
  };

  var kiosk = window.banshiKiosk;
  var camera = window.banshiCamera;
  var $ = function (id) { return document.getElementById(id); };
  var openEl = $("prefill-open");
  var overlayEl = $("prefill");
  var closeEl = $("prefill-close");
  var errorEl = $("prefill-error");
  var itemsStepEl = $("prefill-items");
  var itemListEl = $("prefill-item-list");
  var formEl = $("prefill-form");
  var itemNameEl = $("prefill-item-name");
  var talkEl = $("prefill-talk");
  var talkLabelEl = $("prefill-talk-label");
  var heardEl = $("prefill-heard");
  var fieldsEl = $("prefill-fields");
  var materialsEl = $("prefill-materials");
  var cameraEl = $("camera");
  var videoEl = $("camera-view");
  var shootEl = $("camera-shoot");
  var cancelEl = $("camera-cancel");
  var fileEl = $("photo-file");
  var photosEl = $("prefill-photos");
  var submitEl = $("prefill-submit");
  var receiptStepEl = $("prefill-receipt");
  var receiptNumberEl = $("receipt-number");
  var receiptMessageEl = $("receipt-message");
  var printEl = $("receipt-print");
  var doneEl = $("receipt-done");

  var state = {
    forms: [],
    limits: { max_photos: 6, max_photo_bytes: 6 * 1024 * 1024 },
    printer: false,
    form: null,
    focused: null,      // {field, el} the field voice fills
    photos: [],         // {material, dataUrl}
    stream: null,       // the camera
    material: null,     // the material being photographed
    submitting: false
  };

  if (!kiosk || !camera || !overlayEl) return;

  /* ---------- helpers ---------- */
  function clearNode(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setError(text) {
    errorEl.textContent = text || "";
    errorEl.hidden = !text;
  }

  function showStep(name) {
    itemsStepEl.hidden = name !== "items";
    formEl.hidden = name !== "form";
    receiptStepEl.hidden = name !== "receipt";
    overlayEl.scrollTop = 0;
  }

  /* ---------- open, close, wipe ---------- */
  function open() {
    kiosk.touched();
    kiosk.markDirty();
    wipe();
    renderItems();
    showStep("items");
    overlayEl.hidden = false;
    document.body.classList.add("prefill-on");
    closeEl.focus();
  }

  // Everything entered leaves the screen and the page's memory.
  function wipe() {
    stopCamera();
    state.form = null;
    state.focused = null;
    state.photos = [];
    state.material = null;
    clearNode(fieldsEl);
    clearNode(materialsEl);
    clearNode(photosEl);
    heardEl.textContent = "";
    receiptNumberEl.textContent = "";
    receiptMessageEl.textContent = "";
    ["sheet-number", "sheet-item", "sheet-time", "sheet-photos", "sheet-message"].forEach(function (id) {
      $(id).textContent = "";
    });
    fileEl.value = "";
    setError("");
    document.body.removeAttribute("data-receipt");
  }

  function close() {
    if (overlayEl.hidden) return;
    kiosk.release();
    wipe();
    overlayEl.hidden = true;
    document.body.classList.remove("prefill-on");
    openEl.focus();
  }

  /* ---------- step 1: the item ---------- */
  function renderItems() {
    clearNode(itemListEl);
    state.forms.forEach(function (form) {
      var button = el("button", "prefill-item", form.name);
      button.type = "button";
      button.addEventListener("click", function () { chooseItem(form); });
      itemListEl.appendChild(button);
    });
  }

  function chooseItem(form) {
    kiosk.touched();
    state.form = form;
    itemNameEl.textContent = form.name;
    renderFields(form);
    renderMaterials(form);
    renderPhotos();
    talkEl.hidden = !kiosk.voiceReady();
    $("prefill-talk-help").hidden = talkEl.hidden;
    showStep("form");
    var first = fieldsEl.querySelector("input, [role=radio]");
    if (first) first.focus();
  }

  /* ---------- step 2: the fields ---------- */
  var INPUT_MODES = { phone: "tel", id_number: "text", number: "numeric", date: "numeric" };

  function renderFields(form) {
    clearNode(fieldsEl);
    form.fields.forEach(function (field) {
      var id = "pf-" + field.id;
      var box = el("div", "field");
      box.setAttribute("data-field", field.id);
      var label = el(field.kind === "choice" ? "p" : "label", "field-label", field.label);
      label.id = id + "-label";
      if (field.kind !== "choice") label.setAttribute("for", id);
      label.appendChild(el("span", field.required ? "tag required" : "tag", field.required ? TEXT.required : TEXT.optional));
      box.appendChild(label);
      var error = el("p", "field-error");
      error.id = id + "-error";
      error.hidden = true;
      var input;
      if (field.kind === "choice") {
        input = el("div", "choice-group");
        input.setAttribute("role", "radiogroup");
        input.setAttribute("aria-labelledby", label.id);
        (field.options || []).forEach(function (option, index) {
          var radio = el("button", "choice-option", option);
          radio.type = "button";
          radio.setAttribute("role", "radio");
          radio.setAttribute("aria-checked", "false");
          radio.setAttribute("data-value", option);
          radio.tabIndex = index === 0 ? 0 : -1;
          radio.addEventListener("click", function () { choose(input, option); });
          input.appendChild(radio);
        });
      } else {
        input = el("input", "field-input");
        input.type = "text";
        input.maxLength = field.max_length || 100;
        if (INPUT_MODES[field.kind]) input.setAttribute("inputmode", INPUT_MODES[field.kind]);
        if (field.kind === "date" && !field.hint) input.placeholder = "例如 2025-03-01";
        input.autocomplete = "off";
        input.spellcheck = false;
      }
      input.id = id;
      input.setAttribute("data-kind", field.kind);
      input.setAttribute("aria-describedby", error.id);
      box.appendChild(input);
      if (field.hint) box.appendChild(el("p", "field-hint", field.hint));
      box.appendChild(error);
      fieldsEl.appendChild(box);
    });
  }

  function choose(group, value) {
    kiosk.touched();
    var options = group.querySelectorAll("[role=radio]");
    for (var i = 0; i < options.length; i++) {
      var on = options[i].getAttribute("data-value") === value;
      options[i].setAttribute("aria-checked", on ? "true" : "false");
      options[i].tabIndex = on ? 0 : -1;
    }
    group.setAttribute("data-value", value);
  }

  fieldsEl.addEventListener("focusin", function (e) {
    var target = e.target.closest(".field");
    if (!target) return;
    var input = target.querySelector(".field-input, .choice-group");
    state.focused = { field: target.getAttribute("data-field"), el: input };
    var boxes = fieldsEl.querySelectorAll(".field");
    for (var i = 0; i < boxes.length; i++) boxes[i].classList.toggle("active", boxes[i] === target);
  });

  function values() {
    var out = {};
    var boxes = fieldsEl.querySelectorAll(".field");
    for (var i = 0; i < boxes.length; i++) {
      var id = boxes[i].getAttribute("data-field");
      var input = boxes[i].querySelector(".field-input");
      var group = boxes[i].querySelector(".choice-group");
      var value = input ? input.value : (group && group.getAttribute("data-value")) || "";
      if (value.trim()) out[id] = value;
    }
    return out;
  }

  function showProblems(problems) {
    var first = null;
    var boxes = fieldsEl.querySelectorAll(".field");
    for (var i = 0; i < boxes.length; i++) {
      var id = boxes[i].getAttribute("data-field");
      var error = boxes[i].querySelector(".field-error");
      var input = boxes[i].querySelector(".field-input, .choice-group");
      var problem = problems && typeof problems[id] === "string" ? problems[id] : "";
      error.textContent = problem;
      error.hidden = !problem;
      boxes[i].classList.toggle("invalid", !!problem);
      if (problem) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      if (problem && !first) first = input;
    }
    var figures = photosEl.querySelectorAll(".photo");
    for (var j = 0; j < figures.length; j++) {
      var photoProblem = problems && typeof problems["photo:" + j] === "string" ? problems["photo:" + j] : "";
      var note = figures[j].querySelector(".field-error");
      note.textContent = photoProblem;
      note.hidden = !photoProblem;
    }
    if (first) first.focus();
  }

  /* ---------- voice: fill the chosen field ---------- */
  function target() {
    if (state.focused && state.focused.el && fieldsEl.contains(state.focused.el)) return state.focused;
    return null;
  }

  function fieldOf(id) {
    if (!state.form) return null;
    for (var i = 0; i < state.form.fields.length; i++) {
      if (state.form.fields[i].id === id) return state.form.fields[i];
    }
    return null;
  }

  function fill(field, text, transcript) {
    var spec = fieldOf(field.field);
    if (!spec) return;
    if (spec.kind === "choice") {
      var heard = (transcript || text || "").replace(/\s+/g, "");
      var match = (spec.options || []).filter(function (o) { return heard.indexOf(o) >= 0; })[0];
      if (!match) { heardEl.textContent = TEXT.choiceNotHeard; return; }
      choose(field.el, match);
      heardEl.textContent = TEXT.filled + match;
      return;
    }
    if (!text) { heardEl.textContent = TEXT.notHeard; return; }
    field.el.value = text.slice(0, field.el.maxLength > 0 ? field.el.maxLength : text.length);
    heardEl.textContent = TEXT.filled + field.el.value;
    field.el.focus();
  }

  function startTalk(e) {
    if (e) e.preventDefault();
    kiosk.touched();
    var field = target();
    if (!field) { heardEl.textContent = TEXT.pickField; return; }
    if (kiosk.busy()) return;
    heardEl.textContent = "";
    kiosk.dictate({
      field: (fieldOf(field.field) || {}).kind || "text",
      onPartial: function (text) { heardEl.textContent = text; },
      onText: function (text, transcript) { fill(field, text, transcript); },
      onError: function (message) {
        heardEl.textContent = message;
        if (!kiosk.voiceReady()) talkEl.hidden = true;
      },
      onState: function (mode) {
        talkEl.classList.toggle("listening", mode === "listening");
        talkEl.classList.toggle("thinking", mode === "thinking");
        talkLabelEl.textContent = mode === "listening" ? TEXT.listening : mode === "thinking" ? TEXT.thinking : TEXT.talk;
        talkEl.setAttribute("aria-pressed", mode === "listening" ? "true" : "false");
      }
    });
  }

  talkEl.addEventListener("pointerdown", function (e) {
    if (e.button !== undefined && e.button !== 0) return;
    try { talkEl.setPointerCapture(e.pointerId); } catch (err) { /* not capturable */ }
    startTalk(e);
  });
  talkEl.addEventListener("pointerup", function () { kiosk.release(); });
  talkEl.addEventListener("pointercancel", function () { kiosk.release(); });
  talkEl.addEventListener("lostpointercapture", function () { kiosk.release(); });
  talkEl.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  talkEl.addEventListener("keydown", function (e) {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) startTalk(e);
  });
  talkEl.addEventListener("keyup", function (e) {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); kiosk.release(); }
  });

  /* ---------- materials: the document camera, or a file (camera.js) ---------- */
  function renderMaterials(form) {
    var canFilm = camera.available();
    clearNode(materialsEl);
    (form.photos || []).forEach(function (material) {
      var row = el("div", "material");
      row.appendChild(el("span", "material-name", material));
      var shoot = el("button", "material-shoot", canFilm ? TEXT.shoot : TEXT.pick);
      shoot.type = "button";
      shoot.setAttribute("aria-label", (canFilm ? TEXT.shoot : TEXT.pick) + "：" + material);
      shoot.addEventListener("click", function () { photograph(material); });
      row.appendChild(shoot);
      materialsEl.appendChild(row);
    });
  }

  function photograph(material) {
    kiosk.touched();
    setError("");
    if (state.photos.length >= state.limits.max_photos) {
      setError(TEXT.tooMany.replace("{n}", state.limits.max_photos));
      return;
    }
    state.material = material;
    if (!camera.available()) { pickFile(); return; }
    stopCamera();
    camera.open().then(function (stream) {
      if (state.material !== material) { camera.stop(stream); return; }
      state.stream = stream;
      videoEl.srcObject = stream;
      cameraEl.hidden = false;
      cameraEl.setAttribute("data-material", material);
      shootEl.focus();
    }).catch(function () {
      setError(TEXT.noCamera);
      camera.disable();
      if (state.form) renderMaterials(state.form);
      pickFile();
    });
  }

  function stopCamera() {
    camera.stop(state.stream);
    state.stream = null;
    videoEl.srcObject = null;
    cameraEl.hidden = true;
  }

  shootEl.addEventListener("click", function () {
    kiosk.touched();
    var material = state.material;
    if (!state.stream || !videoEl.videoWidth) return;
    camera.snap(videoEl).then(function (blob) {
      stopCamera();
      addPhoto(material, blob);
    }).catch(function () { setError(TEXT.notPhoto); });
  });

  cancelEl.addEventListener("click", function () { kiosk.touched(); stopCamera(); });

  function pickFile() {
    fileEl.value = "";
    fileEl.click();
  }

  fileEl.addEventListener("change", function () {
    kiosk.touched();
    var file = fileEl.files && fileEl.files[0];
    var material = state.material;
    if (!file || !material) return;
    // JPEG and PNG within the bound go as they are (the kiosk checks them by content);
    // other pictures are re-encoded, what cannot be decoded is not a photo.
    camera.fromFile(file, state.limits.max_photo_bytes).then(function (blob) { addPhoto(material, blob); },
                                                             function () { setError(TEXT.notPhoto); });
  });

  function addPhoto(material, blob) {
    var reader = new FileReader();
    reader.onload = function () {
      if (!state.form) return;
      state.photos.push({ material: material, dataUrl: String(reader.result) });
      renderPhotos();
    };
    reader.onerror = function () { setError(TEXT.notPhoto); };
    reader.readAsDataURL(blob);
  }

  function renderPhotos() {
    clearNode(photosEl);
    state.photos.forEach(function (photo, index) {
      var figure = el("figure", "photo");
      var img = el("img", "photo-img");
      img.src = photo.dataUrl;
      img.alt = photo.material + "的照片";
      figure.appendChild(img);
      figure.appendChild(el("figcaption", "photo-caption", photo.material));
      var remove = el("button", "photo-remove", TEXT.remove);
      remove.type = "button";
      remove.setAttribute("aria-label", TEXT.remove + "：" + photo.material + "的照片");
      remove.addEventListener("click", function () {
        kiosk.touched();
        state.photos.splice(index, 1);
        renderPhotos();
      });
      figure.appendChild(remove);
      var note = el("p", "field-error");
      note.hidden = true;
      figure.appendChild(note);
      photosEl.appendChild(figure);
    });
    document.body.setAttribute("data-photos", String(state.photos.length));
  }

  /* ---------- submit ---------- */
  function post(body, retried) {
    return kiosk.session().then(function (session) {
      var controller = typeof AbortController === "function" ? new AbortController() : null;
      var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
      var payload = Object.assign({ sender_id: session.sender_id, token: session.token }, body);
      return fetch(SUBMIT_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(payload),
        credentials: "same-origin",
        cache: "no-store",
        signal: controller ? controller.signal : undefined
      }).then(function (res) {
        if (timer) clearTimeout(timer);
        return res.text().then(function (raw) {
          var parsed = null;
          try { parsed = raw ? JSON.parse(raw) : null; } catch (e) { parsed = null; }
          if (res.status === 403 && !retried) {
            kiosk.forgetSession();
            return post(body, true);
          }
          return { status: res.status, ok: res.ok, body: parsed };
        });
      });
    });
  }

  formEl.addEventListener("submit", function (e) {
    e.preventDefault();
    if (state.submitting || !state.form) return;
    kiosk.touched();
    kiosk.release();
    stopCamera();
    setError("");
    state.submitting = true;
    submitEl.disabled = true;
    submitEl.textContent = TEXT.submitting;
    var body = {
      item_id: state.form.item_id,
      fields: values(),
      photos: state.photos.map(function (p) { return { material: p.material, data: p.dataUrl }; })
    };
    post(body, false).then(function (res) {
      if (res.status === 201 && res.body && typeof res.body.receipt === "string") {
        showReceipt(res.body);
        return;
      }
      var detail = res.body && typeof res.body.detail === "string" ? res.body.detail : TEXT.network;
      setError(detail);
      showProblems(res.body && res.body.problems);
      if (!(res.body && res.body.problems && Object.keys(res.body.problems).length)) errorEl.focus();
    }).catch(function () {
      setError(TEXT.network);
    }).then(function () {
      state.submitting = false;
      submitEl.disabled = false;
      submitEl.textContent = "提交预申请";
    });
  });

  /* ---------- step 3: the receipt ---------- */
  function showReceipt(answer) {
    var created = new Date(answer.created_at);
    var when = isNaN(created.getTime()) ? "" : created.toLocaleString("zh-CN", { hour12: false });
    var item = state.form ? state.form.name : answer.item_name;
    var photos = String(answer.materials || 0);
    wipe();  // nothing entered stays on the page; only the receipt
    receiptNumberEl.textContent = answer.receipt;
    receiptMessageEl.textContent = typeof answer.message === "string" ? answer.message : "";
    $("sheet-number").textContent = answer.receipt;
    $("sheet-item").textContent = item || "";
    $("sheet-time").textContent = when;
    $("sheet-photos").textContent = photos;
    $("sheet-message").textContent = receiptMessageEl.textContent;
    document.body.setAttribute("data-receipt", answer.receipt);
    showStep("receipt");
    doneEl.focus();
    if (answer.print || state.printer) setTimeout(printReceipt, 300);
  }

  function printReceipt() {
    kiosk.touched();
    if (typeof window.print === "function") window.print();
  }

  printEl.addEventListener("click", printReceipt);
  doneEl.addEventListener("click", close);
  closeEl.addEventListener("click", close);
  openEl.addEventListener("click", open);
  kiosk.onReset(close);

  /* ---------- start: which items can be pre-applied for here ---------- */
  fetch(FORMS_URL, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(function (body) {
      if (!body || !Array.isArray(body.items) || !body.items.length) return;
      state.forms = body.items;
      if (body.limits) state.limits = body.limits;
      state.printer = !!body.printer;
      openEl.hidden = false;
      document.body.setAttribute("data-prefill", "1");
    })
    .catch(function () { /* no forms: the button stays hidden */ });
})();
