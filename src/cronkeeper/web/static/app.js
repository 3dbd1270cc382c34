// Live run page: follow a run's status and output through server-sent events while it is going.
// Everything else on the dashboard is plain forms and htmx; this is the one place that needs a script.
(function () {
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
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
  });
})();
