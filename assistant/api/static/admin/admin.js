/* 办事助手 — shared by the admin pages (/admin/...): JSON requests with the desk
 * session's CSRF token, the signed-in user and 退出登录, and the navigation between
 * the admin pages. Loaded before each page's own script; server text is only ever
 * inserted with textContent.
 */
(function () {
  "use strict";

  var DESK = "/api/v1/desk";
  var NETWORK_ERROR = "网络连接有问题，请稍后再试。";
  var PAGES = [
    ["/admin/analytics", "数据分析"],
    ["/admin/catalog", "事项管理"],
    ["/admin/reviews", "待审核消息"],
    ["/desk", "人工坐席"]
  ];

  var session = { csrf: "" };

  /* problems: the server's list of problems in Chinese; fields: each with the field it
   * is about ({field, problem}, the catalog editor). */
  function ApiError(status, message, problems, fields) {
    this.status = status; this.message = message; this.problems = problems || []; this.fields = fields || [];
  }

  /* A JSON request; resolves with the parsed body, rejects with an ApiError whose
   * message is the server's Chinese detail (401 reloads: the server shows the login). */
  function request(method, url, body) {
    var headers = { "Accept": "application/json" };
    var unsafe = method !== "GET";
    if (unsafe) {
      headers["X-CSRF-Token"] = session.csrf;
      headers["Content-Type"] = "application/json";
    }
    return fetch(url, {
      method: method, credentials: "same-origin", cache: "no-store", headers: headers,
      body: unsafe ? JSON.stringify(body === undefined ? {} : body) : undefined
    }).then(function (res) {
      return res.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        if (res.ok) return data;
        if (res.status === 401) window.location.reload();
        var detail = data && typeof data.detail === "string" ? data.detail : "操作失败（" + res.status + "）";
        throw new ApiError(res.status, detail, data && data.problems, data && data.fields);
      });
    }, function () { throw new ApiError(0, NETWORK_ERROR); });
  }

  /* The signed-in user (GET /api/v1/desk/me): keeps the CSRF token, shows the name in
   * #who and wires #logout. Resolves with the user. */
  function signIn() {
    var logout = document.getElementById("logout");
    if (logout) {
      logout.addEventListener("click", function () {
        logout.disabled = true;
        request("POST", DESK + "/logout").then(function () { window.location.reload(); },
          function () { window.location.reload(); });
      });
    }
    return request("GET", DESK + "/me").then(function (me) {
      session.csrf = me.csrf_token || "";
      var who = document.getElementById("who");
      if (who) who.textContent = me.display_name || me.username;
      return me;
    });
  }

  /* The links between the admin pages, in <nav id="admin-nav">; the current page is
   * marked aria-current and not a link target of its own. */
  function renderNav() {
    var nav = document.getElementById("admin-nav");
    if (!nav) return;
    PAGES.forEach(function (page) {
      var link = document.createElement("a");
      link.className = "button";
      link.href = page[0];
      link.textContent = page[1];
      if (window.location.pathname === page[0]) link.setAttribute("aria-current", "page");
      nav.appendChild(link);
    });
  }

  window.banshiAdmin = { ApiError: ApiError, request: request, signIn: signIn, NETWORK_ERROR: NETWORK_ERROR };
  renderNav();
}());
