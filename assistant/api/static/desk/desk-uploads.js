/* 办事助手 — operator desk: materials citizens handed in by photo (补交材料).
 *
 * "补交材料" in the top bar (or "查看补交材料" under a ticket whose citizen verified
 * an application) opens a panel over the ticket: an application's uploads, newest
 * first, with what the pre-check found (type, validity, name, flags) and a link to
 * the file. Every list and every file view is audited by the gateway. Server text is
 * only ever inserted with textContent.
 */
(function () {
  "use strict";

  var desk = window.banshiDesk;
  if (!desk) return;

  var API = "/api/v1/desk/uploads";
  var NUMBER_RE = /^ZW\d{11}$/;
  var BAD_NUMBER = "请输入正确的办件编号：ZW 开头，后面是 11 位数字。";
  var NONE = "这件办件还没有群众拍照补交的材料。";
  var VERDICTS = { ok: "预审通过", doubtful: "存疑，请人工核对" };
  var REASONS = {
    wrong_type: "不是所需的证件类型",
    unknown_type: "没有认出证件类型",
    other_side: "证件的另一面",
    unreadable: "照片不清楚",
    expired: "证件已过期",
    name_mismatch: "姓名与申请人不符"
  };
  var DOC_TYPES = {
    id_card_front: "身份证人像面",
    id_card_back: "身份证国徽面",
    household_register: "户口簿",
    marriage_certificate: "结婚证",
    birth_certificate: "出生医学证明",
    business_license: "营业执照",
    rental_contract: "租房合同",
    acceptance_receipt: "受理回执"
  };
  var CHANNELS = { web: "网页", wechat: "微信", kiosk: "自助终端" };

  function $(id) { return document.getElementById(id); }

  var el = {
    open: $("uploads-open"),
    panel: $("uploads-panel"),
    close: $("uploads-close"),
    form: $("uploads-form"),
    number: $("uploads-number"),
    go: $("uploads-go"),
    status: $("uploads-status"),
    list: $("uploads-list"),
    ticketField: $("sum-uploads-field"),
    ticketButton: $("sum-uploads")
  };
  if (!el.panel || !el.open) return;

  var ticketNumber = null;

  function make(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content != null) node.textContent = String(content);
    return node;
  }

  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (d.getMonth() + 1) + "月" + d.getDate() + "日 " + two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function field(dl, label, value) {
    if (value == null || value === "") return;
    dl.appendChild(make("dt", null, label));
    dl.appendChild(make("dd", null, value));
  }

  function card(u) {
    var li = make("li", "upload-item " + (u.verdict === "doubtful" ? "doubtful" : "ok"));
    li.setAttribute("data-id", u.id);
    var head = make("div", "upload-head");
    head.appendChild(make("span", "upload-material", u.material));
    head.appendChild(make("span", "upload-verdict " + u.verdict, VERDICTS[u.verdict] || u.verdict));
    head.appendChild(make("span", "upload-time", when(u.created_at) + " · " + (CHANNELS[u.channel] || u.channel)));
    li.appendChild(head);

    var dl = make("dl", "upload-facts");
    field(dl, "识别为", DOC_TYPES[u.doc_type] || (u.doc_type ? u.doc_type : "未识别"));
    var reasons = (u.reasons || []).map(function (r) { return REASONS[r] || r; });
    field(dl, "提示", reasons.join("；"));
    if (u.expiry) field(dl, "有效期至", u.expiry + (u.expired ? "（已过期）" : ""));
    if (u.name_matches === true) field(dl, "姓名", "与申请人相符");
    if (u.name_matches === false) field(dl, "姓名", "与申请人不符");
    field(dl, "文件", (u.mime === "application/pdf" ? "PDF" : "照片") + " · " + Math.ceil(u.size / 1024) + " KB" +
      (u.pages > 1 ? " · " + u.pages + " 页" : ""));
    field(dl, "转交办件系统", u.forwarded ? "已转交" : "待转交");
    li.appendChild(dl);

    if (u.text) {
      var details = make("details", "upload-text");
      details.appendChild(make("summary", null, "识别出的文字（已脱敏）"));
      details.appendChild(make("pre", null, u.text));
      li.appendChild(details);
    }
    if (u.deleted) {
      li.appendChild(make("p", "muted", "文件已按保存期限删除。"));
    } else {
      var link = make("a", "upload-link", "查看文件");
      link.href = API + "/" + encodeURIComponent(u.id) + "/file";
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      li.appendChild(link);
    }
    return li;
  }

  function load(number) {
    number = (number || "").replace(/\s+/g, "").toUpperCase();
    el.number.value = number;
    el.list.textContent = "";
    if (!NUMBER_RE.test(number)) {
      el.status.textContent = BAD_NUMBER;
      return;
    }
    el.status.textContent = "正在查询…";
    el.go.disabled = true;
    desk.api("GET", API + "?number=" + encodeURIComponent(number)).then(function (data) {
      el.go.disabled = false;
      var list = (data && Array.isArray(data.uploads)) ? data.uploads : [];
      el.status.textContent = list.length ? "编号 " + number + " 共 " + list.length + " 份补交材料。" : NONE;
      list.forEach(function (u) { el.list.appendChild(card(u)); });
    }, function (err) {
      el.go.disabled = false;
      el.status.textContent = err && err.message ? err.message : "查询失败，请稍后再试。";
    });
  }

  function openPanel(number) {
    el.panel.hidden = false;
    if (number) load(number);
    else el.number.focus();
  }

  el.open.addEventListener("click", function () { openPanel(ticketNumber); });
  el.close.addEventListener("click", function () { el.panel.hidden = true; });
  el.form.addEventListener("submit", function (e) {
    e.preventDefault();
    load(el.number.value);
  });
  if (el.ticketButton) {
    el.ticketButton.addEventListener("click", function () { openPanel(ticketNumber); });
  }

  // A ticket whose citizen verified an application: its uploads are one click away.
  document.addEventListener("banshi:ticket", function (e) {
    var t = e.detail || {};
    var v = (t.summary || {}).verification || {};
    ticketNumber = v.verified && typeof v.application_number === "string" ? v.application_number : null;
    if (el.ticketField) el.ticketField.hidden = !ticketNumber;
    el.panel.hidden = true;
  });
})();
