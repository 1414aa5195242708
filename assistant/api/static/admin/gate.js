/* 办事助手 — the analytics page's login (401) and refusal (403) pages.
 * Login uses the desk's session (POST /api/v1/desk/login), then reloads the page,
 * which the server now answers with the dashboard (admins) or a refusal.
 */
(function () {
  "use strict";

  var DESK = "/api/v1/desk";
  var NETWORK_ERROR = "网络连接有问题，请稍后再试。";

  function $(id) { return document.getElementById(id); }

  function showError(message) {
    var box = $("login-error");
    box.textContent = message;
    box.hidden = !message;
  }

  function detailOf(raw, fallback) {
    try {
      var data = JSON.parse(raw);
      if (data && typeof data.detail === "string") return data.detail;
    } catch (e) { /* not JSON */ }
    return fallback;
  }

  var form = $("login-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var username = $("username").value.trim();
      var password = $("password").value;
      if (!username || !password) {
        showError("请输入用户名和密码。");
        return;
      }
      $("login-btn").disabled = true;
      showError("");
      fetch(DESK + "/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ username: username, password: password }),
        credentials: "same-origin",
        cache: "no-store"
      }).then(function (res) {
        return res.text().then(function (raw) {
          if (res.ok) {
            window.location.reload();
            return;
          }
          showError(detailOf(raw, "登录失败，请稍后再试。"));
          $("login-btn").disabled = false;
        });
      }, function () {
        showError(NETWORK_ERROR);
        $("login-btn").disabled = false;
      });
    });
    $("username").focus();
  }

  var logout = $("logout");
  if (logout) {
    logout.addEventListener("click", function () {
      logout.disabled = true;
      fetch(DESK + "/me", { credentials: "same-origin", cache: "no-store" })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (me) {
          if (!me) return null;
          return fetch(DESK + "/logout", {
            method: "POST",
            headers: { "X-CSRF-Token": me.csrf_token || "" },
            credentials: "same-origin"
          });
        })
        .then(function () { window.location.reload(); },
              function () { showError(NETWORK_ERROR); logout.disabled = false; });
    });
  }
}());
