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
        output.textContent = run.output;
      }
    });
    source.addEventListener("end", function () {
      source.close();
      window.location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
  });
})();
