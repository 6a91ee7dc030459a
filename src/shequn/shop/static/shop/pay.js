// Inside WeChat: hand the prepared JSAPI payment (#pay-params) to WeixinJSBridge, then go back
// to the order (data-back on the script element), paid or not: the server knows which.
(function () {
  var script = document.currentScript;
  var params = JSON.parse(document.getElementById("pay-params").textContent);
  function back() { location.href = script.dataset.back; }
  function invoke() { WeixinJSBridge.invoke("getBrandWCPayRequest", params, back); }
  if (typeof WeixinJSBridge === "undefined") {
    document.addEventListener("WeixinJSBridgeReady", invoke, false);
  } else {
    invoke();
  }
})();
