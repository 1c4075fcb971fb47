// Dashboard behaviour: dialogs, the copy button. No secrets pass through here but a
// just-created virtual key the user asked to copy.
(function () {
  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text, done); });
    } else {
      fallback(text, done);
    }
  }
  function fallback(text, done) {
    var t = document.createElement("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    document.body.appendChild(t);
    t.select();
    try { document.execCommand("copy"); } catch (e) { /* the key stays visible to copy by hand */ }
    t.remove();
    done();
  }
  function openDialog(d) {
    d.showModal();
    var first = d.querySelector("input:not([type=hidden]), select, textarea, button");
    if (first) { first.focus(); }
  }
  document.addEventListener("click", function (e) {
    var open = e.target.closest("[data-open]");
    if (open) { openDialog(document.getElementById(open.dataset.open)); return; }
    var close = e.target.closest("[data-close]");
    if (close) { close.closest("dialog").close(); return; }
    var back = e.target.closest("[data-back]");
    if (back) { e.preventDefault(); history.back(); return; }
    var copy = e.target.closest("[data-copy]");
    if (copy) {
      var text = document.getElementById(copy.dataset.copy).textContent.trim();
      copyText(text, function () { copy.textContent = "Copied"; });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    // A page answering a post (a key shown once) takes its tab's address, so a reload
    // asks for the tab again instead of posting twice.
    var at = document.querySelector("[data-replace-url]");
    if (at) { history.replaceState(null, "", at.dataset.replaceUrl); }
    var d = document.querySelector("dialog[data-open-on-load]");
    if (d) { openDialog(d); }
  });
})();
