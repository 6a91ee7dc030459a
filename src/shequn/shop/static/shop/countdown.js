// Every element with data-deadline (an ISO time) counts down to it: "1天 02:03:04", then
// data-over (default "已结束"). The server decides what is still open; this only shows it.
(function () {
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function start(el) {
    var end = Date.parse(el.dataset.deadline);
    if (isNaN(end)) return;
    function tick() {
      var s = Math.floor((end - Date.now()) / 1000);
      if (s <= 0) { el.textContent = el.dataset.over || "已结束"; return; }
      var d = Math.floor(s / 86400); s %= 86400;
      var text = pad(Math.floor(s / 3600)) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
      el.textContent = (d ? d + "天 " : "") + text;
      setTimeout(tick, 1000 - (Date.now() % 1000));
    }
    tick();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-deadline]").forEach(start);
  });
})();
