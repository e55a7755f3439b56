// Follow the run's events (server-sent, from watch_run): each one has htmx fetch the live part
// again. One fetch at a time, and one more after it when events came meanwhile, so the last
// change is always shown (a throttle would drop it). The stream says "end" once the run has
// finished; EventSource would reconnect otherwise.
(function () {
  var live = document.getElementById("run-live");
  if (!live || !live.dataset.events) return;
  var fetching = false, changedSince = false;
  function refresh() {
    if (fetching) { changedSince = true; return; }
    fetching = true;
    htmx.trigger("#run-live", "run-changed");
  }
  function fetched() {
    fetching = false;
    if (changedSince) { changedSince = false; refresh(); }
  }
  document.body.addEventListener("htmx:afterSettle", fetched);
  document.body.addEventListener("htmx:responseError", fetched);
  document.body.addEventListener("htmx:sendError", fetched);
  var source = new EventSource(live.dataset.events);
  source.addEventListener("change", refresh);
  source.addEventListener("end", function () { source.close(); });
})();
