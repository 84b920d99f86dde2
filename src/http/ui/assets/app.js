// minimax-connector dashboard: refreshes the page's live regions in place and asks
// before destructive actions. No inline script anywhere (the CSP forbids it); the
// server renders every region, this only swaps them.
"use strict";
(function () {
  // A page may ask for a slower pace (the tenants page reads every tenant's status).
  var pace = document.querySelector("[data-refresh-ms]");
  var INTERVAL_MS = Math.max(1000, Number(pace && pace.getAttribute("data-refresh-ms")) || 3000);
  var live = document.querySelectorAll("[data-live]");
  var busy = false;

  function swap(doc) {
    var fresh = doc.querySelectorAll("[data-live]");
    for (var i = 0; i < fresh.length; i++) {
      var cur = document.getElementById(fresh[i].id);
      // Never pull the focused control away from a keyboard user.
      if (!cur || cur.contains(document.activeElement)) continue;
      if (cur.innerHTML !== fresh[i].innerHTML) cur.innerHTML = fresh[i].innerHTML;
    }
    var n = Number(document.documentElement.getAttribute("data-refreshes") || 0) + 1;
    document.documentElement.setAttribute("data-refreshes", String(n));
  }

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.href, {
      credentials: "same-origin",
      headers: { "X-UI-Fragment": "1" },
    })
      .then(function (res) {
        if (res.redirected && res.url.indexOf("/ui/login") !== -1) {
          location.assign(res.url);
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then(function (text) {
        if (text) swap(new DOMParser().parseFromString(text, "text/html"));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }

  if (live.length > 0) setInterval(refresh, INTERVAL_MS);

  document.addEventListener("submit", function (e) {
    var b = e.target.querySelector("button.danger");
    if (b && !window.confirm(b.textContent + ": are you sure?")) e.preventDefault();
  });
})();
