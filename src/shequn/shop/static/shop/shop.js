// Page behaviour that used to sit in onclick=/onchange= attributes, which the
// Content-Security-Policy (script-src 'self') does not run.
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    // Share links: one tap selects the whole link for copying.
    document.querySelectorAll("input[data-select-on-click]").forEach(function (input) {
      input.addEventListener("click", function () { input.select(); });
    });
    // The cart's coupon choice reloads the cart with it.
    var coupon = document.getElementById("coupon-select");
    if (coupon) {
      coupon.addEventListener("change", function () {
        location.search = "?coupon=" + encodeURIComponent(coupon.value);
      });
    }
  });
})();
