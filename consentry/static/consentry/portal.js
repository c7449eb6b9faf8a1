// Progressive enhancement only: every form works without this file.
// Tell the server the browser's time zone, so "until tomorrow morning" means
// the person's morning rather than UTC's.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  document.querySelectorAll('input[data-fill="timezone"]').forEach(function (input) {
    input.value = zone;
  });
})();
