// lienthong console: small conveniences only — every page and form works without this file.
// Served as a file (the Content-Security-Policy forbids inline script).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A button that changes state asks first (data-confirm holds the question, in Vietnamese).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
});
