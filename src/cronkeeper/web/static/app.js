// Live run page: follow a run's status and output through server-sent events while it is going, and count
// the time it has been running. Everything else on the dashboard is plain forms and htmx.
(function () {
  // As the server's "seconds" filter writes durations: 4.2 s, 3 min 5 s, 2 h 5 min.
  function duration(total) {
    if (total < 10) {
      return total.toFixed(1) + " s";
    }
    var whole = Math.round(total);
    if (whole < 60) {
      return whole + " s";
    }
    if (whole < 3600) {
      return Math.floor(whole / 60) + " min " + (whole % 60) + " s";
    }
    return Math.floor(whole / 3600) + " h " + Math.floor((whole % 3600) / 60) + " min";
  }
  function tick(element) {
    var since = Date.parse(element.getAttribute("data-since"));
    var update = function () {
      element.textContent = duration(Math.max(0, (Date.now() - since) / 1000));
    };
    update();
    window.setInterval(update, 1000);
  }
  function follow(panel) {
    var source = new EventSource(panel.getAttribute("data-events"));
    var status = document.getElementById("run-status");
    var output = document.getElementById("run-output");
    source.addEventListener("run", function (event) {
      var run = JSON.parse(event.data);
      if (status) {
        status.textContent = run.status;
        status.className = "status status-" + run.status;
      }
      if (output && run.output !== null && run.output !== undefined) {
        // Stay at the bottom if the reader was there: new lines arrive at the end.
        var atEnd = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        output.textContent = run.output;
        if (atEnd) {
          output.scrollTop = output.scrollHeight;
        }
      }
    });
    source.addEventListener("end", function () {
      source.close();
      // The page shows more than the stream carries (timings, error, result): load it as it now is.
      window.location.reload();
    });
  }
  // The browser's zone, told to the server in a cookie: pages that follow it show times there. A first
  // visit (or a new zone) reloads once, so that the page is drawn in it.
  function reportZone() {
    var body = document.body;
    var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || !body.hasAttribute("data-browser-zone") || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      return;
    }
    document.cookie = "ck_zone=" + zone + "; path=/; SameSite=Lax; max-age=31536000";
    var stale = body.getAttribute("data-browser-zone") !== zone;
    if (stale && body.getAttribute("data-follows-browser") === "yes" && !sessionStorage.getItem("ck-zone-" + zone)) {
      sessionStorage.setItem("ck-zone-" + zone, "1");
      window.location.reload();
    }
  }
  // A form marked data-autosubmit is sent as soon as one of its choices changes; its button is then not needed.
  function autosubmit(form) {
    form.querySelectorAll("button").forEach(function (button) { button.hidden = true; });
    form.addEventListener("change", function () { form.submit(); });
  }
  // The theme switch: the system's, dark, light, in turn; remembered by this browser.
  function themeSwitch(button) {
    var names = { "": "system", dark: "dark", light: "light" };
    var next = { "": "dark", dark: "light", light: "" };
    var show = function () {
      button.textContent = "Theme: " + names[document.documentElement.getAttribute("data-theme") || ""];
    };
    button.hidden = false;
    show();
    button.addEventListener("click", function () {
      var chosen = next[document.documentElement.getAttribute("data-theme") || ""];
      if (chosen) {
        document.documentElement.setAttribute("data-theme", chosen);
      } else {
        document.documentElement.removeAttribute("data-theme");
      }
      try {
        window.localStorage.setItem("ck-theme", chosen);
      } catch (error) {
        // Not remembered, but switched all the same.
      }
      show();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    reportZone();
    var theme = document.getElementById("theme");
    if (theme) {
      themeSwitch(theme);
    }
    document.querySelectorAll("form[data-autosubmit]").forEach(autosubmit);
    document.querySelectorAll("[data-events]").forEach(follow);
    document.querySelectorAll("[data-since]").forEach(tick);
  });
})();
