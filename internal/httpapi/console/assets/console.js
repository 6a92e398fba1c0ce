// The console works without JavaScript; this only adds a "choose all"
// box to the DLQ list.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('#dlq input[name="r"]:not([disabled])').forEach(function (b) { b.checked = all.checked; });
  });
});
