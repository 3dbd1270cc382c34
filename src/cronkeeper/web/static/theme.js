// The theme this browser chose (light or dark), applied before the page is drawn; none: the system's.
(function () {
  try {
    var chosen = window.localStorage.getItem("ck-theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.setAttribute("data-theme", chosen);
    }
  } catch (error) {
    // Storage refused (a private window's policy): the system's theme it is.
  }
})();
