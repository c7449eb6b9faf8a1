// Live status of rights requests: polls each pending request's JSON and updates
// its progress bar, badge and message in place, then shows the download link.
// Progressive enhancement only: without it, reloading the page shows the same.
(function () {
  "use strict";
  var BADGES = { received: "pending", running: "running", completed: "done", failed: "failed" };
  var LABELS = { received: "Received", running: "In progress", completed: "Completed", failed: "Failed" };
  var INTERVAL = 1000;

  function part(card, name) {
    return card.querySelector('[data-part="' + name + '"]');
  }

  function show(card, data) {
    var progress = part(card, "progress");
    var percent = part(card, "percent");
    var badge = part(card, "badge");
    var message = part(card, "message");
    var pending = data.status === "received" || data.status === "running";
    if (progress) { progress.value = data.progress; progress.textContent = data.progress + "%"; }
    if (percent) { percent.textContent = data.progress + "%"; }
    if (badge) {
      badge.className = "badge badge-" + (BADGES[data.status] || "none");
      badge.textContent = LABELS[data.status] || data.status;
    }
    // The message is a status region: change it only when the words change, so screen
    // readers announce news rather than every tick.
    if (message && message.textContent !== data.message) { message.textContent = data.message; }
    if (!pending) {
      var wrap = part(card, "progress-wrap");
      if (wrap) { wrap.hidden = true; }
      var download = part(card, "download");
      if (download && data.download) { download.hidden = false; }
      if (data.kind === "access") {
        var button = document.getElementById("access-button");
        var note = document.getElementById("access-pending");
        if (button) { button.disabled = false; button.removeAttribute("aria-describedby"); }
        if (note) { note.hidden = true; }
      }
    }
    return pending;
  }

  function poll(card) {
    var url = card.getAttribute("data-poll-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (show(card, data)) { window.setTimeout(function () { poll(card); }, INTERVAL); }
      })
      .catch(function () {
        // Signed out, or the server is away: try again later, more slowly.
        window.setTimeout(function () { poll(card); }, INTERVAL * 5);
      });
  }

  document.querySelectorAll("[data-poll-url]").forEach(function (card) {
    window.setTimeout(function () { poll(card); }, INTERVAL);
  });
})();
