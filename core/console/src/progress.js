// Live progress on a started rollout's page, where JavaScript runs: every
// 15 seconds while the page is in view, the waves' figures are asked for
// again (GET /console/rollouts/ID/progress, same session) and replace the
// ones shown. Served from the console itself, so the page's
// Content-Security-Policy needs no 'unsafe-inline'. Without it the page
// shows the figures as they were when it loaded, and says so.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  var note = document.getElementById("progress-updated");
  if (!box || !note || !window.fetch || !window.JSON) {
    return;
  }
  var source = box.getAttribute("data-source");
  if (!source) {
    return;
  }
  var every = 15000;
  var timer = null;

  function say(text) {
    note.textContent = text;
  }

  function refresh() {
    fetch(source, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (response.status === 401) {
          stop();
          throw new Error("Your session has ended. Sign in again to see the latest figures.");
        }
        if (!response.ok) {
          throw new Error("The latest figures could not be fetched. Reload the page to try again.");
        }
        return response.json();
      })
      .then(function (data) {
        box.innerHTML = data.html;
        var time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
        say("Figures updated at " + time + ". They update every 15 seconds while this page is open.");
        if (data.state !== "active") {
          stop();
          say("This rollout is " + data.state + ". Reload the page to see what you can do next.");
        }
      })
      .catch(function (error) {
        say(error.message);
      });
  }

  function start() {
    if (timer === null) {
      timer = window.setInterval(refresh, every);
    }
  }

  function stop() {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else {
      refresh();
      start();
    }
  });
  say("These figures update every 15 seconds while this page is open.");
  start();
})();
