// Page behaviour without inline handlers (the Content-Security-Policy allows scripts from our
// static files only): a button with data-print prints the page.
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
